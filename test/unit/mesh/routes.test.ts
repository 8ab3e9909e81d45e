import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerName, PeerUid } from '../../../src/core/ids.js';
import { Routes } from '../../../src/mesh/routes.js';
import type { PeerEntry } from '../../../src/mesh/topology-entry.js';

const P = (i: number): PeerName => `02:00:00:00:00:${i.toString(16).padStart(2, '0')}` as PeerName;

/** Builds a topology from undirected edges; `oneWay` edges are claimed by their first end only. */
function topo(n: number, edges: Array<[number, number]>, oneWay: Array<[number, number]> = []): Map<PeerName, PeerEntry> {
  const conns = new Map<number, number[]>();
  for (let i = 1; i <= n; i++) conns.set(i, []);
  for (const [a, b] of edges) {
    conns.get(a)!.push(b);
    conns.get(b)!.push(a);
  }
  for (const [a, b] of oneWay) conns.get(a)!.push(b);
  const m = new Map<PeerName, PeerEntry>();
  for (const [i, list] of conns) {
    m.set(P(i), {
      name: P(i),
      nickname: `p${i}`,
      uid: '0000000000000001' as PeerUid,
      version: 1,
      connections: list.map((j) => ({ name: P(j), address: `10.0.0.${j}:6783`, outbound: i < j, established: true })),
    });
  }
  return m;
}

/** Simulates a broadcast from `src` where every peer forwards along its own broadcastNextHops. */
function deliveries(entries: Map<PeerName, PeerEntry>, src: PeerName): Map<PeerName, number> {
  const count = new Map<PeerName, number>([[src, 1]]);
  const queue = [src];
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const hop of new Routes(at, entries).broadcastNextHops(src)) {
      count.set(hop, (count.get(hop) ?? 0) + 1);
      queue.push(hop);
    }
  }
  return count;
}

test('line: unicast goes via the next peer along the line, hops count up', () => {
  const r = new Routes(P(1), topo(4, [[1, 2], [2, 3], [3, 4]]));
  assert.deepEqual(r.unicastRows(), [
    { destination: P(2), via: P(2), hops: 1 },
    { destination: P(3), via: P(2), hops: 2 },
    { destination: P(4), via: P(2), hops: 3 },
  ]);
  assert.deepEqual(new Routes(P(2), topo(4, [[1, 2], [2, 3], [3, 4]])).broadcastNextHops(P(1)), [P(3)]);
});

test('ring: ties are broken by name, deterministically', () => {
  const ring = topo(4, [[1, 2], [2, 3], [3, 4], [4, 1]]);
  const r = new Routes(P(1), ring);
  assert.equal(r.nextHop(P(3)), P(2)); // via 2 or via 4 are both two hops: the smaller name wins
  assert.equal(r.unicast.get(P(3))?.hops, 2);
  assert.deepEqual(r.broadcastNextHops(P(1)), [P(2), P(4)]);
});

test('star: the hub forwards broadcasts from a leaf to every other leaf, leaves forward nothing', () => {
  const star = topo(5, [[1, 2], [1, 3], [1, 4], [1, 5]]);
  assert.deepEqual(new Routes(P(1), star).broadcastNextHops(P(2)), [P(3), P(4), P(5)]);
  assert.deepEqual(new Routes(P(3), star).broadcastNextHops(P(2)), []);
  assert.deepEqual(new Routes(P(2), star).broadcastNextHops(P(2)), [P(1)]);
});

test('a connection only one end reports is not used', () => {
  const t = topo(3, [[1, 2]], [[2, 3]]);
  const r = new Routes(P(1), t);
  assert.equal(r.isReachable(P(3)), false);
  assert.equal(r.nextHop(P(3)), undefined);
  assert.deepEqual(new Routes(P(2), t).broadcastNextHops(P(2)), [P(1)]);
});

test('an entry listing a connection as not established is not used', () => {
  const t = topo(2, [[1, 2]]);
  const e = t.get(P(2))!;
  t.set(P(2), { ...e, connections: e.connections.map((c) => ({ ...c, established: false })) });
  assert.equal(new Routes(P(1), t).isReachable(P(2)), false);
});

test('partition: peers on the other side are unreachable, and their broadcasts are not forwarded', () => {
  const t = topo(4, [[1, 2], [3, 4]]);
  const r = new Routes(P(1), t);
  assert.deepEqual([...r.reachable].sort(), [P(1), P(2)]);
  assert.deepEqual(r.broadcastNextHops(P(3)), []);
});

test('broadcast trees deliver to every reachable peer exactly once (random graphs, every source)', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let round = 0; round < 20; round++) {
    const n = 5 + Math.floor(rand() * 25);
    const edges: Array<[number, number]> = [];
    for (let i = 2; i <= n; i++) edges.push([i, 1 + Math.floor(rand() * (i - 1))]); // connected
    for (let k = 0; k < n; k++) {
      const a = 1 + Math.floor(rand() * n);
      const b = 1 + Math.floor(rand() * n);
      if (a !== b && !edges.some(([x, y]) => (x === a && y === b) || (x === b && y === a))) edges.push([a, b]);
    }
    const t = topo(n, edges);
    for (let s = 1; s <= n; s++) {
      const got = deliveries(t, P(s));
      assert.equal(got.size, n, `round ${round} source ${s}: everyone receives`);
      for (const [peer, times] of got) assert.equal(times, 1, `round ${round} source ${s}: ${peer} receives once`);
    }
  }
});
