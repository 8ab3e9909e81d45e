/**
 * The server's two UDP paths (docs/DNS.md): "batched" (recvmmsg/sendmmsg on the dgram socket's
 * fd) and "dgram". Real datagrams on 127.0.0.1. No timed assertions: every wait ends on a reply
 * (with a guard against hanging), and "nothing else was answered" is checked with a barrier
 * query sent after every expected reply has arrived.
 *
 * Why bursts are batches, deterministically: the client sends every datagram of a burst from
 * this thread before the event loop polls again, and loopback delivers each into the server's
 * queue during the send, so the server's first read finds all of them queued.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { UDP_PATH_ENV, parseDnsOptions } from '../../../src/dns/daemon-options.js';
import { DnsServer, type DnsServerComponents, type DnsServerInit, type UdpPath } from '../../../src/dns/server.js';
import type { UdpBatch } from '../../../src/os/udp-batch.js';
import { isLoomError } from '../../../src/core/errors.js';
import { recordingLogger } from '../../../src/core/logger.js';
import { FakeDnsMesh } from './fake-mesh.js';
import { query, rcodeOf } from './dns-client.js';
import { bindsAgain, burst, udpClient } from '../../helpers/udp-client.js';

const TEST = { timeout: 60_000 };
const PATHS: UdpPath[] = ['dgram', 'batched', 'native'];

async function withUdpServer(init: DnsServerInit, body: (server: DnsServer, port: number) => Promise<void>, components: Partial<DnsServerComponents> = {}, host = '127.0.0.1'): Promise<void> {
  const { store } = new FakeDnsMesh(1).peer(0);
  // No resolv.conf: forwarded questions get SERVFAIL at once, never a real resolver.
  const server = new DnsServer({ store, ...components }, { resolvConfPath: '/nonexistent/resolv.conf', random: () => 0, ...init });
  server.add('web', '10.32.0.1', 'c1');
  server.add('db', '10.32.0.2', 'c2');
  server.add('db', '10.32.0.3', 'c3');
  server.add('db', '10.32.0.4', 'c4');
  try {
    const bound = await server.start({ udp: { host, port: 0 } });
    await body(server, bound.udp!.port);
  } finally {
    await server.stop();
  }
}

const idOf = (r: Buffer): number => r.readUInt16BE(0);
const withId = (id: number) => (replies: Buffer[]): boolean => replies.some((r) => r.length >= 2 && idOf(r) === id);

function addresses(reply: Buffer): string[] {
  return (dnsPacket.decode(reply).answers ?? []).map((a) => (a.type === 'A' ? a.data : `?${a.type}`)).sort();
}

function answersWeb(reply: Buffer): boolean {
  try {
    return addresses(reply).join() === '10.32.0.1';
  } catch {
    return false;
  }
}

function header(fields: { id: number; flags?: number; qd?: number; an?: number; ar?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(fields.id, 0);
  b.writeUInt16BE(fields.flags ?? 0x0100, 2);
  b.writeUInt16BE(fields.qd ?? 1, 4);
  b.writeUInt16BE(fields.an ?? 0, 6);
  b.writeUInt16BE(fields.ar ?? 0, 10);
  return b;
}

/** The burst used below: what each id asks, and what its reply must say. */
function mixedBurst(count: number): { messages: Buffer[]; expect: Map<number, { rcode: number; addresses: string[] }> } {
  const kinds = [
    { name: 'web.loom.local', rcode: 0, addresses: ['10.32.0.1'] },
    { name: 'DB.loom.local', rcode: 0, addresses: ['10.32.0.2', '10.32.0.3', '10.32.0.4'] },
    { name: 'missing.loom.local', rcode: 3, addresses: [] },
    { name: 'example.org', rcode: 2, addresses: [] }, // forwarded, no upstreams: SERVFAIL
  ];
  const messages: Buffer[] = [];
  const expect = new Map<number, { rcode: number; addresses: string[] }>();
  for (let i = 0; i < count; i++) {
    const k = kinds[i % kinds.length]!;
    const id = 1000 + i;
    messages.push(query(k.name, 'A', i % 3 === 0 ? { id, udpSize: 1232 } : { id }));
    expect.set(id, { rcode: k.rcode, addresses: k.addresses });
  }
  return { messages, expect };
}

function checkReplies(replies: Buffer[], expect: Map<number, { rcode: number; addresses: string[] }>): void {
  assert.deepEqual(replies.map(idOf).sort(), [...expect.keys()].sort(), 'one reply per query');
  for (const r of replies) {
    const e = expect.get(idOf(r))!;
    assert.equal(rcodeOf(r), e.rcode, `rcode of ${idOf(r)}`);
    assert.deepEqual(addresses(r), e.addresses, `answers of ${idOf(r)}`);
  }
}

for (const path of PATHS) {
  test(`${path}: the server uses the path asked for`, TEST, async () => {
    await withUdpServer({ udpPath: path }, async (server) => {
      assert.equal(server.udpStats().path, path);
      assert.equal(server.udpStats().batch === null, path === 'dgram');
    });
  });

  test(`${path}: a burst of 60 queries (cached, uncached, 3 addresses, NXDOMAIN, forwarded) is answered, twice`, TEST, async () => {
    await withUdpServer({ udpPath: path }, async (server, port) => {
      const socket = await udpClient();
      try {
        const { messages, expect } = mixedBurst(60);
        // First burst: the cache fills from the first query of each name; second: mostly hits.
        for (let round = 0; round < 2; round++) {
          const replies = await burst(socket, port, messages, (r) => r.length >= expect.size);
          checkReplies(replies, expect);
        }
        const batch = server.udpStats().batch;
        if (path !== 'dgram') {
          // Native: the thread's recvmmsg read all 120; it sent the cached replies itself.
          assert.ok(batch !== null && batch.received > 0 && batch.flushes > 0, `recvmmsg drained datagrams: ${JSON.stringify(batch)}`);
          assert.ok(batch.sent > batch.flushes, 'sendmmsg sent several replies at once');
          assert.equal(batch.sendErrors, 0);
          if (path === 'native') assert.equal(batch.received, 2 * messages.length);
        } else assert.equal(batch, null);
        assert.ok(server.cacheStats().hits > 0);
      } finally {
        socket.close();
      }
    });
  });

  test(`${path}: malformed datagrams in the middle of a burst are dropped or get FORMERR; the rest is answered`, TEST, async () => {
    await withUdpServer({ udpPath: path }, async (server, port) => {
      const valid = query('web.loom.local', 'A', { id: 1 });
      const response = Buffer.from(query('web.loom.local', 'A', { id: 20 }));
      response[2] = response[2]! | 0x80;
      // Longer than the batched path's 4096-byte slot: cut there, so it must not be parsed.
      const oversized = Buffer.concat([header({ id: 16, qd: 0xffff, an: 0xffff, ar: 0xffff }), Buffer.alloc(5000, 0xc0)]);
      const oversizedResponse = Buffer.from(oversized);
      oversizedResponse.writeUInt16BE(21, 0);
      oversizedResponse[2] = oversizedResponse[2]! | 0x80;
      const messages = [
        query('web.loom.local', 'A', { id: 1 }),
        Buffer.from([1, 2, 3, 4, 5]), // shorter than a header: dropped
        response, // QR=1: dropped
        Buffer.concat([header({ id: 11 }), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), // pointer loop: FORMERR
        Buffer.concat([header({ id: 12, qd: 0xffff, an: 0xffff, ar: 0xffff }), valid.subarray(12)]), // huge counts: FORMERR
        query('db.loom.local', 'A', { id: 2 }),
        Buffer.alloc(0), // empty: dropped
        Buffer.concat([header({ id: 13 }), Buffer.from([3, 0x77, 0x65])]), // truncated question: FORMERR
        oversized, // FORMERR
        oversizedResponse, // dropped
        Buffer.concat([header({ id: 14, flags: 4 << 11 }), valid.subarray(12)]), // NOTIFY: NOTIMP
        query('missing.loom.local', 'A', { id: 3 }),
      ];
      const expected = new Map([
        [1, 0],
        [2, 0],
        [3, 3],
        [11, 1],
        [12, 1],
        [13, 1],
        [16, 1],
        [14, 4],
      ]);
      const socket = await udpClient();
      try {
        const replies = await burst(socket, port, messages, (r) => r.length >= expected.size);
        // Barrier: anything the server would still send for the burst is sent before it answers
        // this (it reads its queue in order and replies within the same turn of the event loop).
        const after = await burst(socket, port, [query('web.loom.local', 'A', { id: 99 })], withId(99));
        assert.deepEqual(after.map(idOf), [99], 'no reply to a dropped datagram came late');
        assert.deepEqual(new Map(replies.map((r) => [idOf(r), rcodeOf(r)])), expected);
        assert.ok(replies.every((r) => (r[2]! & 0x80) !== 0), 'every reply is a response');
        assert.deepEqual(addresses(replies.find((r) => idOf(r) === 2)!), ['10.32.0.2', '10.32.0.3', '10.32.0.4']);
        assert.equal(server.stats().malformed, 5);
      } finally {
        socket.close();
      }
    });
  });

  test(`${path}: stop() returns with datagrams still queued, releases the port, and is idempotent`, TEST, async () => {
    const { store } = new FakeDnsMesh(1).peer(0);
    const server = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf', udpPath: path });
    server.add('web', '10.32.0.1', 'c1');
    const { udp } = await server.start({ udp: { host: '127.0.0.1', port: 0 } });
    const socket = await udpClient();
    try {
      // Answered first (the server is live), then a burst it never gets to read.
      await burst(socket, udp!.port, [query('web.loom.local', 'A', { id: 1 })], withId(1));
      for (let i = 0; i < 50; i++) socket.send(query('web.loom.local', 'A', { id: 100 + i }), udp!.port, '127.0.0.1');
      await server.stop();
      await server.stop();
      assert.equal(server.udpStats().batch, null);
      // The port is free again: the socket (and the fd the batch used) is closed.
      await bindsAgain(udp!.port);
    } finally {
      socket.close();
    }
  });
}

test('batched: the server reads every datagram itself (recvmmsg on readiness), none through libuv; lone queries too', TEST, async () => {
  await withUdpServer({ udpPath: 'batched' }, async (server, port) => {
    const socket = await udpClient();
    try {
      const { messages, expect } = mixedBurst(40);
      const replies = await burst(socket, port, messages, (r) => r.length >= expect.size);
      checkReplies(replies, expect);
      // One at a time: each wake-up finds a single datagram, which libuv used to read itself.
      for (let i = 0; i < 5; i++) {
        const lone = await burst(socket, port, [query('web.loom.local', 'A', { id: 500 + i })], (r) => r.length >= 1);
        assert.equal(rcodeOf(lone[0]!), 0);
      }
      assert.equal(server.udpStats().batch!.received, messages.length + 5, 'every datagram was read by recvmmsg');
    } finally {
      socket.close();
    }
  });
});

test('both paths send the same bytes for the same burst', TEST, async () => {
  const { messages } = mixedBurst(40);
  const repliesOf = async (path: UdpPath): Promise<string[]> => {
    let out: string[] = [];
    await withUdpServer({ udpPath: path }, async (_server, port) => {
      const socket = await udpClient();
      try {
        await burst(socket, port, messages, (r) => r.length >= messages.length); // fills the cache
        out = (await burst(socket, port, messages, (r) => r.length >= messages.length)).map((r) => r.toString('hex')).sort();
      } finally {
        socket.close();
      }
    });
    return out;
  };
  assert.deepEqual(await repliesOf('batched'), await repliesOf('dgram'));
});

for (const path of ['batched', 'native'] as const) test(`${path}: IPv6 sources are answered too (skipped without ::1)`, TEST, async (t) => {
  const probe = createSocket('udp6');
  const hasV6 = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.bind(0, '::1', () => resolve(true));
  });
  probe.close();
  if (!hasV6) {
    t.skip('no ::1 on this machine');
    return;
  }
  await withUdpServer(
    { udpPath: path },
    async (server, port) => {
      assert.equal(server.udpStats().path, path);
      const socket = await udpClient('::1');
      try {
        const { messages, expect } = mixedBurst(20);
        checkReplies(await burst(socket, port, messages, (r) => r.length >= expect.size, { host: '::1' }), expect);
        assert.ok(server.udpStats().batch!.received > 0);
      } finally {
        socket.close();
      }
    },
    {},
    '::1',
  );
});

test('fallback: batched unavailable means dgram, with a warning when batched was asked for', TEST, async () => {
  for (const setting of ['batched', 'auto'] as const) {
    const logger = recordingLogger();
    let opened = 0;
    const openUdpBatch = async (): Promise<{ unavailable: string }> => {
      opened++;
      return { unavailable: 'koffi missing (test)' };
    };
    await withUdpServer(
      { udpPath: setting },
      async (server, port) => {
        assert.equal(server.udpStats().path, 'dgram');
        const socket = await udpClient();
        try {
          const { messages, expect } = mixedBurst(12);
          checkReplies(await burst(socket, port, messages, (r) => r.length >= expect.size), expect);
        } finally {
          socket.close();
        }
      },
      { openUdpBatch, logger },
    );
    assert.equal(opened, 1);
    const warned = logger.records.some((r) => r.level === 'warn' && /batched udp unavailable/.test(r.msg ?? ''));
    assert.equal(warned, setting === 'batched', `warning for ${setting}`);
  }
  let opened = 0;
  await withUdpServer({ udpPath: 'dgram' }, async () => {}, {
    openUdpBatch: async () => {
      opened++;
      return { unavailable: 'never asked' };
    },
  });
  assert.equal(opened, 0, 'the dgram path never opens a batch');
});

test('a batch that throws is abandoned for dgram, with a warning; the query is still answered', TEST, async () => {
  const logger = recordingLogger();
  const broken = {
    capacity: 4,
    full: false,
    replySlot: () => {
      throw new Error('broken batch (test)');
    },
    receive: () => {
      throw new Error('broken batch (test)');
    },
  } as unknown as UdpBatch;
  await withUdpServer(
    { udpPath: 'batched' },
    async (server, port) => {
      assert.equal(server.udpStats().path, 'batched');
      const socket = await udpClient();
      try {
        // Cached and uncached questions: the batch fails on the first either way.
        for (const [id, name] of [[1, 'web.loom.local'], [2, 'web.loom.local'], [3, 'missing.loom.local']] as const) {
          const replies = await burst(socket, port, [query(name, 'A', { id })], withId(id));
          assert.equal(rcodeOf(replies.find((r) => idOf(r) === id)!), name === 'web.loom.local' ? 0 : 3);
        }
      } finally {
        socket.close();
      }
      assert.deepEqual(server.udpStats(), { path: 'dgram', batch: null, native: null });
    },
    { logger, openUdpBatch: async () => ({ batch: broken }) },
  );
  assert.equal(logger.records.filter((r) => r.level === 'warn' && /batched udp failed/.test(r.msg ?? '')).length, 1);
});

test(`${UDP_PATH_ENV} picks the path at the edge (launch options), the server takes it from its init; a bad value is ERR_INVALID_CONFIG`, TEST, async () => {
  const { store } = new FakeDnsMesh(1).peer(0);
  assert.equal(parseDnsOptions({}, {}).udpPath, 'auto');
  assert.equal(parseDnsOptions({}, { [UDP_PATH_ENV]: '' }).udpPath, 'auto');
  const fromEnv = parseDnsOptions({}, { [UDP_PATH_ENV]: 'dgram' }).udpPath;
  assert.equal(fromEnv, 'dgram');
  const server = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf', udpPath: fromEnv });
  await server.start({ udp: { host: '127.0.0.1', port: 0 } });
  assert.equal(server.udpStats().path, 'dgram');
  await server.stop();
  const explicit = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf', udpPath: 'batched' });
  await explicit.start({ udp: { host: '127.0.0.1', port: 0 } });
  assert.equal(explicit.udpStats().path, 'batched', 'the init decides, not the environment');
  await explicit.stop();
  assert.throws(() => parseDnsOptions({}, { [UDP_PATH_ENV]: 'fast' }), (e) => isLoomError(e, 'ERR_INVALID_CONFIG'));
  assert.throws(() => new DnsServer({ store }, { udpPath: 'fast' as UdpPath }), (e) => isLoomError(e, 'ERR_INVALID_CONFIG'));
});

for (const path of ['batched', 'native'] as const) test(`${path} fuzz: bursts of random and mutated datagrams never stop the server answering`, TEST, async () => {
  await withUdpServer({ udpPath: path }, async (server, port) => {
    assert.equal(server.udpStats().path, path);
    const valid = query('web.loom.local', 'A', { id: 7, udpSize: 1232 });
    const mutated = fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((edits) => {
      const b = Buffer.from(valid);
      for (const [i, v] of edits) b[i] = v;
      return b;
    });
    const datagram = fc.oneof(fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)), mutated);
    const socket = await udpClient();
    let barrier = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(datagram, { minLength: 1, maxLength: 70 }), async (garbage) => {
          // The barrier rides at the end of the same burst: a cached name, so always answered.
          const id = 0xf000 + (barrier++ % 0x0fff);
          // Garbage may carry the barrier's id too: the barrier's reply is the one with its answer.
          const isBarrier = (r: Buffer): boolean => r.length >= 12 && idOf(r) === id && answersWeb(r);
          const replies = await burst(socket, port, [...garbage, query('web.loom.local', 'A', { id })], (rs) => rs.some(isBarrier));
          for (const r of replies) assert.ok(r.length >= 12 && (r[2]! & 0x80) !== 0, 'replies are responses');
        }),
        { numRuns: 60, seed: 0x10c0 },
      );
      assert.ok(server.udpStats().batch!.received > 0);
    } finally {
      socket.close();
    }
  });
});
