/**
 * The topology as a Gossiper on the internal "topology" channel.
 *
 * Changes spread along broadcast trees, so each peer receives each change about once:
 * - our own entry changes are broadcast from us (the router does that);
 * - news learnt from a neighbour's full state (new connection, anti-entropy) is re-broadcast
 *   from us, bundled with our own entry, so that a new peer and the connection that makes it
 *   reachable always arrive together (else a receiver could garbage-collect the new peer as
 *   unreachable before the connection to it is known);
 * - a broadcast that brought anything new is relayed whole along the source's tree, keeping
 *   such bundles intact.
 */
import type { PeerName } from '../core/ids.js';
import { Topology, TopologyUpdate } from './topology.js';
import type { PeerEntry } from './topology-entry.js';
import type { GossipData, Gossiper } from './types.js';

export class TopologyGossiper implements Gossiper {
  constructor(
    private readonly topology: Topology,
    /** Called after every merge that changed something (the router recomputes routes). */
    private readonly onChanged: (changed: PeerEntry[], selfBumped: boolean) => void,
  ) {}

  gossip(): GossipData | null {
    return this.topology.fullUpdate();
  }

  onGossip(update: Uint8Array): GossipData | null {
    const changed = this.merge(TopologyUpdate.decode(update));
    if (changed.length === 0) return null;
    return new TopologyUpdate([...changed, this.topology.ourEntry]);
  }

  onGossipBroadcast(_src: PeerName, update: Uint8Array): GossipData | null {
    const received = TopologyUpdate.decode(update);
    const changed = this.merge(received);
    return changed.length === 0 ? null : received;
  }

  onGossipUnicast(): void {}

  private merge(update: TopologyUpdate): PeerEntry[] {
    const before = this.topology.ourEntry;
    const changed = this.topology.apply(update.entries.values());
    if (changed.length > 0) this.onChanged(changed, this.topology.ourEntry !== before);
    return changed;
  }
}
