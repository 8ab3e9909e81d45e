/**
 * Property simulation of the IPAM ring over the in-memory harness: random joins, partitions,
 * heals, allocations, releases, restarts, permanent deaths and rmpeer run on several peers at
 * once. After every step no address is held by two live containers; once healed and quiet,
 * every peer has the same ring.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../src/core/errors.js';
import type { PeerName } from '../../src/core/ids.js';
import { IpamNet, peerName } from '../unit/ipam/harness.js';

const RANGE = '10.44.0.0/27';
const SEEDS = [1, 2, 3].map(peerName);
const BASE = { range: RANGE, allocateTimeoutMs: 20_000, donationTimeoutMs: 2_000, releaseGraceMs: 5_000 };

type Op =
  | { kind: 'join'; observer: boolean }
  | { kind: 'alloc'; peer: number; id: number }
  | { kind: 'burst'; peer: number; id: number }
  | { kind: 'release'; id: number }
  | { kind: 'partition'; mask: number }
  | { kind: 'heal' }
  | { kind: 'restart'; peer: number }
  | { kind: 'die'; peer: number }
  | { kind: 'rmpeer'; runners: number }
  | { kind: 'advance'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const), observer: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('alloc' as const), peer: fc.nat(7), id: fc.nat(60) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('burst' as const), peer: fc.nat(7), id: fc.nat(60) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), id: fc.nat(60) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('partition' as const), mask: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), peer: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('die' as const), peer: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rmpeer' as const), runners: fc.integer({ min: 1, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 100, max: 8_000 }) }) },
);

/** Fails the property if an address is held by two live containers. */
function assertNoDuplicates(net: IpamNet): void {
  const holder = new Map<number, string>();
  for (const p of net.live()) {
    for (const a of net.ipam(p).liveAllocations()) {
      const other = holder.get(a.address);
      assert.equal(other, undefined, `address ${a.address} held by ${other} and ${p}/${a.containerId}`);
      holder.set(a.address, `${p}/${a.containerId}`);
    }
  }
}

async function settled<T>(net: IpamNet, p: Promise<T>): Promise<T | Error> {
  let done = false;
  const wrapped = p.then(
    (v) => ((done = true), v),
    (e: Error) => ((done = true), e),
  );
  for (let i = 0; i < 50 && !done; i++) {
    net.deliverAll();
    await Promise.resolve();
    await Promise.resolve();
    if (!done) net.clock.advance(1_000);
  }
  assert.ok(done, 'allocate settled within its timeout');
  return wrapped;
}

/** What the runs exercised, so a generator that stops reaching a case fails the test. */
const coverage = { allocated: 0, exhausted: 0, restarts: 0, partitions: 0, rmpeerDone: 0, rmpeerRefused: 0, joins: 0 };

async function run(ops: Op[]): Promise<void> {
  const net = new IpamNet();
  for (const s of SEEDS) net.add(s, { ...BASE, bootstrap: `seed=${SEEDS.join(',')}` });
  net.settle();
  const all: PeerName[] = [...SEEDS];
  const dead = new Set<PeerName>();
  const removed = new Set<PeerName>();
  const containers = new Map<string, PeerName>();
  for (const op of ops) {
    const live = net.live();
    switch (op.kind) {
      case 'join': {
        if (all.length >= 7) break;
        const name = peerName(all.length + 1);
        all.push(name);
        coverage.joins++;
        net.add(name, { ...BASE, bootstrap: op.observer ? 'observer' : `seed=${SEEDS.join(',')}` }, net.nodes.get(live[0] ?? SEEDS[0]!)?.group ?? 0);
        break;
      }
      case 'alloc':
      case 'burst': {
        const peer = all[op.peer % all.length]!;
        if (dead.has(peer)) break;
        for (let k = 0; k < (op.kind === 'burst' ? 6 : 1); k++) {
          const id: string = `c${(op.id + k) % 61}`;
          const holder = containers.get(id);
          if (holder !== undefined && holder !== peer) continue;
          const r = await settled(net, net.ipam(peer).allocate(id));
          if (r instanceof Error) {
            assert.ok(isLoomError(r, 'ERR_EXHAUSTED') || isLoomError(r, 'ERR_UNAVAILABLE'), `unexpected ${String(r)}`);
            coverage.exhausted++;
          } else {
            coverage.allocated++;
            containers.set(id, peer);
            assert.equal((r).containerId, id);
          }
        }
        break;
      }
      case 'release': {
        const id = `c${op.id}`;
        const holder = containers.get(id);
        if (holder === undefined || dead.has(holder)) break;
        net.ipam(holder).release(id);
        containers.delete(id);
        break;
      }
      case 'partition': {
        const groups: PeerName[][] = [[], []];
        live.forEach((p, i) => groups[(op.mask >> i) & 1]!.push(p));
        net.partition(groups);
        coverage.partitions++;
        break;
      }
      case 'heal':
        net.heal();
        break;
      case 'restart': {
        const peer = all[op.peer % all.length]!;
        if (dead.has(peer)) break;
        net.kill(peer);
        net.deliverAll();
        net.restart(peer);
        coverage.restarts++;
        break;
      }
      case 'die': {
        const peer = all[op.peer % all.length]!;
        if (dead.has(peer) || live.length <= 1) break;
        net.kill(peer);
        dead.add(peer);
        for (const [id, p] of containers) if (p === peer) containers.delete(id);
        break;
      }
      case 'rmpeer': {
        // On several peers at once, possibly in different components: refused where unsafe.
        const targets = [...dead].filter((p) => !removed.has(p));
        if (targets.length === 0) break;
        const heirs = new Set<PeerName>();
        for (const p of net.live().slice(0, op.runners)) {
          try {
            heirs.add(net.ipam(p).rmpeer(targets).heir);
            coverage.rmpeerDone++;
          } catch (err) {
            coverage.rmpeerRefused++;
            assert.ok(isLoomError(err, 'ERR_CONFLICT') || isLoomError(err, 'ERR_UNAVAILABLE'), `unexpected ${String(err)}`);
          }
        }
        assert.ok(heirs.size <= 1, 'runners that were allowed agree on the heir');
        if (heirs.size === 1) for (const t of targets) removed.add(t);
        break;
      }
      case 'advance':
        net.clock.advance(op.ms);
        break;
    }
    net.deliverAll();
    assertNoDuplicates(net);
  }
  net.heal();
  net.settle(20_000);
  assertNoDuplicates(net);
  const rings = net.live().map((p) => net.ipam(p).ringSnapshot());
  for (const r of rings) assert.ok(r.equals(rings[0]!), 'every live peer has the same ring once quiet');
  for (const p of removed) assert.equal(rings[0]!.ownedSize(p), 0, 'removed peers own nothing');

}

/**
 * Runs first on every seed so each case the coverage check asks for is reached at least once
 * (random runs reach a refused rmpeer in about 1 of 40 sequences, so 200 runs missed it about
 * once in 120 CI runs): p3 dies, a partition puts p1 and p2 apart, and rmpeer on p1 is refused
 * because p2, an owner of space, is unreachable.
 */
const REFUSED_RMPEER: Op[] = [
  { kind: 'alloc', peer: 0, id: 1 },
  { kind: 'alloc', peer: 1, id: 2 },
  { kind: 'alloc', peer: 2, id: 3 },
  { kind: 'die', peer: 2 },
  { kind: 'partition', mask: 1 },
  { kind: 'rmpeer', runners: 1 },
  { kind: 'heal' },
];

test('no address is held twice, and every peer agrees once quiet', async (t) => {
  await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 80 }), run), { numRuns: 200, examples: [[REFUSED_RMPEER]] });
  t.diagnostic(`coverage ${JSON.stringify(coverage)}`);
  for (const [k, v] of Object.entries(coverage)) assert.ok(v > 0, `the runs never reached ${k}`);
});
