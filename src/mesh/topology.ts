/**
 * The mesh topology as a CRDT: peer name -> the newest PeerEntry that peer published.
 * Merge keeps, per peer, the greater (version, uid); see topology-entry.ts.
 *
 * PeerEntry objects are immutable once created: they are shared between the topology, pending
 * gossip and encoded updates, and replaced (never edited) when something changes.
 */
import { LoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { GossipData, PeerIdentity, PeerStatus } from './types.js';
import { PeerGraph } from './peer-graph.js';
import { decodeEntries, encodeEntries } from './topology-codec.js';
import { compareEntries, mergeEntryMaps, type PeerConnectionEntry, type PeerEntry } from './topology-entry.js';

export type { PeerConnectionEntry, PeerEntry } from './topology-entry.js';

/** A set of entries on the wire or in a connection's pending gossip. Immutable once built. */
export class TopologyUpdate implements GossipData {
  readonly entries = new Map<PeerName, PeerEntry>();

  /** `raw`: the wire bytes these entries were decoded from, relayed as they are. */
  constructor(
    entries: Iterable<PeerEntry> = [],
    private readonly raw: Uint8Array | null = null,
  ) {
    mergeEntryMaps(this.entries, entries);
  }

  /** Keeps a view of `bytes` (the caller must not write to it afterwards). */
  static decode(bytes: Uint8Array): TopologyUpdate {
    return new TopologyUpdate(decodeEntries(bytes), bytes);
  }

  get size(): number {
    return this.entries.size;
  }

  encode(): Uint8Array {
    return this.raw ?? encodeEntries(this.entries.values());
  }

  merge(other: GossipData): GossipData {
    if (!(other instanceof TopologyUpdate)) throw new LoomError('ERR_INTERNAL', 'topology gossip can only merge with topology gossip');
    // Copy-on-write: the same update may sit in several connections' pending slots.
    return new TopologyUpdate([...this.entries.values(), ...other.entries.values()]);
  }
}

export class Topology {
  readonly self: PeerName;
  /** The connection graph of these entries, kept current by every change below. */
  readonly graph = new PeerGraph();
  private readonly entries = new Map<PeerName, PeerEntry>();
  private our: PeerEntry;
  private changes = 0;
  /** Order-independent sums of per-entry hashes of (name, uid, version), kept per change. */
  private sumA = 0;
  private sumB = 0;

  constructor(identity: PeerIdentity) {
    this.self = identity.name;
    this.our = { name: identity.name, nickname: identity.nickname, uid: identity.uid, version: 1, connections: [] };
    this.entries.set(this.self, this.our);
    this.graph.set(this.our);
    this.account(this.our, 1);
  }

  /**
   * A cheap fingerprint of (name, uid, version) over all entries, updated in O(1) per change, for
   * convergence checks in tests and benchmarks (the repair check uses topology-digest.ts).
   */
  quickFingerprint(): string {
    return `${this.entries.size}:${this.sumA.toString(16)}:${this.sumB.toString(16)}`;
  }

  private account(e: PeerEntry, sign: 1 | -1): void {
    const key = `${e.name}/${e.uid}/${e.version}`;
    this.sumA = (this.sumA + sign * fnv1a(key, 0x811c9dc5)) >>> 0;
    this.sumB = (this.sumB + sign * fnv1a(key, 0x01000193)) >>> 0;
  }

  /** Grows with every change of any entry (for callers that cache what they derive). */
  get changeCount(): number {
    return this.changes;
  }

  get ourEntry(): PeerEntry {
    return this.our;
  }

  get size(): number {
    return this.entries.size;
  }

  get(name: PeerName): PeerEntry | undefined {
    return this.entries.get(name);
  }

  has(name: PeerName): boolean {
    return this.entries.has(name);
  }

  /** Read-only view for route computation. */
  view(): ReadonlyMap<PeerName, PeerEntry> {
    return this.entries;
  }

  /** All entries, sorted by name. */
  all(): PeerEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Complete state, for anti-entropy and new connections. */
  fullUpdate(): TopologyUpdate {
    return new TopologyUpdate(this.entries.values());
  }

  /**
   * Publishes our current connections. Returns our new entry when they differ from what we
   * published last (the version is bumped), or null when nothing changed.
   */
  setOurConnections(connections: PeerConnectionEntry[]): PeerEntry | null {
    const sorted = [...connections].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    const candidate: PeerEntry = { ...this.our, connections: sorted };
    if (compareEntries(candidate, this.our) === 0) return null;
    return this.publish({ ...candidate, version: this.our.version + 1 });
  }

  /**
   * Merges received entries. Returns what was new to us, including our own entry when someone
   * held a version of us at least as new as ours (a previous incarnation): we then bump our
   * version past it, so that our current entry wins everywhere once re-gossiped.
   */
  apply(incoming: Iterable<PeerEntry>): PeerEntry[] {
    const others: PeerEntry[] = [];
    let bumped: PeerEntry | null = null;
    for (const entry of incoming) {
      if (entry.name !== this.self) {
        others.push(entry);
        continue;
      }
      const cmp = entry.version - this.our.version;
      if (cmp > 0 || (cmp === 0 && compareEntries(entry, this.our) !== 0)) {
        bumped = this.publish({ ...this.our, version: Math.max(entry.version, this.our.version) + 1 });
      }
    }
    const previous = new Map<PeerName, PeerEntry | undefined>();
    for (const e of others) if (!previous.has(e.name)) previous.set(e.name, this.entries.get(e.name));
    const changed = mergeEntryMaps(this.entries, others);
    for (const entry of changed) {
      const old = previous.get(entry.name);
      if (old) this.account(old, -1);
      previous.set(entry.name, entry);
      this.account(entry, 1);
      this.graph.set(entry);
    }
    this.changes += changed.length;
    if (bumped) changed.push(bumped);
    return changed;
  }

  /** Drops every peer not in `reachable` (we are always kept). Returns the removed names. */
  removeUnreachable(reachable: ReadonlySet<PeerName>): PeerName[] {
    const removed: PeerName[] = [];
    for (const name of this.entries.keys()) {
      if (name !== this.self && !reachable.has(name)) removed.push(name);
    }
    for (const name of removed) {
      this.account(this.entries.get(name)!, -1);
      this.entries.delete(name);
      this.graph.delete(name);
    }
    this.changes += removed.length;
    return removed;
  }

  /** Rows for RouterStatus.peers. */
  status(): PeerStatus[] {
    return this.all().map((e) => ({
      name: e.name,
      nickname: e.nickname,
      uid: e.uid,
      version: e.version,
      connections: e.connections.map((c) => ({
        name: c.name,
        nickname: this.entries.get(c.name)?.nickname ?? '',
        address: c.address,
        outbound: c.outbound,
        established: c.established,
      })),
    }));
  }

  private publish(entry: PeerEntry): PeerEntry {
    this.account(this.our, -1);
    this.account(entry, 1);
    this.our = entry;
    this.entries.set(this.self, entry);
    this.graph.set(entry);
    this.changes++;
    return entry;
  }
}

function fnv1a(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
