import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import type { PeerName, PeerUid } from '../../../src/core/ids.js';
import { TopologyDigest } from '../../../src/mesh/topology-digest.js';
import type { PeerEntry } from '../../../src/mesh/topology-entry.js';
import { entriesNewerThan, summaryHasNews, TopologySummary } from '../../../src/mesh/topology-summary.js';

const P = (i: number): PeerName => `02:00:00:00:00:${i.toString(16).padStart(2, '0')}` as PeerName;
const U = (i: number): PeerUid => i.toString(16).padStart(16, '0') as PeerUid;
const E = (i: number, version: number, uid = 1): PeerEntry => ({ name: P(i), nickname: `p${i}`, uid: U(uid), version, connections: [] });

test('a summary round-trips names, uids, versions and the reply flag; 6 + 18 bytes per entry', () => {
  const s = TopologySummary.of([E(1, 3), E(2, 4_000_000_000, 0xabc)], true);
  const bytes = s.encode();
  assert.equal(bytes.length, 6 + 2 * 18);
  const back = TopologySummary.decode(bytes);
  assert.equal(back.reply, true);
  assert.deepEqual([...back.rows], [...s.rows]);
});

test('malformed summaries are ERR_PROTOCOL, never anything else', () => {
  const good = TopologySummary.of([E(1, 1), E(2, 2)], false).encode();
  for (const bad of [good.subarray(0, 5), good.subarray(0, good.length - 1), Uint8Array.from([...good, 0]), Uint8Array.from([3, 2, 0, 0, 0, 0])]) {
    assert.throws(() => TopologySummary.decode(bad), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
  }
  const twice = Uint8Array.from([...TopologySummary.of([E(1, 1)], false).encode()]);
  const dup = new Uint8Array(6 + 36);
  dup.set(twice.subarray(0, 6));
  dup[5] = 2;
  dup.set(twice.subarray(6), 6);
  dup.set(twice.subarray(6), 24);
  assert.throws(() => TopologySummary.decode(dup), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      bytes[0] = 3;
      try {
        TopologySummary.decode(bytes);
      } catch (err) {
        assert.ok(isLoomError(err, 'ERR_PROTOCOL'), String(err));
      }
    }),
    { numRuns: 2000 },
  );
});

test('the delta is exactly what the other side lacks or holds older (version, then uid)', () => {
  const ours = [E(1, 5), E(2, 5), E(3, 5, 2), E(4, 1)];
  const theirs = TopologySummary.of([E(1, 5), E(2, 6), E(3, 5, 1), E(9, 1)], false);
  assert.deepEqual(
    entriesNewerThan(ours, theirs).map((e) => e.name),
    [P(3), P(4)],
  );
  const map = new Map(ours.map((e) => [e.name, e]));
  assert.equal(summaryHasNews(map, theirs), true, 'they hold 2 newer and 9 which we lack');
  assert.equal(summaryHasNews(map, TopologySummary.of([E(1, 5), E(2, 4)], false)), false);
});

test('in a pending slot a summary beats a digest, and a request stays a request', () => {
  const request = TopologySummary.of([E(1, 1)], false);
  const reply = TopologySummary.of([E(1, 2)], true);
  const digest = new TopologyDigest(new Uint8Array(8));
  assert.equal(digest.merge(request), request);
  assert.equal(request.merge(digest), request);
  const merged = reply.merge(request) as TopologySummary;
  assert.equal(merged.reply, false);
  assert.equal(merged.rows.get(P(1))?.version, 1, 'the newest content wins');
  assert.equal((reply.merge(TopologySummary.of([], true)) as TopologySummary).reply, true);
});
