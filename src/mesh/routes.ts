/**
 * Routes computed from a topology; pure (no I/O, no clock).
 *
 * A connection is usable only when BOTH ends list each other as established: one side's claim
 * is not enough (it may be stale, or the other side may have refused it).
 * Ties are broken by peer name (BFS visits neighbours in name order), so every peer that holds
 * the same topology computes the same trees: a broadcast forwarded along the source's tree
 * reaches every reachable peer exactly once.
 */
import type { PeerName } from '../core/ids.js';
import type { PeerEntry } from './topology-entry.js';

export interface UnicastRoute {
  /** Neighbour to hand the message to. */
  via: PeerName;
  hops: number;
}

/** The symmetric, established graph, with peers indexed in name order. */
export interface MeshGraph {
  names: PeerName[];
  index: Map<PeerName, number>;
  /** Neighbour indices per peer, ascending (= name order). */
  adjacency: number[][];
}

export function buildGraph(entries: ReadonlyMap<PeerName, PeerEntry>): MeshGraph {
  const names = [...entries.keys()].sort();
  const index = new Map<PeerName, number>();
  names.forEach((n, i) => index.set(n, i));
  const claims = names.map((n) => {
    const set = new Set<number>();
    for (const c of entries.get(n)!.connections) {
      const j = index.get(c.name);
      if (c.established && j !== undefined) set.add(j);
    }
    return set;
  });
  const adjacency = claims.map((set, i) => [...set].filter((j) => j !== i && claims[j]!.has(i)).sort((a, b) => a - b));
  return { names, index, adjacency };
}

/** BFS from `root`: parents (-1 = unreachable, root is its own parent) and visiting order. */
function bfs(graph: MeshGraph, root: number): { parent: Int32Array; order: Int32Array } {
  const parent = new Int32Array(graph.names.length).fill(-1);
  const queue = new Int32Array(graph.names.length);
  let head = 0;
  let tail = 0;
  parent[root] = root;
  queue[tail++] = root;
  while (head < tail) {
    const u = queue[head++]!;
    for (const v of graph.adjacency[u]!) {
      if (parent[v] === -1) {
        parent[v] = u;
        queue[tail++] = v;
      }
    }
  }
  return { parent, order: queue.subarray(0, tail) };
}

/** Routes as seen from `self`. Computed once per topology change; broadcast trees lazily. */
export class Routes {
  readonly self: PeerName;
  readonly graph: MeshGraph;
  /** Peers reachable from self, including self. */
  readonly reachable: Set<PeerName>;
  readonly unicast: Map<PeerName, UnicastRoute>;
  private readonly selfIndex: number;
  private readonly broadcastCache = new Map<PeerName, PeerName[]>();

  constructor(self: PeerName, entries: ReadonlyMap<PeerName, PeerEntry>) {
    this.self = self;
    this.graph = buildGraph(entries);
    const selfIndex = this.graph.index.get(self);
    this.selfIndex = selfIndex ?? -1;
    this.reachable = new Set([self]);
    this.unicast = new Map();
    if (selfIndex === undefined) return;
    const { parent, order } = bfs(this.graph, selfIndex);
    const firstHop = new Int32Array(this.graph.names.length).fill(-1);
    const hops = new Int32Array(this.graph.names.length);
    // BFS order resolves a parent before its children.
    for (const i of order) {
      if (i === selfIndex) continue;
      const p = parent[i]!;
      firstHop[i] = p === selfIndex ? i : firstHop[p]!;
      hops[i] = p === selfIndex ? 1 : hops[p]! + 1;
      const name = this.graph.names[i]!;
      this.reachable.add(name);
      this.unicast.set(name, { via: this.graph.names[firstHop[i]!]!, hops: hops[i]! });
    }
  }

  isReachable(peer: PeerName): boolean {
    return this.reachable.has(peer);
  }

  /** Next hop towards `dst`, or undefined when unreachable (or dst is us). */
  nextHop(dst: PeerName): PeerName | undefined {
    return this.unicast.get(dst)?.via;
  }

  /**
   * The neighbours we forward a broadcast that originated at `source` to: our children in the
   * BFS tree rooted at `source`. Empty when `source` is unreachable.
   */
  broadcastNextHops(source: PeerName): PeerName[] {
    const cached = this.broadcastCache.get(source);
    if (cached) return cached;
    const root = this.graph.index.get(source);
    let result: PeerName[] = [];
    if (root !== undefined && this.selfIndex >= 0 && this.reachable.has(source)) {
      const { parent } = bfs(this.graph, root);
      result = this.graph.adjacency[this.selfIndex]!.filter((v) => v !== root && parent[v] === this.selfIndex).map((v) => this.graph.names[v]!);
    }
    this.broadcastCache.set(source, result);
    return result;
  }

  /** Rows for RouterStatus.routes.unicast, sorted by destination. */
  unicastRows(): Array<{ destination: PeerName; via: PeerName; hops: number }> {
    return [...this.unicast.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([destination, r]) => ({ destination, via: r.via, hops: r.hops }));
  }
}
