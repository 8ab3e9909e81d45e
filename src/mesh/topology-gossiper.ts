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
 *   such bundles intact;
 * - news about peers that are unreachable after the merge is kept (until the router's GC) but
 *   never passed on: it is a dead peer's entry coming back from a neighbour that has not
 *   dropped it yet, and relaying it would flood the mesh with it once per such neighbour.
 */
import type { PeerName } from '../core/ids.js';
import { Topology, TopologyUpdate } from './topology.js';
import type { PeerEntry } from './topology-entry.js';
import type { GossipData, Gossiper } from './types.js';

/** The router's own gossip channel; no other component may register it. */
export const TOPOLOGY_CHANNEL = 'topology';

export class TopologyGossiper implements Gossiper {
  /** What each update we returned changed, for `beforeRelay` (bundle: built by us from neighbour news). */
  private readonly news = new WeakMap<GossipData, { changed: PeerEntry[]; bundle: boolean }>();

  constructor(
    private readonly topology: Topology,
    /** Called after every merge that changed something (the router recomputes routes). */
    private readonly onChanged: (changed: PeerEntry[], selfBumped: boolean) => void,
    /** Reachability with the current routes; asked only at relay time, once per batch. */
    private readonly isReachable: (peer: PeerName) => boolean = () => true,
  ) {}

  gossip(): GossipData | null {
    return this.topology.fullUpdate();
  }

  onGossip(update: Uint8Array): GossipData | null {
    const changed = this.merge(TopologyUpdate.decode(update));
    if (changed.length === 0) return null;
    const out = new TopologyUpdate([...changed, this.topology.ourEntry]);
    this.news.set(out, { changed, bundle: true });
    return out;
  }

  onGossipBroadcast(_src: PeerName, update: Uint8Array): GossipData | null {
    const received = TopologyUpdate.decode(update);
    const changed = this.merge(received);
    if (changed.length === 0) return null;
    this.news.set(received, { changed, bundle: false });
    return received;
  }

  onGossipUnicast(): void {}

  /** The hub's `beforeRelay`: drops news that is only about unreachable peers (see above). */
  beforeRelay(update: GossipData): GossipData | null {
    const news = this.news.get(update);
    if (!news) return update;
    const live = news.changed.filter((e) => e.name === this.topology.self || this.isReachable(e.name));
    if (live.length === 0) return null;
    if (!news.bundle || live.length === news.changed.length) return update;
    return new TopologyUpdate([...live, this.topology.ourEntry]);
  }

  private merge(update: TopologyUpdate): PeerEntry[] {
    const before = this.topology.ourEntry;
    const changed = this.topology.apply(update.entries.values());
    if (changed.length > 0) this.onChanged(changed, this.topology.ourEntry !== before);
    return changed;
  }
}
