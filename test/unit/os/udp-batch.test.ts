/** src/os/udp-batch.ts: the sockaddr codecs, and recvmmsg/sendmmsg on a real socket (127.0.0.1). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { decodeSockaddr, dgramSocketFd, encodeSockaddrIn, openUdpBatch, watchInsteadOfDgram } from '../../../src/os/udp-batch.js';

test('encodeSockaddrIn writes sockaddr_in for dotted quads only', () => {
  const out = Buffer.alloc(32, 0xee);
  assert.equal(encodeSockaddrIn(out, 4, '10.32.0.254', 5353), true);
  assert.deepEqual([...out.subarray(4, 20)], [2, 0, 0x14, 0xe9, 10, 32, 0, 254, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeSockaddr(out, 4), { address: '10.32.0.254', port: 5353 });
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.4 ', '::1', '::ffff:1.2.3.4', '1234.1.1.1', 'a.b.c.d']) {
    assert.equal(encodeSockaddrIn(out, 0, bad, 53), false, bad);
  }
  assert.equal(encodeSockaddrIn(out, 0, '1.2.3.4', 65536), false);
});

test('decodeSockaddr reads IPv6, v4-mapped and scoped addresses; other families are null', () => {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(10, 0);
  b.writeUInt16BE(53, 2);
  b[23] = 1; // ::1
  assert.deepEqual(decodeSockaddr(b, 0), { address: '0:0:0:0:0:0:0:1', port: 53 });
  b.fill(0, 8, 24);
  b.writeUInt16BE(0xffff, 18);
  b.set([192, 0, 2, 7], 20);
  assert.deepEqual(decodeSockaddr(b, 0), { address: '::ffff:192.0.2.7', port: 53 });
  b.fill(0, 8, 24);
  b.writeUInt16BE(0xfe80, 8);
  b[23] = 9;
  b.writeUInt32LE(3, 24);
  assert.deepEqual(decodeSockaddr(b, 0), { address: 'fe80:0:0:0:0:0:0:9%3', port: 53 });
  b.writeUInt16LE(1, 0); // AF_UNIX
  assert.equal(decodeSockaddr(b, 0), null);
});

test('a batch drains queued datagrams and sends replies to their sources in one call each', { timeout: 30_000 }, async () => {
  const server = createSocket('udp4');
  const peer = createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  try {
    assert.equal(typeof dgramSocketFd(server), 'number');
    const opening = await openUdpBatch(server, 4, 512);
    assert.ok('batch' in opening, JSON.stringify(opening));
    const batch = opening.batch;
    assert.equal(batch.receive(), 0, 'nothing queued: returns at once with none');
    const got = new Promise<Buffer[]>((resolve) => {
      const replies: Buffer[] = [];
      peer.on('message', (m) => {
        replies.push(m);
        if (replies.length === 5) resolve(replies);
      });
    });
    const drained: string[] = [];
    server.on('message', (first) => {
      drained.push(first.toString());
      for (let n = batch.receive(); n > 0; n = batch.receive()) {
        for (let i = 0; i < n; i++) {
          const d = batch.datagram(i);
          drained.push(d.toString());
          const slot = batch.replySlot();
          const reply = Buffer.from(`re:${d.toString()}`);
          reply.copy(slot);
          batch.queueReply(reply.length, i);
          assert.deepEqual(batch.source(i), { address: '127.0.0.1', port: peer.address().port });
          assert.equal(batch.truncated(i), false);
        }
        batch.flush();
      }
    });
    // Sent from this thread before the event loop polls: all six are queued when libuv reads q0.
    for (let i = 0; i < 6; i++) peer.send(`q${i}`, server.address().port, '127.0.0.1');
    const replies = await got;
    assert.deepEqual(drained, ['q0', 'q1', 'q2', 'q3', 'q4', 'q5'], 'libuv read the first, recvmmsg the rest in order (4 + 1)');
    assert.deepEqual(replies.map(String), ['re:q1', 're:q2', 're:q3', 're:q4', 're:q5']);
    assert.deepEqual(batch.stats, { receives: 2, received: 5, flushes: 2, sent: 5, sendErrors: 0 });
  } finally {
    server.close();
    peer.close();
  }
});

test('a timed batch reports each reply it sends: kernel receive time -> read -> sent, in µs', { timeout: 30_000 }, async () => {
  const server = createSocket('udp4');
  const peer = createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  let watch: { close(): void } | null = null;
  try {
    const times: Array<[number, number]> = [];
    const record = (wait: Float64Array, service: Float64Array, count: number): void => {
      for (let k = 0; k < count; k++) times.push([wait[k]!, service[k]!]);
    };
    const opening = await openUdpBatch(server, 4, 512, { timing: { record } });
    assert.ok('batch' in opening, JSON.stringify(opening));
    const batch = opening.batch;
    const replies = new Promise<string[]>((resolve) => {
      const got: string[] = [];
      peer.on('message', (m) => {
        got.push(m.toString());
        if (got.length === 3) resolve(got);
      });
    });
    const taken = await watchInsteadOfDgram(server, () => {
      for (let n = batch.receive(); n > 0; n = batch.receive()) {
        for (let i = 0; i < n; i++) {
          batch.replySlot().write(`re:${batch.datagram(i).toString()}`);
          batch.queueReply(5, i);
        }
        batch.flush();
      }
    });
    assert.ok('watch' in taken, JSON.stringify(taken));
    watch = taken.watch;
    // The last one is sent, then this thread stays busy for 30 ms: it waits in the socket
    // meanwhile, and its receive timestamp (taken by the kernel on arrival) must show that wait.
    for (let i = 0; i < 3; i++) {
      peer.send(`q${i}`, server.address().port, '127.0.0.1', () => {
        if (i !== 2) return;
        const busyUntil = Date.now() + 30;
        while (Date.now() < busyUntil);
      });
    }
    assert.deepEqual((await replies).sort(), ['re:q0', 're:q1', 're:q2']);
    assert.equal(times.length, 3, 'one record per reply');
    assert.ok(times.some(([wait]) => wait >= 10_000), `a datagram waited the busy 30 ms: ${JSON.stringify(times)}`);
    for (const [wait, service] of times) {
      assert.ok(wait >= 0 && wait < 10_000_000, `wait ${wait} µs`);
      assert.ok(service >= 0 && service < 1_000_000, `service ${service} µs`);
    }
    // A reply to a datagram libuv read (queueReplyTo) has no timestamp of ours: not reported.
    batch.replySlot().write('extra');
    assert.equal(batch.queueReplyTo(5, '127.0.0.1', peer.address().port), true);
    batch.flush();
    assert.equal(times.length, 3);
  } finally {
    watch?.close();
    server.close();
    peer.close();
  }
});
