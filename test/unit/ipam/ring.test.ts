import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import { cidrOf, parseAddress, parseCidr } from '../../../src/ipam/cidr.js';
import { Ring } from '../../../src/ipam/ring.js';
import { decodeRing, encodeRing } from '../../../src/ipam/ring-codec.js';
import { peerName } from './harness.js';

const RANGE = cidrOf(parseAddress('10.0.0.0'), 24);
const PEERS = [1, 2, 3, 4, 5].map(peerName);
const SEEDS = PEERS.slice(0, 3);

const opArb = fc.record({
  replica: fc.nat(2),
  kind: fc.constantFrom('transfer', 'reassign', 'stats', 'sync'),
  a: fc.nat(255),
  b: fc.nat(255),
  from: fc.nat(4),
  to: fc.nat(4),
});

/** Three replicas of one ring, each edited by the peers it believes own space, with partial syncs. */
function evolve(ops: ReadonlyArray<{ replica: number; kind: string; a: number; b: number; from: number; to: number }>): Ring[] {
  const replicas = [0, 1, 2].map(() => Ring.initial(RANGE, SEEDS));
  for (const op of ops) {
    const r = replicas[op.replica]!;
    const from = PEERS[op.from]!;
    const to = PEERS[op.to]!;
    switch (op.kind) {
      case 'transfer': {
        const runs = r.ownedBy(from);
        const run = runs[op.a % Math.max(1, runs.length)];
        if (!run || from === to) break;
        const start = run.start + (op.b % (run.end - run.start));
        r.transfer(start, run.end, from, to);
        break;
      }
      case 'reassign':
        if (from !== to) r.reassign(from, to);
        break;
      case 'stats':
        r.setStats(from, op.a, op.b);
        break;
      case 'sync':
        r.merge(replicas[op.a % 3]!);
        break;
    }
  }
  return replicas;
}

const merged = (x: Ring, y: Ring): Ring => {
  const out = x.clone();
  out.merge(y);
  return out;
};

function wellFormed(r: Ring): void {
  assert.equal(r.entries[0]?.token, RANGE.start);
  for (let i = 1; i < r.entries.length; i++) assert.ok(r.entries[i - 1]!.token < r.entries[i]!.token);
}

test('ring merge is commutative, associative and idempotent', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const [x, y, z] = evolve(ops) as [Ring, Ring, Ring];
      assert.ok(merged(x, y).equals(merged(y, x)), 'commutative');
      assert.ok(merged(merged(x, y), z).equals(merged(x, merged(y, z))), 'associative');
      assert.ok(merged(x, x).equals(x), 'idempotent');
      const xy = merged(x, y);
      assert.equal(xy.clone().merge(y).changed, false, 'merging what we already have changes nothing');
      wellFormed(xy);
    }),
    { numRuns: 300 },
  );
});

test('encode/decode round-trips every reachable ring', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
      for (const r of evolve(ops)) assert.ok(decodeRing(encodeRing(r)).equals(r));
    }),
    { numRuns: 200 },
  );
});

test('an initial split is the same on every seed and covers the range in equal pieces', () => {
  const a = Ring.initial(RANGE, [SEEDS[2]!, SEEDS[0]!, SEEDS[1]!]);
  const b = Ring.initial(RANGE, SEEDS);
  assert.ok(a.equals(b));
  assert.deepEqual(SEEDS.map((p) => a.ownedSize(p)), [85, 85, 86]);
});

test('equal versions with different owners resolve to the smaller name, reported as a conflict', () => {
  const base = Ring.initial(RANGE, SEEDS);
  const x = base.clone();
  const y = base.clone();
  x.reassign(SEEDS[2]!, PEERS[4]!);
  y.reassign(SEEDS[2]!, PEERS[3]!);
  const xy = merged(x, y);
  const res = x.clone().merge(y);
  assert.equal(res.conflicts.length, 1);
  assert.equal(res.conflicts[0]!.winner, PEERS[3]);
  assert.equal(xy.ownedSize(PEERS[3]!), 86);
  assert.equal(xy.ownedSize(PEERS[4]!), 0);
});

test('rings of different ranges or different seeds are not merged, and stay unchanged', () => {
  const a = Ring.initial(RANGE, SEEDS);
  const before = a.clone();
  assert.throws(() => a.merge(Ring.initial(parseCidr('10.0.1.0/24'), SEEDS)), (e) => isLoomError(e, 'ERR_RANGE_MISMATCH'));
  assert.throws(() => a.merge(Ring.initial(RANGE, PEERS.slice(1, 4))), (e) => isLoomError(e, 'ERR_CONFLICT'));
  assert.ok(a.equals(before));
});

test('transfer refuses space the giver does not own and leaves the ring unchanged', () => {
  const a = Ring.initial(RANGE, SEEDS);
  const before = a.clone();
  assert.throws(() => a.transfer(RANGE.start + 80, RANGE.start + 90, SEEDS[0]!, PEERS[4]!), (e) => isLoomError(e, 'ERR_CONFLICT'));
  assert.ok(a.equals(before));
  a.transfer(RANGE.start + 10, RANGE.start + 20, SEEDS[0]!, PEERS[4]!);
  assert.deepEqual(a.ownedBy(PEERS[4]!), [{ start: RANGE.start + 10, end: RANGE.start + 20 }]);
  assert.deepEqual(a.ownedBy(SEEDS[0]!), [
    { start: RANGE.start, end: RANGE.start + 10 },
    { start: RANGE.start + 20, end: RANGE.start + 85 },
  ]);
});
