/**
 * src/os/udp-endpoint.ts on real sockets. Everything is sent on 127.0.0.1 (loopback does GSO and
 * GRO in software), except the path-MTU case, which needs a link with a small MTU: a veth pair
 * between two network namespaces made for the run (root only; skipped otherwise), probed from a
 * child process under `ip netns exec`.
 *
 * Why a train arrives whole before the test looks: sendmmsg on loopback delivers every datagram
 * into the receiver's queue during the call, so the receiver's next wake finds all of them.
 * Waits end on the expected count, with a guard against hanging.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readlinkSync } from 'node:fs';
import { isLoomError } from '../../../src/core/errors.js';
import type { FdWatchKind } from '../../../src/os/fd-watch.js';
import { libc } from '../../../src/os/libc.js';
import { EBADF, EMSGSIZE, MAX_GSO_SEGMENTS, UdpEndpoint, ipv4ToU32, u32ToIpv4, type UdpEndpointOptions } from '../../../src/os/udp-endpoint.js';

const TEST = { timeout: 30_000 };
const GUARD_MS = 5_000;
const LOOPBACK = ipv4ToU32('127.0.0.1');

/** `count` datagrams of `segment` bytes, the last `last` bytes, with bytes that tell them apart. */
function train(count: number, segment: number, last = segment): Buffer {
  const bytes = Buffer.alloc((count - 1) * segment + last);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + Math.floor(i / segment)) & 0xff;
  return bytes;
}

/** The datagrams a train should arrive as. */
function split(bytes: Buffer, segment: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += segment) out.push(bytes.subarray(at, Math.min(at + segment, bytes.length)));
  return out;
}

async function plainSocket(): Promise<{ socket: Socket; port: number; got: Buffer[] }> {
  const socket = createSocket('udp4');
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { socket, port: socket.address().port, got };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GUARD_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Received {
  data: Buffer;
  segmentSize: number;
  ip: number;
  port: number;
}

/** A UdpEndpoint on 127.0.0.1 that drains itself on every wake, copying what it receives. */
function receiver(options: Partial<UdpEndpointOptions> = {}): { endpoint: UdpEndpoint; messages: Received[] } {
  const messages: Received[] = [];
  const endpoint: UdpEndpoint = UdpEndpoint.open({
    address: '127.0.0.1',
    port: 0,
    ...options,
    onReadable: () => {
      for (let n = endpoint.receive(); n > 0; n = endpoint.receive()) {
        for (let i = 0; i < n; i++) messages.push({ data: Buffer.from(endpoint.data(i)), segmentSize: endpoint.segmentSize(i), ip: endpoint.sourceIp(i), port: endpoint.sourcePort(i) });
      }
    },
  });
  return { endpoint, messages };
}

function sender(options: Partial<UdpEndpointOptions> = {}): UdpEndpoint {
  return UdpEndpoint.open({ address: '127.0.0.1', port: 0, onReadable: () => undefined, ...options });
}

/** The datagrams in received messages, GRO messages split at their segment size. */
function datagrams(messages: Received[]): Buffer[] {
  return messages.flatMap((m) => (m.segmentSize > 0 ? split(m.data, m.segmentSize) : [m.data]));
}

test('ipv4ToU32 / u32ToIpv4 round-trip and reject what is not a dotted quad', () => {
  assert.equal(ipv4ToU32('10.32.0.254'), 0x0a2000fe);
  assert.equal(ipv4ToU32('255.255.255.255'), 0xffffffff);
  assert.equal(u32ToIpv4(0xc0a80101), '192.168.1.1');
  assert.equal(u32ToIpv4(ipv4ToU32('0.0.0.0')), '0.0.0.0');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', '::1', 'a.b.c.d']) {
    assert.throws(() => ipv4ToU32(bad), (err: unknown) => isLoomError(err, 'ERR_INVALID_ARGUMENT'), bad);
  }
});

test('a GSO train of 40 x 1,400 bytes and a shorter last arrives as 41 datagrams, in order, at a plain socket', TEST, async () => {
  const plain = await plainSocket();
  const tx = sender();
  try {
    assert.equal(tx.stats().gso, true, 'this kernel offers UDP_SEGMENT');
    const bytes = train(41, 1400, 700);
    tx.queue(bytes, 0, bytes.length, 1400, LOOPBACK, plain.port);
    assert.equal(tx.flush(), 0);
    await until(() => plain.got.length >= 41, '41 datagrams');
    assert.deepEqual(plain.got, split(bytes, 1400));
    assert.deepEqual(tx.stats(), { gso: true, gro: true, gsoFallbacks: 0, sent: 41, sendErrors: 0, received: 0, groMessages: 0, oddCmsgs: 0 });
  } finally {
    tx.close();
    plain.socket.close();
  }
});

for (const watch of ['pipe', 'poll-thread'] as FdWatchKind[]) {
  test(`a GRO receiver (${watch} watch) gets the train as messages of segmentSize 1,400 that split back exactly`, TEST, async () => {
    const rx = receiver({ watch });
    const tx = sender();
    try {
      assert.equal(rx.endpoint.watchKind, watch);
      assert.equal(rx.endpoint.receive(), 0, 'nothing waiting: 0 at once');
      const bytes = train(41, 1400, 700);
      tx.queue(bytes, 0, bytes.length, 1400, LOOPBACK, rx.endpoint.port);
      assert.equal(tx.flush(), 0);
      await until(() => datagrams(rx.messages).length >= 41, '41 datagrams');
      assert.deepEqual(datagrams(rx.messages), split(bytes, 1400));
      for (const m of rx.messages) {
        assert.ok(m.segmentSize === 1400 || (m.segmentSize === 0 && m.data.length <= 1400), `segment size ${m.segmentSize} for ${m.data.length} bytes`);
        assert.equal(m.ip, LOOPBACK);
        assert.equal(m.port, tx.port);
      }
      const stats = rx.endpoint.stats();
      assert.equal(stats.received, 41);
      assert.equal(stats.oddCmsgs, 0);
      // Loopback hands the GSO skb to a GRO socket whole: one message (seen on Linux 6.18).
      assert.equal(stats.groMessages, rx.messages.filter((m) => m.segmentSize > 0).length);
      assert.ok(stats.groMessages >= 1, 'loopback GRO delivered at least one UDP_GRO cmsg');
    } finally {
      tx.close();
      rx.endpoint.close();
    }
  });
}

test('without GRO every datagram is a message of its own with segmentSize 0', TEST, async () => {
  const rx = receiver({ gro: false });
  const tx = sender();
  try {
    const bytes = train(10, 1000, 10);
    tx.queue(bytes, 0, bytes.length, 1000, LOOPBACK, rx.endpoint.port);
    tx.flush();
    await until(() => rx.messages.length >= 10, '10 datagrams');
    assert.deepEqual(rx.messages.map((m) => m.data), split(bytes, 1000));
    assert.ok(rx.messages.every((m) => m.segmentSize === 0));
    assert.equal(rx.endpoint.stats().gro, false);
  } finally {
    tx.close();
    rx.endpoint.close();
  }
});

test('trains to two destinations (and parts of one buffer) go out in one flush', TEST, async () => {
  const a = await plainSocket();
  const b = await plainSocket();
  const tx = sender();
  try {
    const bytes = train(30, 1200, 300);
    const errors: number[] = [];
    tx.onSendError = (errno) => errors.push(errno);
    // Two trains from one buffer, at an offset each.
    tx.queue(bytes, 0, 12 * 1200, 1200, LOOPBACK, a.port);
    tx.queue(bytes, 12 * 1200, bytes.length - 12 * 1200, 1200, LOOPBACK, b.port);
    // And one from a small pooled Buffer (shares Buffer's 8 KiB pool).
    const small = Buffer.from('a pooled buffer');
    tx.queue(small, 2, 6, 4, LOOPBACK, a.port);
    assert.equal(tx.flush(), 0);
    await until(() => a.got.length >= 14 && b.got.length >= 18, 'both trains');
    assert.deepEqual(a.got, [...split(bytes.subarray(0, 12 * 1200), 1200), Buffer.from('pool'), Buffer.from('ed')]);
    assert.deepEqual(b.got, split(bytes.subarray(12 * 1200), 1200));
    assert.deepEqual(errors, []);
    assert.equal(tx.flush(), 0, 'nothing queued: nothing to send');
  } finally {
    tx.close();
    a.socket.close();
    b.socket.close();
  }
});

test('a train over 64 segments or 65,507 bytes is split into several GSO messages', TEST, async () => {
  const rx = receiver();
  const tx = sender();
  try {
    // 150 x 100 bytes: 64 + 64 + 22 segments. 60 x 1,400 bytes: 46 (64,400 bytes) + 14.
    const many = train(150, 100);
    const big = train(60, 1400);
    tx.queue(many, 0, many.length, 100, LOOPBACK, rx.endpoint.port);
    assert.equal(tx.flush(), 0);
    await until(() => datagrams(rx.messages).length >= 150, '150 datagrams');
    assert.deepEqual(datagrams(rx.messages), split(many, 100));
    assert.deepEqual(
      rx.messages.map((m) => m.data.length / 100),
      [MAX_GSO_SEGMENTS, MAX_GSO_SEGMENTS, 22],
      'one GRO message per GSO message',
    );
    rx.messages.length = 0;
    tx.queue(big, 0, big.length, 1400, LOOPBACK, rx.endpoint.port);
    assert.equal(tx.flush(), 0);
    await until(() => datagrams(rx.messages).length >= 60, '60 datagrams');
    assert.deepEqual(datagrams(rx.messages), split(big, 1400));
    assert.deepEqual(rx.messages.map((m) => m.data.length), [46 * 1400, 14 * 1400]);
  } finally {
    tx.close();
    rx.endpoint.close();
  }
});

test('gso: false sends the same bytes one datagram per message through sendmmsg', TEST, async () => {
  const plain = await plainSocket();
  const tx = sender({ gso: false });
  try {
    const bytes = train(45, 1400, 1);
    tx.queue(bytes, 0, bytes.length, 1400, LOOPBACK, plain.port);
    assert.equal(tx.flush(), 0);
    await until(() => plain.got.length >= 45, '45 datagrams');
    assert.deepEqual(plain.got, split(bytes, 1400));
    assert.deepEqual(tx.stats(), { gso: false, gro: true, gsoFallbacks: 0, sent: 45, sendErrors: 0, received: 0, groMessages: 0, oddCmsgs: 0 });
  } finally {
    tx.close();
    plain.socket.close();
  }
});

/** The socket fds this process has (to reach an endpoint's fd from a test). */
function socketFds(): Set<number> {
  const out = new Set<number>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`).startsWith('socket:')) out.add(Number(name));
    } catch {
      // Closed while listing (the listing's own fd).
    }
  }
  return out;
}

test('when the kernel refuses GSO (EINVAL with SO_NO_CHECK), GSO goes off for good and the datagrams still arrive', TEST, async () => {
  const plain = await plainSocket();
  const before = socketFds();
  const tx = sender();
  try {
    // The kernel refuses UDP_SEGMENT on a socket without UDP checksums (udp_send_skb: EINVAL),
    // while plain datagrams still go out: a real refusal, on loopback.
    const fd = [...socketFds()].find((f) => !before.has(f));
    assert.ok(fd !== undefined);
    const setsockopt = libc().func('int setsockopt(int, int, int, void *, uint32_t)') as (fd: number, level: number, name: number, value: Buffer, length: number) => number;
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    assert.equal(setsockopt(fd, 1 /* SOL_SOCKET */, 11 /* SO_NO_CHECK */, one, 4), 0);
    const errors: number[] = [];
    tx.onSendError = (errno) => errors.push(errno);
    const first = train(20, 1000, 10);
    const second = train(5, 1000);
    tx.queue(first, 0, first.length, 1000, LOOPBACK, plain.port);
    tx.queue(second, 0, second.length, 1000, LOOPBACK, plain.port);
    assert.equal(tx.flush(), 0);
    await until(() => plain.got.length >= 25, '25 datagrams');
    assert.deepEqual(plain.got, [...split(first, 1000), ...split(second, 1000)]);
    assert.deepEqual(errors, []);
    assert.deepEqual(tx.stats(), { gso: false, gro: true, gsoFallbacks: 1, sent: 25, sendErrors: 0, received: 0, groMessages: 0, oddCmsgs: 0 });
  } finally {
    tx.close();
    plain.socket.close();
  }
});

test('close() is idempotent; afterwards receive() is 0, sends fail with EBADF and flush() counts what it dropped', () => {
  const tx = sender();
  tx.close();
  tx.close();
  assert.equal(tx.watchKind, null);
  assert.equal(tx.receive(), 0);
  assert.equal(tx.sendNow(Buffer.from('x'), LOOPBACK, 9), -EBADF);
  const bytes = train(3, 100);
  tx.queue(bytes, 0, bytes.length, 100, LOOPBACK, 9);
  assert.equal(tx.flush(), 3);
});

test('open: a taken port is ERR_CONFLICT; bad options are ERR_INVALID_ARGUMENT', async () => {
  const plain = await plainSocket();
  try {
    assert.throws(
      () => sender({ port: plain.port }),
      (err: unknown) => isLoomError(err, 'ERR_CONFLICT'),
    );
    for (const bad of [{ address: 'localhost' }, { port: 70000 }, { batch: 0 }, { bufferBytes: 10 }]) {
      assert.throws(
        () => sender(bad),
        (err: unknown) => isLoomError(err, 'ERR_INVALID_ARGUMENT'),
        JSON.stringify(bad),
      );
    }
    const tx = sender();
    assert.throws(() => tx.queue(Buffer.alloc(10), 5, 10, 4, LOOPBACK, 9), RangeError);
    assert.throws(() => tx.queue(Buffer.alloc(10), 0, 10, 0, LOOPBACK, 9), RangeError);
    tx.close();
  } finally {
    plain.socket.close();
  }
});

test('sendNow sends one datagram at once', TEST, async () => {
  const plain = await plainSocket();
  const tx = sender();
  try {
    assert.equal(tx.sendNow(Buffer.from('probe'), LOOPBACK, plain.port), 0);
    await until(() => plain.got.length === 1, 'the probe');
    assert.equal(plain.got[0]!.toString(), 'probe');
  } finally {
    tx.close();
    plain.socket.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Path MTU: a veth pair with MTU 1,400 between two namespaces made for this run.

function netnsSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and a veth pair)';
  if (spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status !== 0) return '`ip netns` is not available';
  return false;
}

/** In namespace A (10.254.0.1/30, MTU 1,400 towards 10.254.0.2): probes, then prints JSON. */
const MTU_CHILD = `
import { UdpEndpoint, ipv4ToU32 } from ${JSON.stringify(new URL('../../../src/os/udp-endpoint.js', import.meta.url).href)};
const peer = ipv4ToU32('10.254.0.2');
const tx = UdpEndpoint.open({ address: '0.0.0.0', port: 0, onReadable: () => undefined });
const errors = [];
tx.onSendError = (errno, ip, port, segment) => errors.push({ errno, port, segment });
const probes = { big: tx.sendNow(Buffer.alloc(2000), peer, 9), fits: tx.sendNow(Buffer.alloc(1372), peer, 9) };
const bytes = Buffer.alloc(45 * 1400);
tx.queue(bytes, 0, bytes.length, 1400, peer, 9);
const tooBig = tx.flush();
tx.queue(bytes, 0, 45 * 1372, 1372, peer, 9);
const fitting = tx.flush();
console.log(JSON.stringify({ probes, tooBig, fitting, errors, stats: tx.stats() }));
tx.close();
`;

test('pmtuDiscovery: over a 1,400-byte link, sendNow of 2,000 bytes is -EMSGSIZE and a GSO train too big is reported, GSO stays on', { ...TEST, skip: netnsSkipReason() }, () => {
  const prefix = `lm${randomBytes(3).toString('hex')}`;
  const a = `${prefix}-a`;
  const b = `${prefix}-b`;
  const ip = (...args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
  };
  try {
    ip('netns', 'add', a);
    ip('netns', 'add', b);
    ip('link', 'add', `${prefix}a`, 'netns', a, 'type', 'veth', 'peer', 'name', `${prefix}b`, 'netns', b);
    ip('-n', a, 'addr', 'add', '10.254.0.1/30', 'dev', `${prefix}a`);
    ip('-n', b, 'addr', 'add', '10.254.0.2/30', 'dev', `${prefix}b`);
    ip('-n', a, 'link', 'set', `${prefix}a`, 'mtu', '1400', 'up');
    ip('-n', b, 'link', 'set', `${prefix}b`, 'mtu', '1400', 'up');
    const child = spawnSync('ip', ['netns', 'exec', a, process.execPath, '--import', 'tsx', '--input-type=module', '-e', MTU_CHILD], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.status, 0, child.stderr);
    const seen = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
      probes: { big: number; fits: number };
      tooBig: number;
      fitting: number;
      errors: { errno: number; port: number; segment: number }[];
      stats: { gso: boolean; gsoFallbacks: number; sent: number };
    };
    assert.deepEqual(seen.probes, { big: -EMSGSIZE, fits: 0 });
    // 1,400 + 28 header bytes exceed the MTU: the GSO message is refused (EINVAL), its first
    // datagram alone gets EMSGSIZE, which is what the relay hears, once for the train.
    assert.equal(seen.tooBig, 45);
    assert.deepEqual(seen.errors, [{ errno: EMSGSIZE, port: 9, segment: 1400 }]);
    assert.equal(seen.fitting, 0);
    assert.equal(seen.stats.gso, true);
    assert.equal(seen.stats.gsoFallbacks, 0);
    assert.equal(seen.stats.sent, 1 + 45);
  } finally {
    spawnSync('ip', ['netns', 'del', a]);
    spawnSync('ip', ['netns', 'del', b]);
  }
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.ok(!left.includes(prefix), 'the namespaces are gone');
});
