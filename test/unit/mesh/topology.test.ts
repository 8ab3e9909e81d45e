import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import type { PeerName, PeerUid } from '../../../src/core/ids.js';
import { Topology, TopologyUpdate, type PeerEntry } from '../../../src/mesh/topology.js';
import { decodeEntries, encodeEntries } from '../../../src/mesh/topology-codec.js';

const names = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04'] as PeerName[];
const uids = ['0000000000000001', '00000000000000ff', 'abcdef0123456789'] as PeerUid[];

const arbEntry: fc.Arbitrary<PeerEntry> = fc.record({
  name: fc.constantFrom(...names),
  nickname: fc.constantFrom('a', 'host-b', 'ünï'),
  uid: fc.constantFrom(...uids),
  version: fc.integer({ min: 1, max: 5 }),
  connections: fc.array(
    fc.record({ name: fc.constantFrom(...names), address: fc.constantFrom('10.0.0.1:6783', '[::1]:6783'), outbound: fc.boolean(), established: fc.boolean() }),
    { maxLength: 3 },
  ),
});
const arbUpdate = fc.array(arbEntry, { maxLength: 6 }).map((entries) => new TopologyUpdate(entries));

function canonical(u: TopologyUpdate): string {
  return Buffer.from(new TopologyUpdate([...u.entries.values()].sort((a, b) => (a.name < b.name ? -1 : 1))).encode()).toString('hex');
}
const merge = (a: TopologyUpdate, b: TopologyUpdate): TopologyUpdate => a.merge(b) as TopologyUpdate;

test('topology merge is commutative', () => {
  fc.assert(fc.property(arbUpdate, arbUpdate, (a, b) => canonical(merge(a, b)) === canonical(merge(b, a))));
});

test('topology merge is associative', () => {
  fc.assert(fc.property(arbUpdate, arbUpdate, arbUpdate, (a, b, c) => canonical(merge(merge(a, b), c)) === canonical(merge(a, merge(b, c)))));
});

test('topology merge is idempotent and does not mutate its inputs', () => {
  fc.assert(
    fc.property(arbUpdate, arbUpdate, (a, b) => {
      const before = canonical(a);
      assert.equal(canonical(merge(a, a)), before);
      merge(a, b);
      assert.equal(canonical(a), before);
    }),
  );
});

test('merge keeps the greater (version, uid) per peer', () => {
  const base = { name: names[0]!, nickname: 'a', connections: [] };
  const old: PeerEntry = { ...base, uid: uids[2]!, version: 3 };
  const newer: PeerEntry = { ...base, uid: uids[0]!, version: 4 };
  const sameVersionBiggerUid: PeerEntry = { ...base, uid: uids[1]!, version: 4 };
  const m = merge(new TopologyUpdate([old]), new TopologyUpdate([newer, sameVersionBiggerUid]));
  assert.equal(m.entries.get(names[0]!)?.uid, uids[1]);
  assert.equal(m.entries.get(names[0]!)?.version, 4);
});

test('encode/decode round-trips', () => {
  fc.assert(fc.property(arbUpdate, (u) => canonical(TopologyUpdate.decode(u.encode())) === canonical(u)));
});

test('decoding arbitrary or truncated bytes throws ERR_PROTOCOL, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeEntries(bytes);
      } catch (err) {
        assert.ok(isLoomError(err, 'ERR_PROTOCOL'), String(err));
      }
    }),
  );
  // Valid encodings with bytes overwritten: gets past the header into the bounds checks.
  fc.assert(
    fc.property(arbUpdate, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (u, edits) => {
      const bytes = u.encode();
      for (const [at, value] of edits) bytes[1 + (at % Math.max(1, bytes.length - 1))] = value;
      try {
        decodeEntries(bytes);
      } catch (err) {
        assert.ok(isLoomError(err, 'ERR_PROTOCOL'), String(err));
      }
    }),
  );
  const good = encodeEntries([{ name: names[0]!, nickname: 'x', uid: uids[0]!, version: 1, connections: [{ name: names[1]!, address: '10.0.0.2:6783', outbound: true, established: true }] }]);
  for (let cut = 0; cut < good.length; cut++) {
    assert.throws(() => decodeEntries(good.subarray(0, cut)), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
  }
  const huge = new Uint8Array([1, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => decodeEntries(huge), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('setOurConnections bumps the version only on a real change', () => {
  const t = new Topology({ name: names[0]!, nickname: 'a', uid: uids[0]! });
  const conn = { name: names[1]!, address: '10.0.0.2:6783', outbound: true, established: true };
  assert.equal(t.setOurConnections([conn])?.version, 2);
  assert.equal(t.setOurConnections([conn]), null);
  assert.equal(t.setOurConnections([])?.version, 3);
});

test('an entry about ourselves from a previous incarnation makes us bump past it', () => {
  const t = new Topology({ name: names[0]!, nickname: 'a', uid: uids[0]! });
  const stale: PeerEntry = { name: names[0]!, nickname: 'a', uid: uids[2]!, version: 7, connections: [] };
  const changed = t.apply([stale]);
  assert.equal(t.ourEntry.version, 8);
  assert.equal(t.ourEntry.uid, uids[0]);
  assert.deepEqual(changed.map((e) => e.name), [names[0]]);
  // Our own entry echoed back is not news.
  assert.deepEqual(t.apply([t.ourEntry]), []);
  // Same version, other uid: bump too (the other copy must lose everywhere).
  t.apply([{ ...stale, version: 8 }]);
  assert.equal(t.ourEntry.version, 9);
});

test('removeUnreachable drops everyone not reachable but never ourselves', () => {
  const t = new Topology({ name: names[0]!, nickname: 'a', uid: uids[0]! });
  t.apply([
    { name: names[1]!, nickname: 'b', uid: uids[0]!, version: 1, connections: [] },
    { name: names[2]!, nickname: 'c', uid: uids[0]!, version: 1, connections: [] },
  ]);
  assert.deepEqual(t.removeUnreachable(new Set([names[1]!])), [names[2]]);
  assert.deepEqual(
    t.all().map((e) => e.name),
    [names[0], names[1]],
  );
});

test('quickFingerprint: equal for the same entries reached in any order, different otherwise', async () => {
  const { Topology: T } = await import('../../../src/mesh/topology.js');
  const id = (i: number) => ({ name: `02:00:00:00:00:0${i}` as never, nickname: `n${i}`, uid: `000000000000000${i}` as never });
  const entryOf = (i: number, version: number) => ({ ...id(i), version, connections: [] });
  const a = new T(id(1));
  const b = new T(id(1));
  a.apply([entryOf(2, 1), entryOf(3, 1)]);
  a.apply([entryOf(2, 2)]);
  b.apply([entryOf(3, 1)]);
  b.apply([entryOf(2, 2), entryOf(2, 1)]);
  assert.equal(a.quickFingerprint(), b.quickFingerprint());
  b.apply([entryOf(3, 2)]);
  assert.notEqual(a.quickFingerprint(), b.quickFingerprint());
  b.removeUnreachable(new Set([id(1).name, id(2).name] as never[]));
  a.removeUnreachable(new Set([id(1).name, id(2).name] as never[]));
  assert.equal(a.quickFingerprint(), b.quickFingerprint());
});
