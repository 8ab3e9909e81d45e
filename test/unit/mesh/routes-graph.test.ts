import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PeerName, PeerUid } from '../../../src/core/ids.js';
import { PeerGraph } from '../../../src/mesh/peer-graph.js';
import type { PeerEntry } from '../../../src/mesh/topology-entry.js';

const P = (i: number): PeerName => `02:00:00:00:00:${i.toString(16).padStart(2, '0')}` as PeerName;

function entry(i: number, claims: Array<[number, boolean]>): PeerEntry {
  return {
    name: P(i),
    nickname: '',
    uid: '0000000000000001' as PeerUid,
    version: 1,
    connections: claims.map(([j, established]) => ({ name: P(j), address: 'x:1', outbound: true, established })),
  };
}

/** The graph rebuilt from scratch: edge a-b iff both list each other as established; names sorted. */
function reference(entries: Map<PeerName, PeerEntry>): Map<PeerName, PeerName[]> {
  const claims = (a: PeerName, b: PeerName): boolean => entries.get(a)?.connections.some((c) => c.name === b && c.established) ?? false;
  const out = new Map<PeerName, PeerName[]>();
  for (const a of entries.keys()) {
    const ns = [...entries.keys()].filter((b) => b !== a && claims(a, b) && claims(b, a)).sort();
    out.set(a, ns);
  }
  return out;
}

function adjacencyOf(g: PeerGraph, names: Iterable<PeerName>): Map<PeerName, PeerName[]> {
  const out = new Map<PeerName, PeerName[]>();
  for (const a of names) {
    const i = g.index(a);
    out.set(a, i === undefined ? [] : g.neighboursOf(i).map((j) => g.nameAt(j)));
  }
  return out;
}

const op = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    peer: fc.integer({ min: 1, max: 12 }),
    claims: fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.boolean()), { maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), peer: fc.integer({ min: 1, max: 12 }) }),
);

test('incremental graph equals the graph rebuilt from scratch after any sequence of sets and deletes', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const g = new PeerGraph();
      const entries = new Map<PeerName, PeerEntry>();
      let lastGeneration = g.generation;
      let lastAdjacency = JSON.stringify([...adjacencyOf(g, []).entries()]);
      for (const o of ops) {
        if (o.kind === 'set') {
          const e = entry(o.peer, o.claims);
          entries.set(e.name, e);
          g.set(e);
        } else {
          entries.delete(P(o.peer));
          g.delete(P(o.peer));
        }
        const expected = reference(entries);
        assert.deepEqual(adjacencyOf(g, entries.keys()), expected);
        // The generation moves exactly when some edge changed.
        const adjacency = JSON.stringify([...expected.entries()].filter(([, ns]) => ns.length > 0).sort());
        assert.equal(g.generation !== lastGeneration, adjacency !== lastAdjacency);
        lastGeneration = g.generation;
        lastAdjacency = adjacency;
      }
      // Nodes nobody has an entry for or claims are forgotten, and their slots reused.
      for (const name of [...entries.keys()]) g.delete(name);
      for (let i = 1; i <= 12; i++) assert.equal(g.index(P(i)), undefined);
      assert.ok(g.capacity <= 12);
    }),
    { numRuns: 300 },
  );
});

test('a claim by one side only makes no edge and does not move the generation', () => {
  const g = new PeerGraph();
  g.set(entry(1, [[2, true]]));
  g.set(entry(2, [[1, false]]));
  assert.equal(g.generation, 0);
  g.set(entry(2, [[1, true]]));
  assert.equal(g.generation, 1);
  assert.deepEqual(g.neighboursOf(g.index(P(1))!).map((j) => g.nameAt(j)), [P(2)]);
  g.set(entry(2, [[1, true]]));
  assert.equal(g.generation, 1, 'idempotent');
});
