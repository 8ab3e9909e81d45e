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
import { decodeEntries, encodeEntries } from './topology-codec.js';
import { compareEntries, mergeEntryMaps, type PeerConnectionEntry, type PeerEntry } from './topology-entry.js';

export type { PeerConnectionEntry, PeerEntry } from './topology-entry.js';

/** A set of entries on the wire or in a connection's pending gossip. Immutable once built. */
export class TopologyUpdate implements GossipData {
  readonly entries = new Map<PeerName, PeerEntry>();

  constructor(entries: Iterable<PeerEntry> = []) {
    mergeEntryMaps(this.entries, entries);
  }

  static decode(bytes: Uint8Array): TopologyUpdate {
    return new TopologyUpdate(decodeEntries(bytes));
  }

  get size(): number {
    return this.entries.size;
  }

  encode(): Uint8Array {
    return encodeEntries(this.entries.values());
  }

  merge(other: GossipData): GossipData {
    if (!(other instanceof TopologyUpdate)) throw new LoomError('ERR_INTERNAL', 'topology gossip can only merge with topology gossip');
    // Copy-on-write: the same update may sit in several connections' pending slots.
    return new TopologyUpdate([...this.entries.values(), ...other.entries.values()]);
  }
}

export class Topology {
  readonly self: PeerName;
  private readonly entries = new Map<PeerName, PeerEntry>();
  private our: PeerEntry;

  constructor(identity: PeerIdentity) {
    this.self = identity.name;
    this.our = { name: identity.name, nickname: identity.nickname, uid: identity.uid, version: 1, connections: [] };
    this.entries.set(this.self, this.our);
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
    const changed = mergeEntryMaps(this.entries, others);
    if (bumped) changed.push(bumped);
    return changed;
  }

  /** Drops every peer not in `reachable` (we are always kept). Returns the removed names. */
  removeUnreachable(reachable: ReadonlySet<PeerName>): PeerName[] {
    const removed: PeerName[] = [];
    for (const name of this.entries.keys()) {
      if (name !== this.self && !reachable.has(name)) removed.push(name);
    }
    for (const name of removed) this.entries.delete(name);
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
    this.our = entry;
    this.entries.set(this.self, entry);
    return entry;
  }
}
