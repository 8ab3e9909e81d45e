import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RecordSet, supersedes, type DnsRecord } from '../../../src/dns/records.js';
import { decodeRecords } from '../../../src/dns/codec.js';
import { isLoomError } from '../../../src/core/errors.js';
import type { ContainerId } from '../../../src/core/ids.js';
import { peerName } from './fake-mesh.js';

// Few distinct keys so that generated records collide often and merge has work to do.
const recordArb: fc.Arbitrary<DnsRecord> = fc.record({
  name: fc.constantFrom('web.loom.local', 'db.loom.local', 'a-1.x'),
  address: fc.constantFrom('10.32.0.1', '10.32.0.2'),
  containerId: fc.constantFrom('c1', 'c2') as fc.Arbitrary<ContainerId>,
  origin: fc.constantFrom(peerName(1), peerName(2)),
  version: fc.integer({ min: 1, max: 4 }),
  tombstone: fc.boolean(),
});
const setArb = fc.array(recordArb, { maxLength: 12 }).map((rs) => new RecordSet(rs));

function canonical(s: RecordSet): string[] {
  return [...s.records()].map((r) => JSON.stringify(r)).sort();
}
function copy(s: RecordSet): RecordSet {
  return new RecordSet(s.records());
}

test('merge is commutative, associative and idempotent', () => {
  fc.assert(
    fc.property(setArb, setArb, setArb, (a, b, c) => {
      assert.deepEqual(canonical(copy(a).merge(b)), canonical(copy(b).merge(a)));
      assert.deepEqual(canonical(copy(a).merge(copy(b).merge(c))), canonical(copy(a).merge(b).merge(c)));
      assert.deepEqual(canonical(copy(a).merge(a)), canonical(a));
    }),
    { numRuns: 300 },
  );
});

test('per key the greater version wins, and a tombstone wins a tie', () => {
  const live: DnsRecord = { name: 'web.loom.local', address: '10.32.0.1', containerId: 'c1' as ContainerId, origin: peerName(1), version: 3, tombstone: false };
  const dead = { ...live, tombstone: true };
  assert.equal(supersedes(dead, live), true);
  assert.equal(supersedes(live, dead), false);
  assert.equal(supersedes({ ...live, version: 4 }, dead), true);
  assert.equal(supersedes(live, live), false);
  assert.deepEqual([...new RecordSet([live, dead]).records()], [dead]);
  assert.deepEqual([...new RecordSet([dead, live]).records()], [dead]);
});

test('encode/decode round-trips any record set', () => {
  fc.assert(
    fc.property(setArb, (s) => {
      assert.deepEqual(canonical(new RecordSet(decodeRecords(s.encode()))), canonical(s));
    }),
    { numRuns: 200 },
  );
});

test('decoding random or damaged bytes fails with ERR_PROTOCOL, never anything else', () => {
  const valid = new RecordSet([{ name: 'web.loom.local', address: '10.32.0.1', containerId: 'c1' as ContainerId, origin: peerName(1), version: 1, tombstone: false }]).encode();
  const damaged = fc.tuple(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
    const b = Uint8Array.from(valid);
    b[i] = v;
    return b;
  });
  const cut = fc.integer({ min: 0, max: valid.length - 1 }).map((n) => valid.subarray(0, n));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), damaged, cut), (bytes) => {
      try {
        decodeRecords(bytes);
      } catch (err) {
        assert.ok(isLoomError(err, 'ERR_PROTOCOL'), String(err));
      }
    }),
    { numRuns: 1000 },
  );
  // A huge count in a tiny message is rejected before any allocation.
  const huge = Uint8Array.from([1, 0xff, 0xff, 0xff, 0xff, 0, 0]);
  assert.throws(() => decodeRecords(huge), (e) => isLoomError(e, 'ERR_PROTOCOL'));
  // Truncation of a valid message is always detected.
  assert.throws(() => decodeRecords(valid.subarray(0, valid.length - 1)), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});
