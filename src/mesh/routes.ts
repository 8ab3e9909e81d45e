/**
 * Routes computed from the connection graph; pure (no I/O, no clock).
 *
 * A connection is usable only when BOTH ends list each other as established (see peer-graph.ts).
 * Ties are broken by peer name (BFS visits neighbours in name order), so every peer that holds
 * the same topology computes the same trees: a broadcast forwarded along the source's tree
 * reaches every reachable peer exactly once.
 *
 * A Routes is a snapshot for one `generation` of its graph: unicast routes are computed at
 * construction; broadcast hops lazily, per source, from the graph as it is when first asked
 * (the router replaces its Routes as soon as the graph's generation moves).
 */
import type { PeerName } from '../core/ids.js';
import { PeerGraph } from './peer-graph.js';
import type { PeerEntry } from './topology-entry.js';

export interface UnicastRoute {
  /** Neighbour to hand the message to. */
  via: PeerName;
  hops: number;
}

/**
 * BFS from `root` over name-ordered neighbours. Stops early, after `stopAfter` has been expanded
 * (its children are final then), when given. Returns parents (-1 = not reached).
 */
function bfs(graph: PeerGraph, root: number, stopAfter = -1): { parent: Int32Array; order: Int32Array } {
  const parent = new Int32Array(graph.capacity).fill(-1);
  const queue = new Int32Array(graph.capacity);
  let head = 0;
  let tail = 0;
  parent[root] = root;
  queue[tail++] = root;
  while (head < tail) {
    const u = queue[head++]!;
    for (const v of graph.neighboursOf(u)) {
      if (parent[v] === -1) {
        parent[v] = u;
        queue[tail++] = v;
      }
    }
    if (u === stopAfter) break;
  }
  return { parent, order: queue.subarray(0, tail) };
}

/** Routes as seen from `self`. */
export class Routes {
  readonly self: PeerName;
  readonly graph: PeerGraph;
  /** The graph generation these routes were computed for. */
  readonly generation: number;
  /** Peers reachable from self, including self. */
  readonly reachable: Set<PeerName>;
  readonly unicast: Map<PeerName, UnicastRoute>;
  private readonly selfIndex: number;
  private readonly broadcastCache = new Map<PeerName, PeerName[]>();

  /** `source`: a live graph (the router's, kept current by the topology) or entries to build one from. */
  constructor(self: PeerName, source: PeerGraph | ReadonlyMap<PeerName, PeerEntry>) {
    this.self = self;
    this.graph = source instanceof PeerGraph ? source : PeerGraph.fromEntries(source.values());
    this.generation = this.graph.generation;
    const selfIndex = this.graph.index(self);
    this.selfIndex = selfIndex ?? -1;
    this.reachable = new Set([self]);
    this.unicast = new Map();
    if (selfIndex === undefined) return;
    const { parent, order } = bfs(this.graph, selfIndex);
    const firstHop = new Int32Array(this.graph.capacity).fill(-1);
    const hops = new Int32Array(this.graph.capacity);
    // BFS order resolves a parent before its children.
    for (const i of order) {
      if (i === selfIndex) continue;
      const p = parent[i]!;
      firstHop[i] = p === selfIndex ? i : firstHop[p]!;
      hops[i] = p === selfIndex ? 1 : hops[p]! + 1;
      const name = this.graph.nameAt(i);
      this.reachable.add(name);
      this.unicast.set(name, { via: this.graph.nameAt(firstHop[i]), hops: hops[i] });
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
    const root = this.graph.index(source);
    let result: PeerName[] = [];
    if (root !== undefined && this.selfIndex >= 0 && this.reachable.has(source)) {
      const { parent } = bfs(this.graph, root, this.selfIndex);
      result = this.graph
        .neighboursOf(this.selfIndex)
        .filter((v) => v !== root && parent[v] === this.selfIndex)
        .map((v) => this.graph.nameAt(v));
    }
    this.broadcastCache.set(source, result);
    return result;
  }

  /** Rows for RouterStatus.routes.unicast, sorted by destination. */
  unicastRows(): Array<{ destination: PeerName; via: PeerName; hops: number }> {
    return [...this.unicast.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([destination, r]) => ({ destination, via: r.via, hops: r.hops }));
  }
}
