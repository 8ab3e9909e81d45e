/**
 * The answer cache (the fast path) against the full path: byte-identical replies for random
 * records and questions, immediate invalidation, and `peekQuestion` accepting only what the full
 * parser accepts the same way. No sockets: replies come from `DnsServer.answer`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { DnsServer } from '../../../src/dns/server.js';
import { inspectQuery, newQuestionPeek, peekQuestion } from '../../../src/dns/query.js';
import { FakeDnsMesh } from './fake-mesh.js';

/** A resettable xorshift stream, so two servers can be handed the same "random" numbers. */
class SeededRandom {
  private state = 1;
  reset(seed: number): void {
    this.state = seed >>> 0 || 1;
  }
  readonly next = (): number => {
    let s = this.state;
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    this.state = s;
    return s / 0x1_0000_0000;
  };
}

function servers(mesh = new FakeDnsMesh(1), peer = 0): { cached: DnsServer; uncached: DnsServer; random: SeededRandom; mesh: FakeDnsMesh } {
  const { store } = mesh.peer(peer);
  const random = new SeededRandom();
  const init = { resolvConfPath: '/nonexistent/resolv.conf', random: random.next };
  return { cached: new DnsServer({ store }, init), uncached: new DnsServer({ store }, { ...init, answerCacheSize: 0 }), random, mesh };
}

interface Question {
  name: string;
  type: dnsPacket.RecordType | 'ANY';
  id: number;
  rd: boolean;
  udpSize: number | null;
}

function encodeQuestion(q: Question): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: q.id,
    flags: q.rd ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ type: q.type as dnsPacket.RecordType, name: q.name, class: 'IN' }],
    additionals: q.udpSize === null ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: q.udpSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
}

function randomCase(name: string, mask: number): string {
  return [...name].map((c, i) => ((mask >> i % 31) & 1 ? c.toUpperCase() : c)).join('');
}

const labels = ['web', 'db', 'cache', 'api-1', 'x_y', 'big'];
const recordArb = fc.record({ label: fc.constantFrom(...labels), host: fc.integer({ min: 1, max: 60 }), container: fc.integer({ min: 1, max: 5 }) });
const questionArb = fc.record({
  label: fc.constantFrom(...labels, 'nope', 'other.example.com'),
  form: fc.constantFrom('fqdn', 'single', 'reverse', 'apex'),
  reverseHost: fc.integer({ min: 1, max: 61 }),
  type: fc.constantFrom<dnsPacket.RecordType | 'ANY'>('A', 'A', 'ANY', 'AAAA', 'MX', 'PTR'),
  id: fc.integer({ min: 0, max: 0xffff }),
  rd: fc.boolean(),
  udpSize: fc.constantFrom<number | null>(null, null, 512, 1232, 4096),
  caseMask: fc.integer({ min: 0, max: 0x7fffffff }),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
});

function nameOf(q: { label: string; form: string; reverseHost: number }): string {
  switch (q.form) {
    case 'single':
      return q.label;
    case 'reverse':
      return `${q.reverseHost}.0.32.10.in-addr.arpa`;
    case 'apex':
      return 'loom.local';
    default:
      return q.label.includes('.') ? q.label : `${q.label}.loom.local`;
  }
}

test('property: a cached reply is byte for byte the reply of the full path (same random order)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(recordArb, { maxLength: 60 }), fc.array(questionArb, { minLength: 1, maxLength: 12 }), async (records, questions) => {
      const { cached, uncached, random } = servers();
      for (const r of records) cached.add(r.label, `10.32.0.${r.host}`, `c${r.container}`);
      for (const q of questions) {
        const raw = encodeQuestion({ name: randomCase(nameOf(q), q.caseMask), type: q.type, id: q.id, rd: q.rd, udpSize: q.udpSize });
        await cached.answer(raw, false); // fills the cache when cacheable
        const hitsBefore = cached.cacheStats().hits;
        random.reset(q.seed);
        const fast = await cached.answer(raw, false);
        const tookFastPath = cached.cacheStats().hits > hitsBefore;
        random.reset(q.seed);
        const full = await uncached.answer(raw, false);
        assert.ok(full !== null && fast !== null);
        assert.equal(fast.toString('hex'), full.toString('hex'), `${nameOf(q)} ${q.type} (fast path: ${tookFastPath})`);
        // Every local, untruncated answer to a plain question must come from the cache.
        const rcode = full[3]! & 0x0f;
        const truncated = (full[2]! & 0x02) !== 0;
        const local = (full[2]! & 0x04) !== 0; // AA: answered from our records
        if (local && !truncated) assert.ok(tookFastPath, `expected a cache hit for ${nameOf(q)} ${q.type} (rcode ${rcode})`);
      }
    }),
    { numRuns: 150 },
  );
});

test('over TCP the cache serves answers too big for UDP; UDP still gets them truncated', async () => {
  const { cached, uncached, random } = servers();
  for (let i = 1; i <= 50; i++) cached.add('big', `10.32.1.${i}`, `c${i}`);
  const raw = encodeQuestion({ name: 'big.loom.local', type: 'A', id: 9, rd: true, udpSize: null });
  await cached.answer(raw, true);
  for (const overTcp of [true, false]) {
    random.reset(7);
    const fast = await cached.answer(raw, overTcp);
    random.reset(7);
    const full = await uncached.answer(raw, overTcp);
    assert.equal(fast!.toString('hex'), full!.toString('hex'));
    assert.equal((fast![2]! & 0x02) !== 0, !overTcp, 'TC only over UDP');
  }
  assert.equal(cached.stats().truncated, 1);
});

function addressesOf(reply: Buffer | null): string[] {
  assert.ok(reply);
  return (dnsPacket.decode(reply).answers ?? []).map((a) => (a.type === 'A' ? a.data : `?${a.type}`)).sort();
}

function rcodeOf(reply: Buffer | null): number {
  assert.ok(reply);
  return reply[3]! & 0x0f;
}

test('record changes show in the very next reply: add, remove, and a peer becoming unreachable', async () => {
  const mesh = new FakeDnsMesh(2);
  mesh.connectAll();
  const { cached } = servers(mesh, 0);
  const raw = encodeQuestion({ name: 'web.loom.local', type: 'A', id: 1, rd: true, udpSize: null });
  assert.equal(rcodeOf(await cached.answer(raw, false)), 3, 'NXDOMAIN before any record');
  assert.equal(rcodeOf(await cached.answer(raw, false)), 3);
  const hits = cached.cacheStats().hits;
  assert.ok(hits >= 1, 'the NXDOMAIN is served from the cache');

  cached.add('web', '10.32.0.1', 'c1');
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1']);
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1']);
  cached.add('web', '10.32.0.2', 'c2');
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1', '10.32.0.2']);

  // A record of the other peer, learned by gossip, then hidden when that peer is cut off.
  mesh.peer(1).store.add('web.loom.local', '10.32.0.9', 'r1');
  assert.ok(mesh.settle());
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1', '10.32.0.2', '10.32.0.9']);
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1', '10.32.0.2', '10.32.0.9']);
  mesh.partition([[0], [1]]);
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1', '10.32.0.2']);
  mesh.heal();
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1', '10.32.0.2', '10.32.0.9']);

  assert.equal(cached.removeContainer('c1'), 1);
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.2', '10.32.0.9']);
  assert.equal(cached.remove('web'), 1);
  mesh.peer(1).store.remove('web.loom.local');
  assert.ok(mesh.settle());
  assert.equal(rcodeOf(await cached.answer(raw, false)), 3, 'NXDOMAIN again once every record is gone');
  assert.ok(cached.cacheStats().hits > hits);
});

test('a single label that stops resolving is forwarded again, not answered from the cache', async () => {
  const { cached } = servers();
  cached.add('web', '10.32.0.1', 'c1');
  const raw = encodeQuestion({ name: 'web', type: 'A', id: 3, rd: true, udpSize: null });
  await cached.answer(raw, false);
  assert.deepEqual(addressesOf(await cached.answer(raw, false)), ['10.32.0.1']);
  cached.remove('web');
  assert.equal(rcodeOf(await cached.answer(raw, false)), 2, 'forwarded; no upstream configured: SERVFAIL');
  assert.equal(cached.stats().forwarded, 1);
});

test('the cache holds at most its capacity', async () => {
  const { store } = new FakeDnsMesh(1).peer(0);
  const server = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf', answerCacheSize: 4 });
  for (let i = 0; i < 10; i++) await server.answer(encodeQuestion({ name: `n${i}.loom.local`, type: 'A', id: i, rd: false, udpSize: null }), false);
  assert.equal(server.cacheStats().entries, 4);
  assert.throws(() => new DnsServer({ store }, { answerCacheSize: -1 }), (e: unknown) => (e as { code?: string }).code === 'ERR_INVALID_CONFIG');
});

/** The dotted form of the uncompressed name at offset 12. */
function wireName(raw: Buffer, end: number): string {
  const parts: string[] = [];
  for (let o = 12; o < end - 1; o += raw[o]! + 1) parts.push(raw.toString('latin1', o + 1, o + 1 + raw[o]!));
  return parts.join('.');
}

test('property: peekQuestion accepts only queries the full parser reads the same way', () => {
  const peek = newQuestionPeek();
  const base = encodeQuestion({ name: 'Web.Loom.Local', type: 'A', id: 5, rd: true, udpSize: 1232 });
  const plain = encodeQuestion({ name: 'db.loom.local', type: 'AAAA', id: 6, rd: false, udpSize: null });
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    fc.tuple(fc.constantFrom(base, plain), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat()).map(([b, edits, cut]) => {
      const m = Buffer.from(b);
      for (const [at, v] of edits) m[at % m.length] = v;
      return cut % 5 === 0 ? m.subarray(0, cut % m.length) : m;
    }),
  );
  fc.assert(
    fc.property(bytes, (u8) => {
      const raw = Buffer.from(u8);
      if (!peekQuestion(raw, peek)) return;
      const inspection = inspectQuery(raw);
      assert.equal(inspection.kind, 'query');
      if (inspection.kind !== 'query') return;
      const q = inspection.query;
      assert.equal(peek.questionEnd, q.questionEnd);
      assert.equal(peek.udpLimit, Math.min(4096, Math.max(512, q.ednsUdpSize ?? 512)));
      assert.equal(wireName(raw, peek.nameEnd).toLowerCase(), q.name);
    }),
    { numRuns: 3000 },
  );
  assert.ok(peekQuestion(base, peek) && peekQuestion(plain, peek), 'the plain cases are accepted');
});

test('property: the question key is the lower-cased name bytes and the kind, the same string for a repeated question, and tells different questions apart', () => {
  const peek = newQuestionPeek();
  const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
  const question = fc.record({ labels: fc.array(label, { minLength: 1, maxLength: 4 }), type: fc.constantFrom('A', 'AAAA', 'PTR', 'MX'), edns: fc.boolean() });
  const seen = new Map<string, string>();
  fc.assert(
    fc.property(question, fc.nat(), ({ labels, type, edns }, id) => {
      const name = labels.join('.');
      const raw = encodeQuestion({ name, type, id: id % 65536, rd: true, udpSize: edns ? 1232 : null });
      assert.ok(peekQuestion(raw, peek));
      const key = peek.key;
      // What the key must be, made the plain way: length-prefixed lower-case labels, then the kind.
      const expected = Buffer.concat(labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l.toLowerCase(), 'latin1')])));
      assert.equal(key.slice(0, -1), expected.toString('latin1'));
      // The same question again (another id, another case) gives the same key.
      const again = encodeQuestion({ name: name.toUpperCase(), type, id: (id + 1) % 65536, rd: false, udpSize: edns ? 1232 : null });
      assert.ok(peekQuestion(again, peek));
      assert.equal(peek.key, key);
      // AAAA and MX share a kind: the same (NODATA) answer, so the same key.
      const identity = `${name.toLowerCase()} ${type === 'MX' ? 'AAAA' : type} ${edns}`;
      const before = seen.get(key);
      if (before !== undefined) assert.equal(before, identity, 'one key, one question');
      seen.set(key, identity);
    }),
    { numRuns: 3000 },
  );
});
