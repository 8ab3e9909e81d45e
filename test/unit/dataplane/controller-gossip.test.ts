import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { GossipChannel, GossipData } from '../../../src/mesh/types.js';
import { DataplaneGossipData, decodeDataplaneGossip, MacGossip, type DataplaneEntry } from '../../../src/dataplane/controller/index.js';

const PEERS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'] as PeerName[];
const MACS = ['02:aa:00:00:00:01', '02:aa:00:00:00:02', '0a:bb:00:00:00:03', '06:cc:00:00:00:04'];

const entryArb: fc.Arbitrary<DataplaneEntry> = fc.record({
  peer: fc.constantFrom(...PEERS),
  version: fc.integer({ min: 1, max: 6 }),
  macs: fc.subarray(MACS).map((m) => [...m].sort()),
});
const dataArb = fc.array(entryArb, { maxLength: 6 }).map((es) => new DataplaneGossipData(es));

/** Canonical form for comparing replicas. */
function canon(d: GossipData): string {
  return Buffer.from(d.encode()).toString('hex');
}
function copy(d: DataplaneGossipData): DataplaneGossipData {
  return new DataplaneGossipData(d.entries.values());
}

test('merge is commutative, associative and idempotent', () => {
  fc.assert(
    fc.property(dataArb, dataArb, dataArb, (a, b, c) => {
      assert.equal(canon(copy(a).merge(b)), canon(copy(b).merge(a)), 'commutative');
      assert.equal(canon(copy(a).merge(copy(b).merge(c))), canon(copy(a).merge(b).merge(c)), 'associative');
      assert.equal(canon(copy(a).merge(a)), canon(a), 'idempotent');
    }),
    { numRuns: 500 },
  );
});

test('merge keeps the greatest version per peer', () => {
  const old: DataplaneEntry = { peer: PEERS[0]!, version: 3, macs: [MACS[0]!] };
  const newer: DataplaneEntry = { peer: PEERS[0]!, version: 4, macs: [] };
  const d = new DataplaneGossipData([newer]).merge(new DataplaneGossipData([old])) as DataplaneGossipData;
  assert.deepEqual(d.entries.get(PEERS[0]!), newer);
});

test('encode/decode round-trips', () => {
  fc.assert(
    fc.property(dataArb, (a) => {
      assert.equal(canon(decodeDataplaneGossip(a.encode())), canon(a));
      assert.deepEqual(new Map(decodeDataplaneGossip(a.encode()).entries), new Map([...a.entries].map(([k, e]) => [k, { ...e, macs: [...e.macs] }])));
    }),
  );
});

test('malformed bytes are ERR_PROTOCOL, never a crash', () => {
  const good = new DataplaneGossipData([{ peer: PEERS[0]!, version: 7, macs: [MACS[0]!, MACS[1]!] }]).encode();
  const cases: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array()],
    ['unknown format', Uint8Array.from([9, 0, 0])],
    ['truncated entry', good.subarray(0, 10)],
    ['truncated MAC list', good.subarray(0, good.length - 1)],
    ['trailing bytes', Uint8Array.from([...good, 0])],
    ['too many entries', Uint8Array.from([1, 0xff, 0xff])],
  ];
  const multicast = Uint8Array.from(good);
  multicast[19] = 0x01; // first byte of the first MAC: multicast bit
  cases.push(['multicast MAC', multicast]);
  const unsorted = Uint8Array.from(good);
  unsorted.set(good.subarray(25, 31), 19);
  unsorted.set(good.subarray(19, 25), 25);
  cases.push(['unsorted MACs', unsorted]);
  const hugeVersion = Uint8Array.from(good);
  hugeVersion.fill(0xff, 9, 17);
  cases.push(['version above 2^53', hugeVersion]);
  for (const [what, bytes] of cases) assert.throws(() => decodeDataplaneGossip(bytes), { code: 'ERR_PROTOCOL' }, what);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        decodeDataplaneGossip(bytes);
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'ERR_PROTOCOL');
      }
    }),
  );
});

/** A channel that records broadcasts. */
function recordingChannel(): GossipChannel & { sent: DataplaneGossipData[] } {
  const sent: DataplaneGossipData[] = [];
  return {
    name: 'dataplane',
    sent,
    gossipUnicast() {},
    gossipBroadcast: (u) => void sent.push(u as DataplaneGossipData),
    gossipNeighbours() {},
  };
}

test('a local change bumps our version and is broadcast; an unchanged list is not', () => {
  const g = new MacGossip({ self: PEERS[0]!, logger: silentLogger, wallClock: () => 1000 });
  const ch = recordingChannel();
  g.attach(ch);
  assert.equal(ch.sent.length, 1, 'attach announces our entry');
  g.setLocalMacs([MACS[1]!, MACS[0]!.toUpperCase()]);
  assert.deepEqual(g.own, { peer: PEERS[0], version: 1001, macs: [MACS[0], MACS[1]] });
  assert.equal(ch.sent.length, 2);
  assert.deepEqual([...ch.sent[1]!.entries.values()], [g.own]);
  g.setLocalMacs([MACS[0]!, MACS[1]!]);
  assert.equal(ch.sent.length, 2, 'same list: nothing sent');
  assert.throws(() => g.setLocalMacs(['ff:ff:ff:ff:ff:ff']), { code: 'ERR_INVALID_ARGUMENT' });
});

test('remote gossip: news is returned and reported; stale copies are not', () => {
  const g = new MacGossip({ self: PEERS[0]!, logger: silentLogger, wallClock: () => 1 });
  let changes = 0;
  g.onChange(() => changes++);
  const v2 = new DataplaneGossipData([{ peer: PEERS[1]!, version: 2, macs: [MACS[2]!] }]).encode();
  const v1 = new DataplaneGossipData([{ peer: PEERS[1]!, version: 1, macs: [] }]).encode();
  const news = g.onGossip(v2) as DataplaneGossipData;
  assert.deepEqual(g.entryOf(PEERS[1]!)?.macs, [MACS[2]]);
  assert.equal(news.entries.size, 1);
  assert.equal(changes, 1);
  assert.equal(g.onGossipBroadcast(PEERS[1]!, v1), null, 'older version is not news');
  assert.equal(g.onGossip(v2), null, 'the same again is not news');
  assert.equal(changes, 1);
  assert.throws(() => g.onGossip(Uint8Array.from([1, 0])), { code: 'ERR_PROTOCOL' });
});

test('the owner re-asserts its entry over a stale copy from a previous run', () => {
  const g = new MacGossip({ self: PEERS[0]!, logger: silentLogger, wallClock: () => 5 });
  const ch = recordingChannel();
  g.attach(ch);
  g.setLocalMacs([MACS[3]!]);
  const stale = new DataplaneGossipData([{ peer: PEERS[0]!, version: 50, macs: [MACS[0]!] }]).encode();
  assert.equal(g.onGossip(stale), null, 'our own entry is never news from others');
  assert.deepEqual(g.own, { peer: PEERS[0], version: 51, macs: [MACS[3]] }, 'our MACs, above the stale version');
  assert.deepEqual([...ch.sent.at(-1)!.entries.values()], [g.own], 'and broadcast');
});
