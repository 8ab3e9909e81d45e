/**
 * The symmetric, established connection graph of a topology, kept up to date entry by entry.
 *
 * Contract: an edge a-b exists exactly when a's entry lists b as established AND b's entry lists
 * a as established (one side's claim may be stale or refused). Neighbour lists are kept in name
 * order, so a BFS over them breaks ties by name, as every peer must for broadcast trees to agree.
 *
 * Why incremental: rebuilding the graph from all entries costs O(n log n) per change, and with
 * 1,000 peers every router sees thousands of changes; `set` costs O(degree). `generation` grows
 * only when an edge appears or disappears, so callers recompute routes only then.
 */
import type { PeerName } from '../core/ids.js';
import type { PeerEntry } from './topology-entry.js';

export class PeerGraph {
  /** Bumped whenever an edge is added or removed. */
  generation = 0;
  private readonly indexOf = new Map<PeerName, number>();
  private readonly names: (PeerName | null)[] = [];
  /** Per node: the peers its entry claims as established (not self). Empty without an entry. */
  private readonly claims: Set<number>[] = [];
  /** Per node: symmetric neighbours, in name order. */
  private readonly adjacency: number[][] = [];
  /** Per node: 1 if it has an entry + how many claims point at it; freed at 0. */
  private readonly refs: number[] = [];
  private readonly hasEntry: boolean[] = [];
  private readonly free: number[] = [];

  static fromEntries(entries: Iterable<PeerEntry>): PeerGraph {
    const g = new PeerGraph();
    for (const e of entries) g.set(e);
    return g;
  }

  /** Slots in use or freed; indices are below this. */
  get capacity(): number {
    return this.names.length;
  }

  index(name: PeerName): number | undefined {
    return this.indexOf.get(name);
  }

  nameAt(i: number): PeerName {
    return this.names[i]!;
  }

  /** Symmetric neighbours of node `i`, in name order. Do not mutate. */
  neighboursOf(i: number): readonly number[] {
    return this.adjacency[i] ?? [];
  }

  /** Replaces the claims of `entry.name` with those of `entry`. Idempotent. */
  set(entry: PeerEntry): void {
    const i = this.acquire(entry.name);
    if (!this.hasEntry[i]) {
      this.hasEntry[i] = true;
      this.refs[i]!++;
    }
    const next = new Set<number>();
    for (const c of entry.connections) {
      if (!c.established || c.name === entry.name) continue;
      const j = this.indexOf.get(c.name) ?? this.acquire(c.name);
      next.add(j);
    }
    const prev = this.claims[i]!;
    for (const j of prev) if (!next.has(j)) this.dropClaim(i, j);
    for (const j of next) {
      if (prev.has(j)) continue;
      prev.add(j);
      this.refs[j]!++;
      if (this.claims[j]!.has(i)) this.link(i, j);
    }
    // dropClaim may free nodes other than i, never i itself (its entry holds a ref).
  }

  /** Forgets the entry of `name` (its claims go, so do its edges). Idempotent. */
  delete(name: PeerName): void {
    const i = this.indexOf.get(name);
    if (i === undefined || !this.hasEntry[i]) return;
    for (const j of [...this.claims[i]!]) this.dropClaim(i, j);
    this.hasEntry[i] = false;
    this.release(i);
  }

  private dropClaim(i: number, j: number): void {
    this.claims[i]!.delete(j);
    if (this.claims[j]!.has(i)) this.unlink(i, j);
    this.release(j);
  }

  private link(i: number, j: number): void {
    this.insertSorted(this.adjacency[i]!, j);
    this.insertSorted(this.adjacency[j]!, i);
    this.generation++;
  }

  private unlink(i: number, j: number): void {
    removeValue(this.adjacency[i]!, j);
    removeValue(this.adjacency[j]!, i);
    this.generation++;
  }

  private insertSorted(list: number[], j: number): void {
    const name = this.names[j]!;
    let at = list.length;
    while (at > 0 && this.names[list[at - 1]!]! > name) at--;
    list.splice(at, 0, j);
  }

  private acquire(name: PeerName): number {
    const existing = this.indexOf.get(name);
    if (existing !== undefined) return existing;
    const i = this.free.pop() ?? this.names.length;
    this.indexOf.set(name, i);
    this.names[i] = name;
    this.claims[i] = new Set();
    this.adjacency[i] = [];
    this.refs[i] = 0;
    this.hasEntry[i] = false;
    return i;
  }

  private release(i: number): void {
    if (--this.refs[i]! > 0) return;
    this.indexOf.delete(this.names[i]!);
    this.names[i] = null;
    this.free.push(i);
  }
}

function removeValue(list: number[], value: number): void {
  const at = list.indexOf(value);
  if (at >= 0) list.splice(at, 1);
}
