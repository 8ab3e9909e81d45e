import type { GossipData } from '../mesh/types.js';
import type { Ring } from './ring.js';
import { encodeRing } from './ring-codec.js';

/**
 * The ring as gossip. Holds its own copy, so the router may keep it pending and merge into it
 * without touching the live ring. A merge with anything that is not a ring of the same range
 * and seeds keeps this one unchanged (the receiving peer reports such conflicts).
 */
export class RingGossipData implements GossipData {
  constructor(readonly ring: Ring) {}

  encode(): Uint8Array {
    return encodeRing(this.ring);
  }

  merge(other: GossipData): GossipData {
    if (other instanceof RingGossipData) {
      try {
        this.ring.merge(other.ring);
      } catch {
        // Conflicting rings are reported where they are received; keep ours for sending.
      }
    }
    return this;
  }
}
