/**
 * src/os/fd-watch.ts, both kinds, on real fds: a UDP socket on 127.0.0.1 made through koffi (so
 * that nothing but the watch looks at it) and a pipe(2). Also TapDevice reading through the watch,
 * inside a network namespace made for the run (root only; skipped otherwise).
 *
 * The only timed assertions are the ones the contract is about ("no callback while idle"): each
 * waits a fixed quiet period and asserts that nothing happened in it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readdirSync, readlinkSync } from 'node:fs';
import { availableFdWatchKinds, POLL_TIMEOUT_MS, watchReadable, type FdWatchKind } from '../../../src/os/fd-watch.js';
import { libc } from '../../../src/os/libc.js';

const TEST = { timeout: 30_000 };
const GUARD_MS = 5_000;

interface Raw {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  getsockname(fd: number, address: Buffer, length: number[]): number;
  recv(fd: number, buffer: Buffer, length: number, flags: number): number;
  pipe(fds: Int32Array): number;
  read(fd: number, buffer: Buffer, length: number): number;
  write(fd: number, buffer: Buffer, length: number): number;
  fcntl(fd: number, command: number, value: number): number;
  close(fd: number): number;
}
const lib = libc();
const raw: Raw = {
  socket: lib.func('int socket(int, int, int)'),
  bind: lib.func('int bind(int, void *, uint32_t)'),
  getsockname: lib.func('int getsockname(int, void *, _Inout_ uint32_t *)'),
  recv: lib.func('long recv(int, void *, size_t, int)'),
  pipe: lib.func('int pipe(_Out_ int *fds)'),
  read: lib.func('long read(int, void *, size_t)'),
  write: lib.func('long write(int, void *, size_t)'),
  fcntl: lib.func('int fcntl(int, int, int)'),
  close: lib.func('int close(int)'),
};
const MSG_DONTWAIT = 0x40;

/** A UDP socket bound on 127.0.0.1 that only the watch and this test look at. */
function rawUdpSocket(): { fd: number; port: number } {
  const fd = raw.socket(2, 2 | 0o4000 | 0o2000000, 0);
  assert.ok(fd >= 0);
  const name = Buffer.alloc(16);
  name.writeUInt16LE(2, 0);
  name.set([127, 0, 0, 1], 4);
  assert.equal(raw.bind(fd, name, 16), 0);
  assert.equal(raw.getsockname(fd, name, [16]), 0);
  return { fd, port: name.readUInt16BE(2) };
}

function openFds(): Set<string> {
  return new Set(readdirSync('/proc/self/fd'));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `check()` holds (polled every few ms); rejects after the guard. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GUARD_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const KINDS: FdWatchKind[] = ['pipe', 'poll-thread'];

test('both kinds are available on Linux with Node 20', () => {
  assert.deepEqual(availableFdWatchKinds(), KINDS);
});

for (const kind of KINDS) {
  test(`${kind}: a UDP socket's pending datagrams wake the callback, which reads them intact`, TEST, async () => {
    const { fd, port } = rawUdpSocket();
    const sender = createSocket('udp4');
    await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', () => resolve()));
    const fdsBefore = openFds();
    const got: string[] = [];
    let wakes = 0;
    const buffer = Buffer.alloc(2048);
    const watch = watchReadable(
      fd,
      () => {
        wakes++;
        for (let n = raw.recv(fd, buffer, buffer.length, MSG_DONTWAIT); n >= 0; n = raw.recv(fd, buffer, buffer.length, MSG_DONTWAIT)) got.push(buffer.toString('utf8', 0, n));
      },
      { prefer: kind },
    );
    try {
      assert.equal(watch.kind, kind);
      const dups = [...openFds()].filter((f) => !fdsBefore.has(f));
      assert.equal(dups.length, 1, 'the watch holds one dup of the fd');
      await sleep(20);
      assert.equal(wakes, 0, 'nothing pending: no callback');
      for (const text of ['one', 'two', 'three']) sender.send(text, port, '127.0.0.1');
      await until(() => got.length === 3, 'three datagrams');
      assert.deepEqual(got, ['one', 'two', 'three'], 'the watch read none of them');
      assert.ok(wakes >= 1 && wakes <= 3);

      const wakesWhenDrained = wakes;
      await sleep(300);
      assert.equal(wakes, wakesWhenDrained, 'idle for 300 ms: no callback');

      watch.close();
      watch.close();
      sender.send('after close', port, '127.0.0.1');
      await sleep(kind === 'poll-thread' ? POLL_TIMEOUT_MS + 100 : 100);
      assert.equal(wakes, wakesWhenDrained, 'no callback after close()');
      await until(() => !openFds().has(dups[0]!), 'the dup to be closed');
      assert.equal(raw.recv(fd, buffer, buffer.length, MSG_DONTWAIT), 11, 'the datagram sent after close is still there: the caller still owns its fd');
    } finally {
      watch.close();
      sender.close();
      raw.close(fd);
    }
  });

  test(`${kind}: level-triggered: a callback that leaves data is called again until it drains`, TEST, async () => {
    const { fd, port } = rawUdpSocket();
    const sender = createSocket('udp4');
    let wakes = 0;
    let drained = 0;
    const buffer = Buffer.alloc(64);
    const watch = watchReadable(
      fd,
      () => {
        // Reads one datagram per wake only.
        if (++wakes >= 3 && raw.recv(fd, buffer, buffer.length, MSG_DONTWAIT) >= 0) drained++;
      },
      { prefer: kind },
    );
    try {
      sender.send('a', port, '127.0.0.1');
      sender.send('b', port, '127.0.0.1');
      await until(() => drained === 2, 'both datagrams, one per wake from the third on');
      const wakesWhenDrained = wakes;
      await sleep(100);
      assert.equal(wakes, wakesWhenDrained);
    } finally {
      watch.close();
      sender.close();
      raw.close(fd);
    }
  });

  test(`${kind}: close() from inside the callback stops it for good and leaves the caller's fd alone`, TEST, async () => {
    const { fd, port } = rawUdpSocket();
    const sender = createSocket('udp4');
    let wakes = 0;
    const watch = watchReadable(
      fd,
      () => {
        wakes++;
        watch.close();
      },
      { prefer: kind },
    );
    try {
      sender.send('left unread', port, '127.0.0.1');
      await until(() => wakes === 1, 'the wake');
      await sleep(kind === 'poll-thread' ? POLL_TIMEOUT_MS + 100 : 100);
      assert.equal(wakes, 1, 'undrained, yet not called again: closed');
      const buffer = Buffer.alloc(64);
      assert.equal(raw.recv(fd, buffer, buffer.length, MSG_DONTWAIT), 11, 'the datagram is still there, on the fd the caller still owns');
    } finally {
      watch.close();
      sender.close();
      raw.close(fd);
    }
  });

  test(`${kind}: a pipe(2) read end`, TEST, async () => {
    const fds = new Int32Array(2);
    assert.equal(raw.pipe(fds), 0);
    const [readEnd, writeEnd] = [fds[0]!, fds[1]!];
    assert.equal(raw.fcntl(readEnd, 4 /* F_SETFL */, 0o4000 /* O_NONBLOCK */), 0);
    const chunks: string[] = [];
    const buffer = Buffer.alloc(256);
    const watch = watchReadable(
      readEnd,
      () => {
        for (let n = raw.read(readEnd, buffer, buffer.length); n > 0; n = raw.read(readEnd, buffer, buffer.length)) chunks.push(buffer.toString('utf8', 0, n));
      },
      { prefer: kind },
    );
    try {
      const text = Buffer.from('through the pipe');
      assert.equal(raw.write(writeEnd, text, text.length), text.length);
      await until(() => chunks.join('') === 'through the pipe', 'the bytes');
    } finally {
      watch.close();
      raw.close(readEnd);
      raw.close(writeEnd);
    }
  });
}

test('watchReadable rejects a negative fd', () => {
  assert.throws(
    () => watchReadable(-1, () => undefined),
    (err: unknown) => (err as { code?: string }).code === 'ERR_INVALID_ARGUMENT',
  );
});

// ---------------------------------------------------------------------------------------------
// TapDevice through the watch, in a namespace of its own.

function tapSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (a network namespace and /dev/net/tun)';
  if (spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status !== 0) return '`ip netns` is not available';
  return false;
}

/**
 * Runs in the namespace: opens the TAP with the given watch kind, brings it up with 10.253.0.1/30,
 * sends a datagram to 10.253.0.2 (the kernel asks for its MAC: an ARP request frame on the TAP),
 * and prints what onFrame and onBatchEnd saw as JSON.
 */
const TAP_CHILD = `
import { createSocket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { TapDevice } from ${JSON.stringify(new URL('../../../src/os/tap.js', import.meta.url).href)};
const [name, kind] = process.argv.slice(-2);
const frames = [];
let batches = 0;
const tap = TapDevice.open(name, (frame) => frames.push(frame.toString('hex')), { onBatchEnd: () => batches++, watch: kind });
execFileSync('ip', ['addr', 'add', '10.253.0.1/30', 'dev', name]);
execFileSync('ip', ['link', 'set', name, 'up']);
const socket = createSocket('udp4');
socket.send('x', 9, '10.253.0.2');
const deadline = Date.now() + 5000;
const timer = setInterval(() => {
  const arp = frames.find((f) => f.slice(20 + 24, 20 + 28) === '0806');
  if (arp || Date.now() > deadline) {
    clearInterval(timer);
    console.log(JSON.stringify({ kind: tap.watchKind, arp: arp ?? null, batches, frames: frames.length }));
    tap.close();
    tap.close();
    socket.close();
  }
}, 10);
`;

test('TapDevice reads frames through fd-watch (both kinds) and calls onBatchEnd once per wake', { ...TEST, skip: tapSkipReason() }, () => {
  const ns = `lm${randomBytes(3).toString('hex')}-tap`;
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
  try {
    for (const kind of KINDS) {
      const child = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', TAP_CHILD, `${ns.slice(0, 8)}t`, kind], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(child.status, 0, child.stderr);
      const seen = JSON.parse(child.stdout.trim().split('\n').pop()!) as { kind: string; arp: string | null; batches: number; frames: number };
      assert.equal(seen.kind, kind);
      assert.ok(seen.arp, `an ARP request frame came through the ${kind} watch: ${JSON.stringify(seen)}`);
      // virtio-net header (10 bytes) + broadcast destination.
      assert.equal(seen.arp.slice(20, 32), 'ffffffffffff');
      assert.ok(seen.batches >= 1 && seen.batches <= seen.frames, JSON.stringify(seen));
    }
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
  assert.ok(!spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(ns), 'the namespace is gone');
});

test('pipe: a callback that returns a value does not abort the process (Node would take it for the next read buffer)', TEST, () => {
  const moduleUrl = new URL('../../../src/os/fd-watch.js', import.meta.url).href;
  const child = `
    const { watchReadable } = await import(${JSON.stringify(moduleUrl)});
    const dgram = await import('node:dgram');
    const s = dgram.createSocket('udp4');
    await new Promise((r) => s.bind(0, '127.0.0.1', r));
    let wakes = 0;
    const fd = s._handle.fd;
    s._handle.recvStop();
    const watch = watchReadable(fd, () => { wakes++; if (wakes === 2) { watch.close(); s.close(); console.log('ok'); } return 42; }, { prefer: 'pipe' });
    const c = dgram.createSocket('udp4');
    c.send('x', s.address().port, '127.0.0.1', () => c.close());
  `;
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', child], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `child exited ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(0, 400)}`);
  assert.match(r.stdout, /ok/);
});

for (const kind of KINDS) {
  test(`${kind}: the watch's dup is close-on-exec, so a child process (a container) never inherits it`, TEST, () => {
    const { fd } = rawUdpSocket(); // itself close-on-exec
    const socket = readlinkSync(`/proc/self/fd/${fd}`);
    const watch = watchReadable(fd, () => undefined, { prefer: kind });
    try {
      const child = spawnSync('sh', ['-c', 'for f in /proc/$$/fd/*; do readlink "$f"; done; true'], { encoding: 'utf8' });
      assert.equal(child.status, 0);
      assert.ok(!child.stdout.split('\n').includes(socket), `the child holds ${socket}: the watch's dup was inherited`);
    } finally {
      watch.close();
      raw.close(fd);
    }
  });
}
