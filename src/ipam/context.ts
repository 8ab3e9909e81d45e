/**
 * What every part of one peer's IPAM shares: the live ring, the gossip channel, the store, the
 * clock and whether the Ipam runs. The parts (consensus, allocations, waiters, donations, admin,
 * ring gossip, stats) each hold this one object; only `Ipam` (ipam.ts) creates it.
 *
 * Contract kept by every part: a ring change is saved (`saveRing`) before it is broadcast
 * (`broadcastRing`), and nothing reacts to the network or a timer once `running` is false.
 */
import type { Clock } from '../core/clock.js';
import { nullEventSink, type EventSink } from '../core/events.js';
import { LoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { GossipChannel, MeshView } from '../mesh/types.js';
import { type Cidr, usableInterval } from './cidr.js';
import type { IpamComponents, IpamSettings } from './config.js';
import { RingGossipData } from './gossip-data.js';
import { type Interval, Ring } from './ring.js';
import { encodeRing } from './ring-codec.js';
import { clip } from './space.js';
import type { IpamStore } from './store.js';

export class IpamContext {
  readonly mesh: MeshView;
  readonly clock: Clock;
  readonly log: Logger;
  readonly events: EventSink;
  readonly store: IpamStore;
  readonly range: Cidr;
  /** Replaced once, at start, by the saved ring; every part reads it through the context. */
  ring: Ring;
  /** Null until `Ipam.openChannel`; sends before then go nowhere (gossip repeats the state). */
  channel: GossipChannel | null = null;
  running = false;

  constructor(
    components: IpamComponents,
    readonly settings: IpamSettings,
  ) {
    this.mesh = components.mesh;
    this.clock = components.clock;
    this.store = components.store;
    this.log = components.logger.child({ component: 'ipam' });
    this.events = components.events ?? nullEventSink;
    this.range = settings.range;
    this.ring = new Ring(settings.range);
  }

  get self(): PeerName {
    return this.mesh.self;
  }

  requireRunning(): void {
    if (!this.running) throw new LoomError('ERR_UNAVAILABLE', 'ipam is not running');
  }

  /** Writes the ring to the store; returns once it is durable (store.ts). */
  saveRing(): void {
    this.store.saveRing(encodeRing(this.ring));
  }

  /** Gossips a copy of the ring to every peer (the copy may be merged while pending). */
  broadcastRing(): void {
    this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
  }

  /** Our space usable for `subnet`: owned pieces clipped to the usable part of range and subnet. */
  ownUsableRuns(subnet: Cidr): Interval[] {
    const r = usableInterval(this.range);
    const s = usableInterval(subnet);
    return clip(this.ring.ownedBy(this.self), { start: Math.max(r.lo, s.lo), end: Math.min(r.hi, s.hi) });
  }
}
