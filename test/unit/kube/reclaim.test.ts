/**
 * Reclaim of deleted nodes' address space: the pure rules, then Reclaimers racing against one
 * fake Kubernetes API (test/helpers/fake-kube-api.ts) with a recording IPAM that fails the test
 * if two rmpeers ever overlap or one names a peer that is reachable or whose node exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoomError } from '../../../src/core/errors.js';
import type { PeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import { KubeClient } from '../../../src/kube/client.js';
import { decodeState, encodeState, PeerRegistry, type RegistryState } from '../../../src/kube/peer-registry.js';
import { finishReclaim, lockIsFree, reclaimCandidates, Reclaimer, type ReclaimOutcome, type ReclaimView, takeLock } from '../../../src/kube/reclaim.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';

const NS = 'kube-system';
const CM = 'loom-peers';
const peer = (n: number): PeerName => `02:00:00:00:00:${n.toString(16).padStart(2, '0')}` as PeerName;
const A = peer(0xa);
const B = peer(0xb);
const C = peer(0xc);
const D = peer(0xd);
const E = peer(0xe);
const F = peer(0xf);

function view(over: Partial<ReclaimView> = {}): ReclaimView {
  return { self: A, liveNodes: new Set(['node-a', 'node-b']), isReachable: (p) => p === A || p === B, now: 1_000_000, leaseMs: 60_000, ...over };
}

// ----- the pure rules ---------------------------------------------------------------------------

test('candidates: unreachable peers whose node is deleted or now runs a reachable peer; never us, never a reachable peer', () => {
  const state: RegistryState = {
    peers: [
      { peer: A, node: 'node-a' },
      { peer: B, node: 'node-b' },
      { peer: C, node: 'node-c' }, // node deleted, unreachable
      { peer: D, node: 'node-a' }, // node-a now runs A (us): D was wiped
      { peer: E, node: 'node-b' }, // node-b runs B (reachable): E was wiped
      { peer: F, node: 'node-f' }, // node deleted but F is reachable: not a candidate
    ],
    reclaim: null,
  };
  const v = view({ isReachable: (p) => p === A || p === B || p === F });
  assert.deepEqual(
    reclaimCandidates(state, v).map((c) => [c.peer, c.reason]),
    [
      [C, 'node-deleted'],
      [D, 'node-taken-over'],
      [E, 'node-taken-over'],
    ],
  );
  // A live node whose only record is an unreachable peer (say, partitioned) is left alone.
  assert.deepEqual(reclaimCandidates({ peers: [{ peer: C, node: 'node-a' }], reclaim: null }, view()), []);
});

test('the lock: free, ours, held by a live peer within its lease, stale by lease or by its holder node gone', () => {
  const peers = [
    { peer: A, node: 'node-a' },
    { peer: B, node: 'node-b' },
    { peer: C, node: 'node-c' },
  ];
  const lock = (by: PeerName, since: number): RegistryState => ({ peers, reclaim: { peer: C, node: 'node-c', by, since } });
  assert.equal(lockIsFree({ peers, reclaim: null }, view()), true);
  assert.equal(lockIsFree(lock(A, 999_999), view()), true, 'our own lock (from before a restart)');
  assert.equal(lockIsFree(lock(B, 999_999), view()), false, 'B is alive and within its lease');
  assert.equal(lockIsFree(lock(B, 1_000_000 - 60_001), view()), true, 'lease over');
  assert.equal(lockIsFree(lock(B, 999_999), view({ liveNodes: new Set(['node-a']) })), true, "holder's node deleted");
  assert.equal(takeLock(lock(B, 999_999), { peer: C, node: 'node-c' }, view()), null);
  const taken = takeLock({ peers, reclaim: null }, { peer: C, node: 'node-c' }, view());
  assert.deepEqual(taken?.reclaim, { peer: C, node: 'node-c', by: A, since: 1_000_000 });
  assert.equal(takeLock({ peers, reclaim: null }, { peer: B, node: 'node-b' }, view()), null, 'not a candidate: no lock');
  assert.deepEqual(finishReclaim(taken, taken.reclaim), { peers: peers.slice(0, 2), reclaim: null });
  assert.equal(finishReclaim({ peers: peers.slice(0, 2), reclaim: null }, taken.reclaim), null, 'idempotent');
});

test('the ConfigMap data round-trips; entries a human broke are dropped, a broken lock is no lock', () => {
  const state: RegistryState = { peers: [{ peer: A, node: 'node-a' }], reclaim: { peer: C, node: 'node-c', by: A, since: 5 } };
  assert.deepEqual(decodeState(encodeState(state)), state);
  assert.deepEqual(decodeState({ peers: '[{"peer":"nope","node":"x"},{"peer":"02:00:00:00:00:0A","node":"node-a"},7]', reclaim: '{"peer":1}' }), { peers: [{ peer: A, node: 'node-a' }], reclaim: null });
  assert.deepEqual(decodeState(undefined), { peers: [], reclaim: null });
  assert.deepEqual(decodeState({ peers: 'not json' }), { peers: [], reclaim: null });
});

// ----- against the fake API -----------------------------------------------------------------------

/** One IPAM per router, one shared log: rmpeer calls, and a check that none overlap. */
class IpamLog {
  readonly calls: { by: PeerName; peers: string[]; force: boolean }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly assertSafe: (peer: string) => void) {}

  ipamFor(by: PeerName, behave: (peers: readonly string[], force: boolean) => void = () => {}): { rmpeer(names: readonly string[], options?: { force?: boolean }): Promise<{ heir: string; moved: number }> } {
    return {
      rmpeer: async (names, options = {}) => {
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        try {
          for (const n of names) this.assertSafe(n);
          await new Promise((r) => setTimeout(r, 15)); // widen the window a second reclaimer would need
          behave(names, options.force === true);
          this.calls.push({ by, peers: [...names], force: options.force === true });
          return { heir: by, moved: 256 };
        } finally {
          this.inFlight--;
        }
      },
    };
  }
}

interface Cluster {
  api: FakeKubeApi;
  client: KubeClient;
  registry: PeerRegistry;
  close(): Promise<void>;
}

async function cluster(setup: (api: FakeKubeApi) => void): Promise<Cluster> {
  const api = new FakeKubeApi();
  setup(api);
  const url = await api.listen();
  const client = new KubeClient({ apiUrl: url });
  return {
    api,
    client,
    registry: new PeerRegistry(client, { namespace: NS, name: CM }),
    close: async () => {
      client.close();
      await api.close();
    },
  };
}

function reclaimer(c: Cluster, self: PeerName, node: string, ipam: ReturnType<IpamLog['ipamFor']>, reachable: ReadonlySet<PeerName>, wallNow: () => number = Date.now): Reclaimer {
  return new Reclaimer({ registry: new PeerRegistry(c.client, { namespace: NS, name: CM }), api: c.client, ipam, mesh: { self, isReachable: (p) => reachable.has(p) }, logger: silentLogger, wallNow }, { selfNode: node, leaseMs: 60_000 });
}

/** Passes until this reclaimer has nothing left to do (busy = someone else holds the lock: try again). */
async function drain(r: Reclaimer, live: ReadonlySet<string>): Promise<ReclaimOutcome[]> {
  const outcomes: ReclaimOutcome[] = [];
  for (let i = 0; i < 200; i++) {
    const o = await r.runOnce(live);
    outcomes.push(o);
    if (o.kind === 'idle') return outcomes;
    if (o.kind !== 'reclaimed') await new Promise((res) => setTimeout(res, 5 + Math.random() * 10));
  }
  throw new Error(`no end: ${JSON.stringify(outcomes.slice(-5))}`);
}

test('two routers racing: each deleted node is reclaimed exactly once, never two at once, never a live one; the ConfigMap ends clean', async () => {
  const live = new Set(['node-a', 'node-b', 'node-live']);
  const c = await cluster((api) => {
    for (const n of live) api.addNode(n, undefined);
    api.setConfigMapData(NS, CM, encodeState({ peers: [C, D, E].map((p, i) => ({ peer: p, node: `node-gone-${i}` })).concat([{ peer: F, node: 'node-live' }]), reclaim: null }));
  });
  // F's node is alive but F is unreachable from here (a partition): it must never be reclaimed.
  const log = new IpamLog((p) => {
    assert.notEqual(p, F, 'reclaimed the peer of a live node');
    assert.ok([C, D, E].includes(p as PeerName), `unexpected rmpeer ${p}`);
  });
  // Both routers read the same version before either writes: the loser of each CAS gets a 409.
  c.api.beforeConfigMapWrite = () => new Promise((r) => setTimeout(r, Math.random() * 8));
  try {
    const reachable = new Set([A, B]);
    const ra = reclaimer(c, A, 'node-a', log.ipamFor(A), reachable);
    const rb = reclaimer(c, B, 'node-b', log.ipamFor(B), reachable);
    const [oa, ob] = await Promise.all([drain(ra, live), drain(rb, live)]);

    assert.deepEqual(log.calls.flatMap((x) => x.peers).sort(), [C, D, E], 'each dead peer exactly once');
    assert.equal(log.maxInFlight, 1, 'never two reclaims at once');
    const all = [...oa, ...ob];
    assert.equal(all.filter((o) => o.kind === 'reclaimed').length, 3);
    assert.ok(all.some((o) => o.kind === 'busy'), 'the routers did contend for the lock');
    assert.ok(c.api.conflicts >= 1, 'and at least one write lost its CAS with a 409');
    const final = decodeState(c.api.configMap(NS, CM)!.data);
    assert.equal(final.reclaim, null, 'the lock is released');
    assert.deepEqual(final.peers.map((p) => p.peer).sort(), [A, B, F], 'both routers registered; the dead are removed; the live one stays');
  } finally {
    await c.close();
  }
});

test('the ConfigMap is created by the first router; a second creating it at once gets 409 AlreadyExists and retries', async () => {
  const c = await cluster((api) => ['node-a', 'node-b'].forEach((n) => api.addNode(n, undefined)));
  c.api.beforeConfigMapWrite = () => new Promise((r) => setTimeout(r, 10));
  try {
    const log = new IpamLog(() => assert.fail('nothing to reclaim'));
    const live = new Set(['node-a', 'node-b']);
    await Promise.all([reclaimer(c, A, 'node-a', log.ipamFor(A), new Set([A, B])).register(), reclaimer(c, B, 'node-b', log.ipamFor(B), new Set([A, B])).register()]);
    assert.ok(c.api.conflicts >= 1);
    assert.deepEqual(decodeState(c.api.configMap(NS, CM)!.data).peers.map((p) => p.peer).sort(), [A, B]);
    assert.deepEqual((await reclaimer(c, A, 'node-a', log.ipamFor(A), new Set([A, B])).runOnce(live)).kind, 'idle');
  } finally {
    await c.close();
  }
});

test('a node the watch has not yet seen again is checked with a fresh GET: it exists, so its peer is not reclaimed', async () => {
  const c = await cluster((api) => {
    api.addNode('node-a', undefined);
    api.addNode('node-c', undefined); // still there
    api.setConfigMapData(NS, CM, encodeState({ peers: [{ peer: C, node: 'node-c' }], reclaim: null }));
  });
  try {
    const log = new IpamLog(() => assert.fail('reclaimed the peer of a node that exists'));
    const r = reclaimer(c, A, 'node-a', log.ipamFor(A), new Set([A]));
    // The watcher's view lags: it says node-c is gone.
    assert.equal((await r.runOnce(new Set(['node-a']))).kind, 'idle');
    assert.equal(log.calls.length, 0);
    assert.equal(decodeState(c.api.configMap(NS, CM)!.data).reclaim, null, 'no lock taken');
  } finally {
    await c.close();
  }
});

test('a lock held by a live router within its lease waits; a lock whose holder node is gone, or past its lease, is taken over', async () => {
  let now = 1_000_000;
  const c = await cluster((api) => {
    api.addNode('node-a', undefined);
    api.addNode('node-b', undefined);
    api.setConfigMapData(NS, CM, encodeState({ peers: [{ peer: B, node: 'node-b' }, { peer: C, node: 'node-c' }], reclaim: { peer: C, node: 'node-c', by: B, since: now - 1_000 } }));
  });
  try {
    const log = new IpamLog(() => {});
    const r = reclaimer(c, A, 'node-a', log.ipamFor(A), new Set([A, B]), () => now);
    assert.deepEqual(await r.runOnce(new Set(['node-a', 'node-b'])), { kind: 'busy', heldBy: B });
    now += 60_001; // B took the lock and then hung or died without its node going away
    const o = await r.runOnce(new Set(['node-a', 'node-b']));
    assert.equal(o.kind, 'reclaimed');
    assert.deepEqual(log.calls, [{ by: A, peers: [C], force: false }]);

    // Holder's node deleted: taken over at once, within the lease.
    c.api.setConfigMapData(NS, CM, encodeState({ peers: [{ peer: D, node: 'node-d' }, { peer: E, node: 'node-e' }], reclaim: { peer: E, node: 'node-e', by: D, since: now } }));
    const o2 = await r.runOnce(new Set(['node-a', 'node-b']));
    assert.equal(o2.kind, 'reclaimed');
    assert.equal(log.calls.length, 2);
  } finally {
    await c.close();
  }
});

test('rmpeer failing releases the lock; refused for other unreachable owners, it is forced only when they are all peers of deleted nodes', async () => {
  const c = await cluster((api) => {
    api.addNode('node-a', undefined);
    api.setConfigMapData(NS, CM, encodeState({ peers: [{ peer: C, node: 'node-c' }, { peer: D, node: 'node-d' }], reclaim: null }));
  });
  try {
    const live = new Set(['node-a']);
    let unreachableOwners: string[] = [];
    const log = new IpamLog(() => {});
    // Like src/ipam/admin.ts: refused while another owner is unreachable; a removed peer owns nothing after.
    const ipam = log.ipamFor(A, (peers, force) => {
      const others = unreachableOwners.filter((o) => !peers.includes(o));
      if (!force && others.length > 0) throw new LoomError('ERR_CONFLICT', 'other owners of space are unreachable', { detail: { unreachableOwners: others } });
      unreachableOwners = others;
    });
    const r = reclaimer(c, A, 'node-a', ipam, new Set([A]));

    unreachableOwners = [D, F]; // F is in nobody's records: maybe a partitioned non-Kubernetes peer
    const failed = await r.runOnce(live);
    assert.equal(failed.kind, 'failed');
    assert.equal(log.calls.length, 0);
    assert.equal(decodeState(c.api.configMap(NS, CM)!.data).reclaim, null, 'lock released after the failure');

    unreachableOwners = [C, D]; // each is a peer whose node is deleted
    const first = await r.runOnce(live);
    assert.equal(first.kind, 'reclaimed');
    assert.equal(first.kind === 'reclaimed' && first.forced, true);
    const second = await r.runOnce(live);
    assert.equal(second.kind, 'reclaimed');
    assert.equal(second.kind === 'reclaimed' && second.forced, false, 'the last one needs no force');
    assert.deepEqual(log.calls.map((x) => x.peers[0]).sort(), [C, D], 'one at a time, both in the end');
    assert.equal((await r.runOnce(live)).kind, 'idle');
    assert.deepEqual(decodeState(c.api.configMap(NS, CM)!.data), { peers: [{ peer: A, node: 'node-a' }], reclaim: null });
  } finally {
    await c.close();
  }
});
