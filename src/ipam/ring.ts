/**
 * The address ring: a CRDT that says which peer owns which part of the allocation range.
 *
 * The range is cut at `tokens`; the entry at token t owns [t, next token) (the last one runs to
 * the end of the range). Tokens are only ever added, never removed, so the set of tokens is a
 * grow-only set. Each entry carries (owner, version); only the current owner changes an entry
 * (split, donate, reset), except `rmpeer`, which moves a dead peer's entries to an heir.
 *
 * Merge rule (a join-semilattice, hence commutative, associative and idempotent):
 * - tokens: union;
 * - per token: the entry with the higher version wins; at equal versions with different owners
 *   (only possible when two peers ran `rmpeer` in different partitions and chose different heirs)
 *   the owner with the smaller name wins. The loser is told by `merge` so it can log it;
 * - per-peer stats: higher version wins (ties broken by the numbers, to stay a total order).
 *
 * Two rings that were bootstrapped differently (different `seeds`) describe different worlds
 * and are never merged: ERR_CONFLICT. Rings of different ranges: ERR_RANGE_MISMATCH.
 * Every mutator validates before it changes anything: a thrown error leaves the ring as it was.
 */
import { LoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import { type Address, type Cidr, cidrEnd, cidrEquals, formatCidr } from './cidr.js';

export interface RingEntry {
  readonly token: Address;
  readonly owner: PeerName;
  readonly version: number;
}

/** What each peer says about its own space; advisory (donor choice, status). */
export interface PeerStats {
  readonly version: number;
  readonly free: number;
  readonly inUse: number;
}

/** A half-open run of addresses [start, end). */
export interface Interval {
  start: number;
  end: number;
}

export const MAX_VERSION = 0xffffffff;

/** Total order on competing entries for one token: true when `a` beats `b`. */
export function entryWins(a: RingEntry, b: RingEntry): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return a.owner < b.owner;
}

function statsWins(a: PeerStats, b: PeerStats): boolean {
  if (a.version !== b.version) return a.version > b.version;
  if (a.free !== b.free) return a.free < b.free;
  return a.inUse > b.inUse;
}

export interface MergeResult {
  changed: boolean;
  /** Tokens where two owners claimed the same version (rmpeer in two partitions). */
  conflicts: Array<{ token: Address; winner: PeerName; loser: PeerName }>;
}

export class Ring {
  readonly range: Cidr;
  private seedList: PeerName[];
  private list: RingEntry[];
  private readonly peerStats: Map<PeerName, PeerStats>;

  constructor(range: Cidr, seeds: readonly PeerName[] = [], entries: readonly RingEntry[] = [], stats?: ReadonlyMap<PeerName, PeerStats>) {
    this.range = range;
    this.seedList = [...seeds];
    this.list = [...entries];
    this.peerStats = new Map(stats ?? []);
  }

  /**
   * The split every seed computes on its own: the range cut into `owners.length` nearly equal
   * pieces, in sorted name order. Deterministic, so no agreement round is needed.
   */
  static initial(range: Cidr, owners: readonly PeerName[]): Ring {
    const sorted = [...new Set(owners)].sort();
    if (sorted.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'an initial ring needs at least one owner');
    if (sorted.length > range.size) throw new LoomError('ERR_INVALID_ARGUMENT', `${sorted.length} seeds do not fit in ${formatCidr(range)}`);
    const entries = sorted.map((owner, i) => ({ token: range.start + Math.floor((i * range.size) / sorted.length), owner, version: 1 }));
    return new Ring(range, sorted, entries);
  }

  get seeds(): readonly PeerName[] {
    return this.seedList;
  }

  get entries(): readonly RingEntry[] {
    return this.list;
  }

  get stats(): ReadonlyMap<PeerName, PeerStats> {
    return this.peerStats;
  }

  /** True until the ring has been bootstrapped (seeded, agreed by consensus, or received). */
  isEmpty(): boolean {
    return this.list.length === 0;
  }

  clone(): Ring {
    return new Ring(this.range, this.seedList, this.list, this.peerStats);
  }

  /** Merges `other` into this ring (see the module comment). Throws before changing anything. */
  merge(other: Ring): MergeResult {
    if (!cidrEquals(this.range, other.range)) {
      throw new LoomError('ERR_RANGE_MISMATCH', `peers disagree on the allocation range: ours ${formatCidr(this.range)}, theirs ${formatCidr(other.range)}`, {
        detail: { ours: formatCidr(this.range), theirs: formatCidr(other.range) },
      });
    }
    if (!this.isEmpty() && !other.isEmpty() && !sameNames(this.seedList, other.seedList)) {
      throw new LoomError('ERR_CONFLICT', 'rings were bootstrapped differently (different seeds or consensus members)', {
        detail: { ours: this.seedList, theirs: other.seedList },
      });
    }
    const result: MergeResult = { changed: false, conflicts: [] };
    if (this.isEmpty() && !other.isEmpty()) this.seedList = [...other.seedList];

    const merged: RingEntry[] = [];
    let i = 0;
    let j = 0;
    const a = this.list;
    const b = other.list;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      if (y === undefined || (x !== undefined && x.token < y.token)) {
        merged.push(x!);
        i++;
      } else if (x === undefined || y.token < x.token) {
        merged.push(y);
        result.changed = true;
        j++;
      } else {
        if (x.version === y.version && x.owner !== y.owner) {
          const winner = x.owner < y.owner ? x.owner : y.owner;
          result.conflicts.push({ token: x.token, winner, loser: winner === x.owner ? y.owner : x.owner });
        }
        if (entryWins(y, x)) {
          merged.push(y);
          result.changed = true;
        } else {
          merged.push(x);
        }
        i++;
        j++;
      }
    }
    this.list = merged;

    for (const [peer, theirs] of other.peerStats) {
      const ours = this.peerStats.get(peer);
      if (ours === undefined || statsWins(theirs, ours)) {
        this.peerStats.set(peer, theirs);
        result.changed = true;
      }
    }
    return result;
  }

  /** Index of the entry whose piece contains `a`, or -1 (empty ring or outside the range). */
  private indexOf(a: Address): number {
    if (a < this.range.start || a >= cidrEnd(this.range)) return -1;
    let lo = 0;
    let hi = this.list.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.token <= a) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  ownerOf(a: Address): PeerName | undefined {
    const i = this.indexOf(a);
    return i < 0 ? undefined : this.list[i]!.owner;
  }

  private pieceEnd(i: number): number {
    return this.list[i + 1]?.token ?? cidrEnd(this.range);
  }

  /** The pieces `peer` owns, with adjacent pieces joined, in address order. */
  ownedBy(peer: PeerName): Interval[] {
    const out: Interval[] = [];
    for (let i = 0; i < this.list.length; i++) {
      if (this.list[i]!.owner !== peer) continue;
      const start = this.list[i]!.token;
      const end = this.pieceEnd(i);
      const last = out[out.length - 1];
      if (last && last.end === start) last.end = end;
      else out.push({ start, end });
    }
    return out;
  }

  ownedSize(peer: PeerName): number {
    let n = 0;
    for (const r of this.ownedBy(peer)) n += r.end - r.start;
    return n;
  }

  /** Every peer that owns some space, in name order. */
  owners(): PeerName[] {
    return [...new Set(this.list.map((e) => e.owner))].sort();
  }

  /** Adds a token at `a` inside an existing piece; the new piece keeps the owner and version. */
  private split(a: Address): void {
    if (a === cidrEnd(this.range)) return;
    const i = this.indexOf(a);
    if (i < 0) throw new LoomError('ERR_INTERNAL', 'split outside the ring');
    const e = this.list[i]!;
    if (e.token === a) return;
    this.list.splice(i + 1, 0, { token: a, owner: e.owner, version: e.version });
  }

  /**
   * Gives [start, end) from `from` to `to` (a donation or reset). Every address in it must be
   * owned by `from`; the caller is `from`, so only the owner changes its entries.
   */
  transfer(start: Address, end: Address, from: PeerName, to: PeerName): void {
    if (!(start < end) || start < this.range.start || end > cidrEnd(this.range)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'transfer outside the range');
    }
    for (let i = Math.max(0, this.indexOf(start)); i < this.list.length && this.list[i]!.token < end; i++) {
      const e = this.list[i]!;
      if (e.owner !== from) throw new LoomError('ERR_CONFLICT', 'can only transfer space one owns', { detail: { token: e.token, owner: e.owner, from } });
      if (e.version >= MAX_VERSION) throw new LoomError('ERR_INTERNAL', 'ring entry version exhausted');
    }
    this.split(start);
    this.split(end);
    for (let i = this.indexOf(start); i < this.list.length && this.list[i]!.token < end; i++) {
      const e = this.list[i]!;
      this.list[i] = { token: e.token, owner: to, version: e.version + 1 };
    }
  }

  /**
   * Moves every entry of `from` to `to`, bumping each version by one. Used by rmpeer: two peers
   * that run it with the same heir produce identical entries, so their updates merge cleanly.
   * Returns the number of addresses moved.
   */
  reassign(from: PeerName, to: PeerName): number {
    let moved = 0;
    for (let i = 0; i < this.list.length; i++) {
      const e = this.list[i]!;
      if (e.owner !== from) continue;
      if (e.version >= MAX_VERSION) throw new LoomError('ERR_INTERNAL', 'ring entry version exhausted');
      this.list[i] = { token: e.token, owner: to, version: e.version + 1 };
      moved += this.pieceEnd(i) - e.token;
    }
    return moved;
  }

  /** Records `peer`'s own numbers; bumps the version only when they changed. Returns whether they did. */
  setStats(peer: PeerName, free: number, inUse: number): boolean {
    const old = this.peerStats.get(peer);
    if (old && old.free === free && old.inUse === inUse) return false;
    const version = (old?.version ?? 0) + 1;
    this.peerStats.set(peer, { version, free, inUse });
    return true;
  }

  /** Structural equality (for tests and "everyone agrees"). */
  equals(other: Ring): boolean {
    if (!cidrEquals(this.range, other.range) || !sameNames(this.seedList, other.seedList)) return false;
    if (this.list.length !== other.list.length) return false;
    for (let i = 0; i < this.list.length; i++) {
      const x = this.list[i]!;
      const y = other.list[i]!;
      if (x.token !== y.token || x.owner !== y.owner || x.version !== y.version) return false;
    }
    if (this.peerStats.size !== other.peerStats.size) return false;
    for (const [p, s] of this.peerStats) {
      const t = other.peerStats.get(p);
      if (!t || t.version !== s.version || t.free !== s.free || t.inUse !== s.inUse) return false;
    }
    return true;
  }
}

function sameNames(a: readonly PeerName[], b: readonly PeerName[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
