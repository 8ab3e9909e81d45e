/**
 * A short fingerprint of a whole topology, for the repair check: after a burst of changes a
 * router sends its fingerprint to each neighbour; a neighbour whose own differs answers with
 * its full state. In the common case (trees delivered everything) this costs 10 bytes per
 * neighbour per burst instead of a full state, so change-driven gossip stays O(changes).
 *
 *   u8 format (2)   8B first bytes of SHA-256 over the sorted "name/uid/version" list
 */
import { createHash } from 'node:crypto';
import { LoomError } from '../core/errors.js';
import type { PeerEntry } from './topology-entry.js';
import type { GossipData } from './types.js';

export const DIGEST_FORMAT = 2;
const HASH_BYTES = 8;

export function topologyHash(entries: Iterable<PeerEntry>): Uint8Array {
  const lines = [...entries].map((e) => `${e.name}/${e.uid}/${e.version}`).sort();
  return new Uint8Array(createHash('sha256').update(lines.join('\n')).digest().subarray(0, HASH_BYTES));
}

export function isDigest(payload: Uint8Array): boolean {
  return payload[0] === DIGEST_FORMAT;
}

/** The hash in a digest payload; throws ERR_PROTOCOL when malformed. */
export function decodeDigest(payload: Uint8Array): Uint8Array {
  if (payload.length !== 1 + HASH_BYTES || payload[0] !== DIGEST_FORMAT) throw new LoomError('ERR_PROTOCOL', 'malformed topology digest');
  return payload.subarray(1);
}

export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Pending digest for one neighbour: only the newest matters. */
export class TopologyDigest implements GossipData {
  constructor(readonly hash: Uint8Array) {}
  encode(): Uint8Array {
    const out = new Uint8Array(1 + HASH_BYTES);
    out[0] = DIGEST_FORMAT;
    out.set(this.hash, 1);
    return out;
  }
  /** The newest digest wins; a summary (topology-summary.ts) in the same slot replaces it. */
  merge(other: GossipData): GossipData {
    return other;
  }
}
