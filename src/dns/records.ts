/**
 * The replicated DNS records: a state-based CRDT (a map of last-writer-wins registers).
 *
 * Key: (origin peer, container, address, name). Each key holds one version and a live/tombstone
 * flag. Order per key: greater version wins; at equal versions a tombstone beats a live record.
 * Two copies with the same key and version and flag are identical, so merge (keep the greater per
 * key) is commutative, associative and idempotent. Only the origin peer bumps versions of its keys
 * (see store.ts for the rule that keeps it authoritative across restarts).
 */
import type { GossipData } from '../mesh/types.js';
import { LoomError } from '../core/errors.js';
import { encodeRecords } from './codec.js';
import type { DnsRecord } from './record.js';

export type { DnsRecord };

export const MAX_VERSION = 0xffff_ffff;

export function recordKey(r: Pick<DnsRecord, 'origin' | 'containerId' | 'address' | 'name'>): string {
  return `${r.origin}|${r.containerId}|${r.address}|${r.name}`;
}

/** True when `a` should replace `b` (same key assumed). */
export function supersedes(a: DnsRecord, b: DnsRecord): boolean {
  return a.version > b.version || (a.version === b.version && a.tombstone && !b.tombstone);
}

/** A set of records, at most one per key: the gossip payload of the "dns" channel. */
export class RecordSet implements GossipData {
  readonly entries = new Map<string, DnsRecord>();

  constructor(records: Iterable<DnsRecord> = []) {
    for (const r of records) this.mergeRecord(r);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Keeps `r` if it supersedes what we hold for its key; returns whether anything changed. */
  mergeRecord(r: DnsRecord): boolean {
    const key = recordKey(r);
    const current = this.entries.get(key);
    if (current && !supersedes(r, current)) return false;
    this.entries.set(key, r);
    return true;
  }

  /** Mutates and returns this. */
  merge(other: GossipData): RecordSet {
    if (!(other instanceof RecordSet)) throw new LoomError('ERR_INTERNAL', 'dns: cannot merge foreign gossip data');
    for (const r of other.entries.values()) this.mergeRecord(r);
    return this;
  }

  encode(): Uint8Array {
    return encodeRecords(this.entries.values(), this.entries.size);
  }

  records(): IterableIterator<DnsRecord> {
    return this.entries.values();
  }
}
