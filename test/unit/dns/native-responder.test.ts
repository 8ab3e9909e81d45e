/**
 * The native responder (native/loom-dns.c through src/os/dns-responder.ts) against the JS
 * reference.
 *
 * 1. Property: the native table's answer and `replyFromCacheInto` (JS) get the same generated
 *    datagrams (random case, EDNS present/absent/odd, every kind of type, id and flag bits,
 *    cut and mutated bytes, names in and out of the table, replies over the client's limit),
 *    with the same round-robin generator (splitmix64, seeded alike), and must give the same
 *    bytes, or both "not answered from the cache".
 * 2. The thread on a real UDP socket on 127.0.0.1: answers, counters folded into the server's,
 *    a store change sends the next query for the name to JS (never a stale answer), upstream
 *    forwarding through the ring, oversized and garbage floods, stop and join.
 * The library is part of every build (scripts/build-native.mjs, gcc is required there): a
 * missing one fails these tests rather than skipping them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { cacheEntryFor, replyFromCacheInto, resolveLocally, type AnswerPolicy, type CachedAnswer } from '../../../src/dns/answer.js';
import { inspectQuery, newQuestionPeek, peekQuestion } from '../../../src/dns/query.js';
import { DnsServer, type DnsServerInit } from '../../../src/dns/server.js';
import { NATIVE_ENV, parseDnsOptions } from '../../../src/dns/daemon-options.js';
import { NativeAnswerTable, nativeDnsLibrary } from '../../../src/os/dns-responder.js';
import { isLoomError } from '../../../src/core/errors.js';
import { recordingLogger } from '../../../src/core/logger.js';
import { FakeDnsMesh } from './fake-mesh.js';
import { query, rcodeOf, startFakeUpstream } from './dns-client.js';
import { bindsAgain, burst, udpClient } from '../../helpers/udp-client.js';

const TEST = { timeout: 60_000 };
const GUARD_MS = 10_000;
const MASK = (1n << 64n) - 1n;

/** The JS twin of the library's generator (splitmix64, 53-bit doubles), for `replyFromCacheInto`. */
function splitmix(hi: number, lo: number): () => number {
  let state = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & MASK;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  };
}

const policy: AnswerPolicy = { domain: 'loom.local', ttlSeconds: 1 };
const QTYPES = ['A', 'AAAA', 'MX', 'TXT', 'PTR', 'ANY', 'SRV', 'CAA'] as dnsPacket.RecordType[];

/** Names: in the table (several sizes: `big` has 60 addresses, over 512 bytes), in the store only, unknown. */
function fixture(): { store: ReturnType<FakeDnsMesh['peer']>['store']; inTable: string[]; others: string[] } {
  const { store } = new FakeDnsMesh(1).peer(0);
  store.add('web.loom.local', '10.32.0.1', 'c1');
  for (let i = 2; i <= 4; i++) store.add('db.loom.local', `10.32.0.${i}`, `c${i}`);
  for (let i = 0; i < 60; i++) store.add('big.loom.local', `10.33.0.${i}`, `b${i}`);
  store.add('a_b-1.loom.local', '10.32.1.1', 'u1');
  store.add('quiet.loom.local', '10.32.1.2', 'q1');
  return { store, inTable: ['web.loom.local', 'db.loom.local', 'big.loom.local', 'a_b-1.loom.local', 'web', 'missing.loom.local', '1.0.32.10.in-addr.arpa', 'loom.local'], others: ['quiet.loom.local', 'example.org', 'nope.loom.local', 'ex ample.loom.local'] };
}

function encodeQuery(name: string, type: dnsPacket.RecordType, edns: number | null, id = 1, flags = dnsPacket.RECURSION_DESIRED): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags,
    questions: [{ type, name, class: 'IN' }],
    additionals: edns === null ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
}

/** Fills the JS map and the native table with the same entries: every in-table name x type kind x EDNS. */
function fillBoth(table: NativeAnswerTable, store: ReturnType<typeof fixture>['store'], names: string[]): Map<string, CachedAnswer> {
  const js = new Map<string, CachedAnswer>();
  const peek = newQuestionPeek();
  const generation = store.changeCount!;
  table.clear(generation);
  for (const name of names) {
    for (const type of ['A', 'ANY', 'PTR', 'MX'] as dnsPacket.RecordType[]) {
      for (const edns of [null, 4096]) {
        const raw = encodeQuery(name, type, edns);
        const inspected = inspectQuery(raw);
        if (inspected.kind !== 'query' || !peekQuestion(raw, peek)) continue;
        const resolution = resolveLocally(inspected.query, store, policy);
        if (resolution.kind !== 'answer') continue;
        const entry = cacheEntryFor(inspected.query, peek, resolution);
        if (entry === null) continue;
        js.set(peek.key, entry);
        const outcome = table.put(generation, Buffer.from(peek.key, 'latin1'), entry.template, Uint16Array.from(entry.nameOffsets), Uint16Array.from(entry.addressOffsets), entry.rcode);
        assert.equal(outcome, 'stored', `put ${name} ${type} ${edns}`);
      }
    }
  }
  return js;
}

/** A generated datagram: a query of a known or unknown name in random case, or damage to one. */
const datagramArb = (names: string[]): fc.Arbitrary<Buffer> => {
  const casing = fc.array(fc.boolean(), { minLength: 64, maxLength: 64 });
  const base = fc
    .record({
      name: fc.constantFrom(...names),
      casing,
      type: fc.constantFrom(...QTYPES),
      edns: fc.option(fc.oneof(fc.constantFrom(0, 511, 512, 600, 1232, 4096, 65535), fc.integer({ min: 0, max: 65535 })), { nil: null }),
      id: fc.integer({ min: 0, max: 0xffff }),
      // Byte 2 within 0..7 (QUERY, QR=0: the peekable case) with its low bits (RD, TC, AA) and byte 3 at random, or anything.
      flags: fc.oneof(fc.constant(dnsPacket.RECURSION_DESIRED), fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 255 })).map(([b2, b3]) => (b2 << 8) | b3), fc.integer({ min: 0, max: 0xffff })),
    })
    .map(({ name, casing, type, edns, id, flags }) => {
      const cased = [...name].map((c, i) => (casing[i % casing.length] ? c.toUpperCase() : c)).join('');
      try {
        return encodeQuery(cased, type, edns, id, flags);
      } catch {
        return encodeQuery('web.loom.local', 'A', null, id);
      }
    });
  const damaged = fc.tuple(base, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([b, edits]) => {
    const out = Buffer.from(b);
    for (const [i, v] of edits) out[i % out.length] = v;
    return out;
  });
  const cut = fc.tuple(base, fc.nat()).map(([b, n]) => b.subarray(0, n % (b.length + 1)));
  const extended = fc.tuple(base, fc.uint8Array({ minLength: 1, maxLength: 12 })).map(([b, tail]) => Buffer.concat([b, tail]));
  // Counts in the header bent: two questions, answers present, 2 additionals.
  const counts = fc.tuple(base, fc.integer({ min: 4, max: 11 }), fc.integer({ min: 0, max: 3 })).map(([b, at, v]) => {
    const out = Buffer.from(b);
    out[at] = v;
    return out;
  });
  return fc.oneof({ weight: 6, arbitrary: base }, { weight: 2, arbitrary: damaged }, { weight: 1, arbitrary: cut }, { weight: 1, arbitrary: extended }, { weight: 1, arbitrary: counts }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)) });
};

test('native answers are byte for byte replyFromCacheInto, and it answers exactly what the JS cache would', TEST, async () => {
  const created = await NativeAnswerTable.create({ maxEntries: 256 });
  assert.ok(typeof created !== 'string', typeof created === 'string' ? created : '');
  const table = created;
  try {
    const { store, inTable, others } = fixture();
    const js = fillBoth(table, store, inTable);
    const peek = newQuestionPeek();
    const expected = Buffer.alloc(4096);
    const got = Buffer.alloc(4096);
    let answered = 0;
    let passed = 0;
    await fc.assert(
      fc.asyncProperty(datagramArb([...inTable, ...others]), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), async (raw, hi, lo) => {
        table.seed(hi, lo);
        const n = table.answer(raw, got);
        // The JS cache's rule (DnsServer.cachedAnswer): peekable, an entry, within the UDP limit.
        const entry = peekQuestion(raw, peek) ? js.get(peek.key) : undefined;
        if (entry === undefined || entry.template.length > peek.udpLimit) {
          assert.equal(n, 0, `JS would not answer ${raw.toString('hex')} from the cache; native did`);
          passed++;
          return;
        }
        const m = replyFromCacheInto(entry, raw, peek, splitmix(hi, lo), expected);
        assert.equal(n, m, `length for ${raw.toString('hex')}`);
        assert.equal(got.subarray(0, n).toString('hex'), expected.subarray(0, m).toString('hex'));
        answered++;
      }),
      { numRuns: 4000, seed: 0x14d45 },
    );
    assert.ok(answered > 1000 && passed > 500, `both outcomes are exercised (answered ${answered}, passed ${passed})`);
  } finally {
    table.destroy();
  }
});

test('native table: a put of another generation is refused, clear empties it, offsets outside the template are refused, full resets', TEST, async () => {
  const created = await NativeAnswerTable.create({ maxEntries: 8, arenaBytes: 4096 });
  assert.ok(typeof created !== 'string', typeof created === 'string' ? created : '');
  const table = created;
  try {
    const { store } = fixture();
    const js = fillBothOne(table, store, 'web.loom.local');
    const raw = encodeQuery('web.loom.local', 'A', null);
    const out = Buffer.alloc(4096);
    assert.ok(table.answer(raw, out) > 0);
    table.clear(store.changeCount! + 1);
    assert.equal(table.answer(raw, out), 0, 'cleared');
    const key = Buffer.from(js.key, 'latin1');
    const e = js.entry;
    assert.equal(table.put(store.changeCount!, key, e.template, Uint16Array.from(e.nameOffsets), Uint16Array.from(e.addressOffsets), e.rcode), 'refused', 'old generation');
    const now = store.changeCount! + 1;
    assert.equal(table.put(now, key, e.template, Uint16Array.from([e.template.length - 2]), new Uint16Array(0), 0), 'refused', 'name past the end');
    assert.equal(table.put(now, key, e.template, Uint16Array.from(e.nameOffsets), Uint16Array.from([e.template.length - 3]), 0), 'refused', 'address past the end');
    assert.equal(table.put(now, key, e.template.subarray(0, 14), new Uint16Array(0), new Uint16Array(0), 0), 'refused', 'question past the end');
    assert.equal(table.put(now, key, e.template, Uint16Array.from(e.nameOffsets), Uint16Array.from(e.addressOffsets), e.rcode), 'stored');
    assert.equal(table.put(now, key, e.template, Uint16Array.from(e.nameOffsets), Uint16Array.from(e.addressOffsets), e.rcode), 'present');
    assert.ok(table.answer(raw, out) > 0);
    // Eight more keys in a table of 8 holding one: the eighth put empties it first.
    for (const k of 'abcdefgh') assert.equal(table.put(now, Buffer.from(`\u0001${k}\u0000`, 'latin1'), e.template, new Uint16Array(0), new Uint16Array(0), 0), 'stored');
    assert.equal(table.stats().tableResets, 1);
    assert.equal(table.answer(raw, out), 0, 'web went with the reset');
  } finally {
    table.destroy();
  }
});

function fillBothOne(table: NativeAnswerTable, store: ReturnType<typeof fixture>['store'], name: string): { key: string; entry: CachedAnswer } {
  const map = fillBoth(table, store, [name]);
  const peek = newQuestionPeek();
  assert.ok(peekQuestion(encodeQuery(name, 'A', null), peek));
  return { key: peek.key, entry: map.get(peek.key)! };
}

// ----- the thread on a real socket -----------------------------------------------------------

const idOf = (r: Buffer): number => r.readUInt16BE(0);
const withId = (id: number) => (replies: Buffer[]): boolean => replies.some((r) => r.length >= 2 && idOf(r) === id);
const addressesOf = (r: Buffer): string[] => (dnsPacket.decode(r).answers ?? []).map((a) => (a.type === 'A' ? a.data : `?${a.type}`)).sort();

async function withNativeServer(init: DnsServerInit, body: (server: DnsServer, port: number, socket: Socket) => Promise<void>): Promise<void> {
  const { store } = new FakeDnsMesh(1).peer(0);
  const server = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf', ...init });
  server.add('web', '10.32.0.1', 'c1');
  server.add('db', '10.32.0.2', 'c2');
  server.add('db', '10.32.0.3', 'c3');
  const { udp } = await server.start({ udp: { host: '127.0.0.1', port: 0 } });
  const socket = await udpClient();
  try {
    assert.equal(server.udpStats().path, 'native', 'the native path is the default when its library loads');
    await body(server, udp!.port, socket);
  } finally {
    socket.close();
    await server.stop();
  }
}

test('native thread: answers on the socket, the second ask natively, counters folded into the server', TEST, async () => {
  await withNativeServer({}, async (server, port, socket) => {
    const [first] = await burst(socket, port, [query('WEB.loom.local', 'A', { id: 1 })], withId(1));
    assert.deepEqual(addressesOf(first!), ['10.32.0.1']);
    assert.equal(dnsPacket.decode(first!).questions?.[0]?.name, 'WEB.loom.local', 'question case echoed');
    assert.equal(server.udpStats().native!.answered, 0, 'a miss: JS answered and put the entry');
    for (let i = 0; i < 20; i++) {
      const [r] = await burst(socket, port, [query(i % 2 === 0 ? 'web.LOOM.local' : 'db.loom.local', 'A', { id: 100 + i })], withId(100 + i));
      assert.deepEqual(addressesOf(r!), i % 2 === 0 ? ['10.32.0.1'] : ['10.32.0.2', '10.32.0.3']);
      assert.equal(idOf(r!), 100 + i);
    }
    // NXDOMAIN and NODATA are cached too.
    for (let i = 0; i < 3; i++) {
      const [nx] = await burst(socket, port, [query('gone.loom.local', 'A', { id: 200 + i })], withId(200 + i));
      assert.equal(rcodeOf(nx!), 3);
      const [mx] = await burst(socket, port, [query('web.loom.local', 'MX', { id: 300 + i })], withId(300 + i));
      assert.equal(rcodeOf(mx!), 0);
      assert.deepEqual(addressesOf(mx!), []);
    }
    const udp = server.udpStats();
    // web: 1 miss then 10 native; db: 1 miss then 9; gone and MX: 1 miss then 2 each.
    assert.equal(udp.native!.answered, 19 + 2 + 2, JSON.stringify(udp));
    const stats = server.stats();
    assert.equal(stats.queries, 27);
    assert.equal(stats.answeredLocally, 27);
    assert.equal(stats.nxdomain, 3);
    const types = server.queryTypeStats();
    assert.equal(types[0], 24, 'A');
    assert.equal(types[5], 3, 'MX');
    assert.equal(server.cacheStats().hits, 23);
    assert.equal(udp.batch!.sent, 23, 'the thread sent its replies');
  });
});

test('native thread: a store change sends the next query for the name to JS (never a stale answer)', TEST, async () => {
  await withNativeServer({}, async (server, port, socket) => {
    let id = 1;
    const askWeb = async (): Promise<Buffer> => {
      const i = id++;
      return (await burst(socket, port, [query('web.loom.local', 'A', { id: i })], withId(i)))[0]!;
    };
    await askWeb();
    await askWeb();
    assert.equal(server.udpStats().native!.answered, 1);
    const passedBefore = server.udpStats().native!.passed;
    server.add('web', '10.32.0.9', 'c9');
    assert.deepEqual(addressesOf(await askWeb()), ['10.32.0.1', '10.32.0.9'], 'the very next reply has the new address');
    assert.equal(server.udpStats().native!.passed, passedBefore + 1, 'it went to JS');
    assert.deepEqual(addressesOf(await askWeb()), ['10.32.0.1', '10.32.0.9']);
    assert.equal(server.udpStats().native!.answered, 2, 'then natively again');
    // A change to another name clears the whole table too: correctness over hit rate.
    server.remove('web', '10.32.0.1', 'c1');
    assert.deepEqual(addressesOf(await askWeb()), ['10.32.0.9']);
    server.removeContainer('c9');
    assert.equal(rcodeOf(await askWeb()), 3, 'removed: NXDOMAIN at once');
  });
});

test('native thread: forwarded names go through JS to the upstream and back; TCP is untouched', TEST, async () => {
  const upstream = await startFakeUpstream('192.0.2.44');
  const dir = mkdtempSync(join(tmpdir(), 'loom-native-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  try {
    await withNativeServer({ resolvConfPath: join(dir, 'resolv.conf'), upstreamPort: upstream.port }, async (server, port, socket) => {
      for (let i = 0; i < 3; i++) {
        const [r] = await burst(socket, port, [query('example.org', 'A', { id: 50 + i })], withId(50 + i));
        assert.deepEqual(addressesOf(r!), ['192.0.2.44']);
      }
      assert.equal(server.stats().forwarded, 3);
      assert.equal(server.udpStats().native!.answered, 0, 'never answered natively');
    });
  } finally {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('native thread: floods of garbage and oversized datagrams neither crash nor hang it; every one is counted', TEST, async () => {
  await withNativeServer({}, async (server, port, socket) => {
    const valid = query('web.loom.local', 'A', { id: 7, udpSize: 1232 });
    await burst(socket, port, [valid], withId(7));
    const rng = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 100 }).map((u) => Buffer.from(u)), fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
      const b = Buffer.from(valid);
      b[i] = v;
      return b;
    })), { numRuns: 3000, seed: 0x9a7 });
    let sent = 1;
    for (let round = 0; round < 30; round++) {
      const garbage = rng.slice(round * 100, round * 100 + 100);
      const barrierId = 0xf000 + round;
      const isBarrier = (r: Buffer): boolean => r.length >= 12 && idOf(r) === barrierId && addressesOf(r).join() === '10.32.0.1';
      const replies = await burst(socket, port, [...garbage, query('web.loom.local', 'A', { id: barrierId })], (rs) => rs.some((r) => { try { return isBarrier(r); } catch { return false; } }));
      for (const r of replies) assert.ok(r.length >= 12 && (r[2]! & 0x80) !== 0, 'replies are responses');
      sent += garbage.length + 1;
    }
    // Longer than the thread's 4096-byte slots: FORMERR from JS (a query header), or dropped.
    const oversized = Buffer.concat([query('web.loom.local', 'A', { id: 0x0bad }), Buffer.alloc(5000)]);
    const formerrs = await burst(socket, port, [oversized], withId(0x0bad));
    const formerr = formerrs.find((r) => idOf(r) === 0x0bad);
    assert.equal(rcodeOf(formerr!), 1);
    sent++;
    const stats = server.stats();
    const native = server.udpStats().native!;
    assert.ok(native.answered > 0 && native.passed > 0);
    // Each datagram counted once: answered, forwarded (SERVFAIL here), malformed or dropped.
    assert.equal(stats.queries, sent, JSON.stringify({ stats, native }));
    assert.equal(stats.queries, stats.answeredLocally + stats.forwarded + stats.malformed + stats.dropped);
  });
});

test('native thread: a burst of more misses than the ring holds is answered in full (the thread waits for JS, nothing is dropped)', TEST, async () => {
  await withNativeServer({}, async (server, port, socket) => {
    // 450 distinct unknown names, each a miss, sent by a worker thread while this (the server's)
    // event loop is blocked, so JS cannot drain the ring (256 slots): the thread must wait for
    // room while the socket's buffer holds what comes. Counted on the server's side: this
    // client's own receive buffer cannot hold 450 replies at once.
    const sent = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const socket = require('node:dgram').createSocket('udp4');
       let left = workerData.messages.length;
       for (const m of workerData.messages) socket.send(Buffer.from(m), workerData.port, '127.0.0.1', () => {
         if (--left === 0) { Atomics.store(workerData.sent, 0, 1); Atomics.notify(workerData.sent, 0); socket.close(); }
       });`,
      { eval: true, workerData: { port, sent, messages: Array.from({ length: 450 }, (_, i) => Uint8Array.from(query(`nope-${i}.loom.local`, 'A', { id: i }))) } },
    );
    try {
      Atomics.wait(sent, 0, 0, GUARD_MS);
      assert.equal(Atomics.load(sent, 0), 1, 'the worker sent them all');
      // Still blocked a moment: the thread reads what is queued and fills the ring.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    } finally {
      await worker.terminate();
    }
    const deadline = Date.now() + GUARD_MS;
    let received = 0;
    for (;;) {
      received = server.udpStats().batch!.received;
      if (received > 0 && server.stats().queries >= received) break;
      if (Date.now() > deadline) assert.fail(`stuck: ${JSON.stringify({ stats: server.stats(), udp: server.udpStats() })}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const native = server.udpStats().native!;
    // The kernel drops what finds the socket's buffer full (as on any path: while the thread
    // waits, that buffer holds what comes); more than the ring's 256 reached the server.
    assert.ok(received > 256, `received ${received}`);
    assert.equal(native.passed, received, 'every one went to JS');
    assert.equal(native.ringDrops, 0);
    assert.ok(native.ringWaits > 0, `the ring filled up: ${JSON.stringify(native)}`);
    const stats = server.stats();
    assert.equal(stats.dropped, 0);
    assert.equal(stats.nxdomain, received, 'all answered');
    // And the server still answers afterwards. Retried: this client's buffer may still be
    // overflowing with the last NXDOMAIN replies, and a reply that finds it full is lost.
    let answered: Buffer | undefined;
    for (let attempt = 0; attempt < 10 && answered === undefined; attempt++) {
      const id = 0xbe00 + attempt;
      const replies = await burst(socket, port, [query('web.loom.local', 'A', { id })], withId(id), { guardMs: 1000 }).catch(() => []);
      answered = replies.find((x) => idOf(x) === id);
    }
    assert.deepEqual(addressesOf(answered!), ['10.32.0.1']);
  });
});

test('native thread: stop joins the thread promptly, with datagrams still arriving, and frees the port', TEST, async () => {
  const { store } = new FakeDnsMesh(1).peer(0);
  const server = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf' });
  server.add('web', '10.32.0.1', 'c1');
  const { udp } = await server.start({ udp: { host: '127.0.0.1', port: 0 } });
  assert.equal(server.udpStats().path, 'native');
  const socket = await udpClient();
  try {
    await burst(socket, udp!.port, [query('web.loom.local', 'A', { id: 1 })], withId(1));
    for (let i = 0; i < 200; i++) socket.send(query('web.loom.local', 'A', { id: 10 + i }), udp!.port, '127.0.0.1');
    const t0 = performance.now();
    await server.stop();
    const stopMs = performance.now() - t0;
    // shutdown(SHUT_RD) wakes the blocked recvmmsg at once; the 500 ms SO_RCVTIMEO is only the safety net.
    assert.ok(stopMs < 2000, `stop took ${stopMs.toFixed(1)} ms`);
    await server.stop();
    await bindsAgain(udp!.port);
  } finally {
    socket.close();
  }
  // Idle (blocked in recvmmsg): the wake-up by shutdown, timed alone.
  const idle = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf' });
  await idle.start({ udp: { host: '127.0.0.1', port: 0 } });
  assert.equal(idle.udpStats().path, 'native');
  await new Promise((r) => setTimeout(r, 50));
  const t1 = performance.now();
  await idle.stop();
  const idleMs = performance.now() - t1;
  assert.ok(idleMs < 2000, `idle stop took ${idleMs.toFixed(1)} ms`);
});

test(`native path switch: ${NATIVE_ENV}=0 keeps the JS path under auto; unavailable library means the JS path, said once; "native" asked by name warns`, TEST, async () => {
  assert.equal(parseDnsOptions({}, {}).nativeResponder, true);
  assert.equal(parseDnsOptions({}, { [NATIVE_ENV]: '1' }).nativeResponder, true);
  assert.equal(parseDnsOptions({}, { [NATIVE_ENV]: '0' }).nativeResponder, false);
  assert.equal(parseDnsOptions({}, { LOOM_DNS_UDP: 'native' }).udpPath, 'native');
  assert.throws(() => parseDnsOptions({}, { [NATIVE_ENV]: 'yes' }), (e) => isLoomError(e, 'ERR_INVALID_CONFIG'));
  assert.ok(typeof (await nativeDnsLibrary()) !== 'string');
  const { store } = new FakeDnsMesh(1).peer(0);
  const off = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf', nativeResponder: false });
  await off.start({ udp: { host: '127.0.0.1', port: 0 } });
  assert.equal(off.udpStats().path, 'batched');
  await off.stop();
  const noCache = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf', answerCacheSize: 0 });
  await noCache.start({ udp: { host: '127.0.0.1', port: 0 } });
  assert.equal(noCache.udpStats().path, 'batched', 'nothing could fill the table without a cache');
  await noCache.stop();
  for (const udpPath of ['auto', 'native'] as const) {
    const logger = recordingLogger();
    const server = new DnsServer({ store, logger, openNativeResponder: async () => 'missing (test)' }, { resolvConfPath: '/nonexistent/resolv.conf', udpPath });
    server.add('web', '10.32.0.1', 'c1');
    const { udp } = await server.start({ udp: { host: '127.0.0.1', port: 0 } });
    assert.equal(server.udpStats().path, 'batched');
    const socket = await udpClient();
    try {
      const [r] = await burst(socket, udp!.port, [query('web.loom.local', 'A', { id: 3 })], withId(3));
      assert.deepEqual(addressesOf(r!), ['10.32.0.1']);
    } finally {
      socket.close();
      await server.stop();
    }
    if (udpPath === 'native') assert.ok(logger.records.some((l) => l.level === 'warn' && /native responder unavailable/.test(l.msg ?? '')));
  }
});
