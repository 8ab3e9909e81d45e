/**
 * The local replica of the DNS records and its gossip side (channel "dns").
 *
 * Contracts:
 * - Local changes (add/remove) touch only records whose origin is this peer, and are broadcast
 *   as a delta at once (so a removal reaches every reachable host within a few hops' latency).
 * - The origin is authoritative for its own keys: when gossip brings a version of one of our
 *   keys that disagrees with what we hold (we restarted and lost state, or a stale copy comes
 *   back after a partition), we re-assert our state at a version above it and broadcast that.
 *   A key of ours we do not hold at all is tombstoned.
 * - Records whose origin is not reachable are hidden from lookups and status (kept, not deleted);
 *   they show again when the peer is back.
 * - Tombstones are dropped `tombstoneLifetimeMs` after this replica learned of them. Safe because
 *   a live copy resurfacing later (from a peer partitioned longer than that) is either hidden (origin
 *   unreachable) or reaches the origin, which tombstones it again by the rule above.
 */
import type { GossipChannel, GossipData, Gossiper, MeshView } from '../mesh/types.js';
import type { PeerName } from '../core/ids.js';
import { parseContainerId, type ContainerId } from '../core/ids.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { LoomError } from '../core/errors.js';
import { decodeRecords } from './codec.js';
import { canonicalName, parseIPv4, parseName } from './names.js';
import { MAX_VERSION, RecordSet, recordKey, supersedes, type DnsRecord } from './records.js';

export interface DnsStoreComponents {
  mesh: MeshView;
  clock: Clock;
  logger: Logger;
}

export interface DnsStoreInit {
  /** How long a tombstone is kept after we learn of it. Default 30 min (far above gossip convergence). */
  tombstoneLifetimeMs?: number;
  /** How often tombstones are collected. Default 60 s. */
  gcIntervalMs?: number;
}

/** One row of `loom status dns`. */
export interface DnsStatusRow {
  name: string;
  address: string;
  containerId: ContainerId;
  origin: PeerName;
  version: number;
}

export const DEFAULT_TOMBSTONE_LIFETIME_MS = 30 * 60_000;
export const DEFAULT_GC_INTERVAL_MS = 60_000;

export class DnsRecordStore implements Gossiper {
  private readonly mesh: MeshView;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly tombstoneLifetimeMs: number;
  private readonly gcIntervalMs: number;
  private readonly records = new RecordSet();
  private readonly byName = new Map<string, Set<string>>();
  private readonly byAddress = new Map<string, Set<string>>();
  /** When each tombstone we hold was learned (local clock); drives garbage collection. */
  private readonly tombstonedAt = new Map<string, number>();
  private channel: GossipChannel | null = null;
  private gcTimer: TimerHandle | null = null;
  private changes = 0;
  /** Called synchronously after every change of `changeCount` (see `onChange`). */
  private readonly changeListeners = new Set<() => void>();
  private unsubscribeMesh: (() => void) | null = null;

  constructor(components: DnsStoreComponents, init: DnsStoreInit = {}) {
    this.mesh = components.mesh;
    this.clock = components.clock;
    this.logger = components.logger;
    this.tombstoneLifetimeMs = init.tombstoneLifetimeMs ?? DEFAULT_TOMBSTONE_LIFETIME_MS;
    this.gcIntervalMs = init.gcIntervalMs ?? DEFAULT_GC_INTERVAL_MS;
    if (!(this.tombstoneLifetimeMs > 0) || !(this.gcIntervalMs > 0)) throw new LoomError('ERR_INVALID_CONFIG', 'dns: tombstone lifetime and gc interval must be positive');
    this.followMesh();
  }

  /**
   * Changes whenever a lookup may answer differently: bumped by every write (local, merged,
   * collected) and on every mesh change (reachability hides and shows records). undefined after
   * `stop`, when the mesh is no longer followed: readers must then compare answers themselves.
   */
  get changeCount(): number | undefined {
    return this.unsubscribeMesh === null ? undefined : this.changes;
  }

  /**
   * Calls `listener` synchronously every time `changeCount` changes (and when it becomes
   * undefined at `stop`), before anything can read the store again: for copies of answers that
   * must never outlive the records they were built from (the native DNS responder's table).
   * Returns the unsubscribe function. A listener must not throw.
   */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    this.changes++;
    for (const listener of this.changeListeners) listener();
  }

  /** The channel from `router.newGossipChannel('dns', store)`; without one the store is local only. */
  attach(channel: GossipChannel): void {
    this.channel = channel;
  }

  /** Starts tombstone collection. Idempotent. */
  start(): void {
    this.followMesh();
    this.gcTimer ??= this.clock.setInterval(() => this.collectTombstones(), this.gcIntervalMs);
  }

  /** Idempotent. */
  stop(): void {
    this.gcTimer?.cancel();
    this.gcTimer = null;
    this.unsubscribeMesh?.();
    this.unsubscribeMesh = null;
    this.changed();
  }

  private followMesh(): void {
    if (this.unsubscribeMesh !== null) return;
    this.changed();
    this.unsubscribeMesh = this.mesh.onChange(() => this.changed());
  }

  // ----- local changes --------------------------------------------------------------------

  /** Registers name -> address for a local container. Returns false if it was already there. */
  add(name: string, address: string, containerId: string): boolean {
    const key = { name: parseName(name), address: parseIPv4(address), containerId: parseContainerId(containerId), origin: this.mesh.self };
    const current = this.records.entries.get(recordKey(key));
    if (current && !current.tombstone) return false;
    this.commitLocal([{ ...key, version: nextVersion(current), tombstone: false }]);
    return true;
  }

  /** Removes local records of `name`, narrowed by address and container when given. Returns how many. */
  remove(name: string, address?: string, containerId?: string): number {
    const n = parseName(name);
    const a = address === undefined ? undefined : parseIPv4(address);
    const c = containerId === undefined ? undefined : parseContainerId(containerId);
    return this.tombstoneLocal((r) => r.name === n && (a === undefined || r.address === a) && (c === undefined || r.containerId === c));
  }

  /** Removes every local record of a container (on container death). Returns how many. */
  removeContainer(containerId: string): number {
    const c = parseContainerId(containerId);
    return this.tombstoneLocal((r) => r.containerId === c);
  }

  // ----- queries (visible records only) ---------------------------------------------------

  /** Distinct addresses of `name` from reachable origins, in a stable order. */
  lookup(name: string): string[] {
    const out = new Set<string>();
    for (const r of this.visible(this.byName.get(canonicalName(name)))) out.add(r.address);
    return [...out];
  }

  /** Distinct names that resolve to `address`, sorted. */
  reverseLookup(address: string): string[] {
    const out = new Set<string>();
    for (const r of this.visible(this.byAddress.get(address))) out.add(r.name);
    return [...out].sort();
  }

  hasName(name: string): boolean {
    return this.lookup(name).length > 0;
  }

  /** Visible live records, sorted by name then address. */
  status(): DnsStatusRow[] {
    const rows: DnsStatusRow[] = [];
    for (const r of this.records.entries.values()) {
      if (r.tombstone || !this.isVisible(r)) continue;
      rows.push({ name: r.name, address: r.address, containerId: r.containerId, origin: r.origin, version: r.version });
    }
    return rows.sort((x, y) => byCodeUnits(x.name, y.name) || byCodeUnits(x.address, y.address) || byCodeUnits(x.origin, y.origin));
  }

  /** Counts for status/metrics, including hidden records and tombstones. */
  counts(): { live: number; hidden: number; tombstones: number } {
    let live = 0;
    let hidden = 0;
    let tombstones = 0;
    for (const r of this.records.entries.values()) {
      if (r.tombstone) tombstones++;
      else if (this.isVisible(r)) live++;
      else hidden++;
    }
    return { live, hidden, tombstones };
  }

  // ----- Gossiper -------------------------------------------------------------------------

  gossip(): GossipData | null {
    return this.records.size === 0 ? null : new RecordSet(this.records.records());
  }

  /** Throws ERR_PROTOCOL on malformed bytes (the router decides what to do with the sender). */
  onGossip(update: Uint8Array): GossipData | null {
    return this.mergeRemote(decodeRecords(update));
  }

  onGossipBroadcast(_src: PeerName, update: Uint8Array): GossipData | null {
    return this.mergeRemote(decodeRecords(update));
  }

  /** The dns channel sends no unicasts. */
  onGossipUnicast(_src: PeerName, _msg: Uint8Array): void {}

  // ----- internals ------------------------------------------------------------------------

  private mergeRemote(incoming: DnsRecord[]): RecordSet | null {
    const delta = new RecordSet();
    const corrections: DnsRecord[] = [];
    for (const r of incoming) {
      const current = this.records.entries.get(recordKey(r));
      if (r.origin === this.mesh.self) {
        const correction = this.reassertOwn(r, current);
        if (correction) corrections.push(correction);
        else if (!current || (current.tombstone === r.tombstone && r.version > current.version)) this.store(r);
        continue;
      }
      if (current && !supersedes(r, current)) continue;
      this.store(r);
      delta.mergeRecord(r);
    }
    if (corrections.length > 0) {
      this.logger.debug({ count: corrections.length }, 'dns: re-asserting own records seen with stale state');
      this.commitLocal(corrections);
    }
    return delta.size === 0 ? null : delta;
  }

  /** For a key of ours seen in gossip: the record to broadcast to restore our state, or null. */
  private reassertOwn(seen: DnsRecord, current: DnsRecord | undefined): DnsRecord | null {
    if (!current) return seen.tombstone ? null : { ...seen, version: bump(seen.version), tombstone: true };
    if (current.tombstone === seen.tombstone || seen.version < current.version) return null;
    return { ...current, version: bump(seen.version) };
  }

  private tombstoneLocal(match: (r: DnsRecord) => boolean): number {
    const changes: DnsRecord[] = [];
    for (const r of this.records.entries.values()) {
      if (r.origin === this.mesh.self && !r.tombstone && match(r)) changes.push({ ...r, version: nextVersion(r), tombstone: true });
    }
    if (changes.length > 0) this.commitLocal(changes);
    return changes.length;
  }

  private commitLocal(changes: DnsRecord[]): void {
    for (const r of changes) this.store(r);
    this.channel?.gossipBroadcast(new RecordSet(changes));
  }

  private store(r: DnsRecord): void {
    this.changed();
    const key = recordKey(r);
    this.records.entries.set(key, r);
    index(this.byName, r.name, key);
    index(this.byAddress, r.address, key);
    if (r.tombstone) this.tombstonedAt.set(key, this.clock.now());
    else this.tombstonedAt.delete(key);
  }

  private collectTombstones(): void {
    const cutoff = this.clock.now() - this.tombstoneLifetimeMs;
    let dropped = 0;
    for (const [key, at] of this.tombstonedAt) {
      if (at > cutoff) continue;
      const r = this.records.entries.get(key);
      this.tombstonedAt.delete(key);
      if (!r) continue;
      this.records.entries.delete(key);
      unindex(this.byName, r.name, key);
      unindex(this.byAddress, r.address, key);
      dropped++;
    }
    if (dropped > 0) {
      this.changed();
      this.logger.debug({ dropped }, 'dns: collected tombstones');
    }
  }

  private isVisible(r: DnsRecord): boolean {
    return r.origin === this.mesh.self || this.mesh.isReachable(r.origin);
  }

  private *visible(keys: Set<string> | undefined): Generator<DnsRecord> {
    if (!keys) return;
    for (const key of keys) {
      const r = this.records.entries.get(key);
      if (r && !r.tombstone && this.isVisible(r)) yield r;
    }
  }
}

function nextVersion(current: DnsRecord | undefined): number {
  return bump(current?.version ?? 0);
}

function bump(version: number): number {
  if (version >= MAX_VERSION) throw new LoomError('ERR_EXHAUSTED', 'dns: record version space exhausted');
  return version + 1;
}

function index(map: Map<string, Set<string>>, at: string, key: string): void {
  let set = map.get(at);
  if (!set) map.set(at, (set = new Set()));
  set.add(key);
}

function unindex(map: Map<string, Set<string>>, at: string, key: string): void {
  const set = map.get(at);
  if (!set) return;
  set.delete(key);
  if (set.size === 0) map.delete(at);
}

/**
 * Plain string order (UTF-16 code units), not `localeCompare`: names here are canonical lower-case
 * DNS names, addresses and peer names, so a locale adds nothing but a dependence on the host's
 * locale, and its first use makes V8 build an ICU collator, which maps ~2 MB of ICU's collation
 * data and code into the router for good (docs/BENCHMARKS.md, issue 14 "Memory").
 */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
