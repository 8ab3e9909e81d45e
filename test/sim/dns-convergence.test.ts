/**
 * Random adds, removals, partitions and heals across 6 peers on a fake clock: once healed and
 * quiet, every peer shows exactly the records that their origins hold live.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeDnsMesh } from '../unit/dns/fake-mesh.js';

const PEERS = 6;

type Op =
  | { kind: 'add'; peer: number; name: number; container: number }
  | { kind: 'removeContainer'; peer: number; container: number }
  | { kind: 'partition'; split: number[] }
  | { kind: 'heal' }
  | { kind: 'tick'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), peer: fc.nat(PEERS - 1), name: fc.nat(3), container: fc.nat(4) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('removeContainer' as const), peer: fc.nat(PEERS - 1), container: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('partition' as const), split: fc.array(fc.nat(1), { minLength: PEERS, maxLength: PEERS }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'heal' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }) },
);

test('replicas converge to what the origins hold, whatever the partitions', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const net = new FakeDnsMesh(PEERS, 10);
      for (const op of ops) {
        switch (op.kind) {
          case 'add':
            net.peer(op.peer).store.add(`n${op.name}.loom.local`, `10.32.${op.peer}.${op.container + 1}`, `c${op.peer}-${op.container}`);
            break;
          case 'removeContainer':
            net.peer(op.peer).store.removeContainer(`c${op.peer}-${op.container}`);
            break;
          case 'partition': {
            const groups = [0, 1].map((g) => op.split.flatMap((side, i) => (side === g ? [i] : [])));
            net.partition(groups);
            break;
          }
          case 'heal':
            net.heal();
            break;
          case 'tick':
            net.clock.advance(op.ms);
            break;
          default: {
            const never: never = op;
            throw new Error(`unknown op ${String(never)}`);
          }
        }
      }
      net.heal();
      assert.ok(net.settle(), 'gossip went quiet');
      const expected = net.peers
        .flatMap((p) => p.store.status().filter((r) => r.origin === p.name))
        .map((r) => `${r.name} ${r.address} ${r.containerId} ${r.origin}`)
        .sort();
      for (const p of net.peers) {
        const seen = p.store
          .status()
          .map((r) => `${r.name} ${r.address} ${r.containerId} ${r.origin}`)
          .sort();
        assert.deepEqual(seen, expected, p.name);
      }
    }),
    { numRuns: 200 },
  );
});
