/**
 * What every part of one peer's IPAM shares: the live ring, the gossip channel, the store, the
 * clock and whether the Ipam runs. The parts (consensus, allocations, waiters, donations, admin,
 * ring gossip, stats) each hold this one object; only `Ipam` (ipam.ts) creates it.
 *
 * Contract kept by every part: a ring change is saved (`saveRing`) before it is broadcast
 * (`broadcastRing`), and nothing reacts to the network or a timer once `running` is false.
 * When the store refuses a save (disk full, read-only: ERR_STORAGE), the ring in memory is ahead
 * of the disk: nothing of it is told (`broadcastRing` and the full state hold back, so no peer
 * learns a change a restart would forget), and the save is retried every `SAVE_RETRY_MS` until
 * the disk takes it, then broadcast. Said once per outage in the log.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { nullEventSink, type EventSink } from '../core/events.js';
import { LoomError, toLoomError } from '../core/errors.js';
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

/** How often an unsaved ring is saved again. */
export const SAVE_RETRY_MS = 5_000;

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
  /** The store's refusal while the ring in memory is not saved (see above), else null. */
  unsavedBecause: LoomError | null = null;
  private saveRetry: TimerHandle | null = null;

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

  /**
   * Writes the ring to the store; returns true once it is durable (store.ts). Never throws: a
   * refusal returns false and leaves the ring unsaved (see above); `unsavedBecause` says why.
   */
  saveRing(): boolean {
    try {
      this.store.saveRing(encodeRing(this.ring));
    } catch (err) {
      const e = toLoomError(err);
      if (this.unsavedBecause === null) this.log.error({ code: e.code, err: e.message }, `cannot save the address ring; it is kept in memory and told to no peer until it is saved (retried every ${SAVE_RETRY_MS / 1000} s)`);
      else this.log.debug({ code: e.code, err: e.message }, 'the address ring is still not saved');
      this.unsavedBecause = e;
      this.scheduleSaveRetry();
      return false;
    }
    if (this.unsavedBecause !== null) {
      this.unsavedBecause = null;
      this.saveRetry?.cancel();
      this.saveRetry = null;
      this.log.warn({}, 'the address ring is saved again; telling peers');
    }
    return true;
  }

  /** ERR_STORAGE (or what the store threw) when the ring is not saved; for callers that must answer. */
  requireSaved(): void {
    if (this.unsavedBecause !== null) throw new LoomError(this.unsavedBecause.code, `${this.unsavedBecause.message}; the change is kept in memory and takes effect once the disk takes it`, { cause: this.unsavedBecause });
  }

  /** Gossips a copy of the ring to every peer (the copy may be merged while pending); nothing while it is not saved. */
  broadcastRing(): void {
    if (this.unsavedBecause !== null) return;
    this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
  }

  /** Cancels the save retry (at stop). */
  stopSaveRetry(): void {
    this.saveRetry?.cancel();
    this.saveRetry = null;
  }

  private scheduleSaveRetry(): void {
    if (this.saveRetry !== null || !this.running) return;
    this.saveRetry = this.clock.setTimeout(() => {
      this.saveRetry = null;
      if (this.running && this.saveRing()) this.broadcastRing();
    }, SAVE_RETRY_MS);
  }

  /** Our space usable for `subnet`: owned pieces clipped to the usable part of range and subnet. */
  ownUsableRuns(subnet: Cidr): Interval[] {
    const r = usableInterval(this.range);
    const s = usableInterval(subnet);
    return clip(this.ring.ownedBy(this.self), { start: Math.max(r.lo, s.lo), end: Math.min(r.hi, s.hi) });
  }
}
