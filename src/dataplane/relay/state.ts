/**
 * What the relay's parts share: who we are, the neighbours, routes, counters and the send side.
 * One instance per Relay, created by it and handed to each part (receive, probes, device egress,
 * the VXLAN-port path); the parts never find each other any other way.
 */
import type { Clock } from '../../core/clock.js';
import { peerNameFromBytes, peerNameToBytes, type PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { NeighbourState } from './neighbour.js';
import { zeroCounters, zeroDrops } from './stats.js';
import { Transmitter } from './transmit.js';
import { peerKeyOf, type DropReason } from './wire.js';

/** Routes are looked up once per destination and cached; the cache is cleared when it grows past this. */
const ROUTE_CACHE_LIMIT = 4096;

export class RelayState {
  readonly selfKey: number;
  readonly selfBytes: Buffer;
  readonly counters = zeroCounters();
  readonly drops = zeroDrops();
  readonly neighbours = new Map<PeerName, NeighbourState>();
  readonly neighboursByKey = new Map<number, NeighbourState>();
  /** Destination key -> neighbour to send through, or null for "no route". */
  private readonly routeCache = new Map<number, NeighbourState | null>();
  nextHop: (destination: PeerName) => PeerName | undefined;
  readonly transmitter: Transmitter;

  constructor(
    readonly self: PeerName,
    readonly encrypt: boolean,
    readonly clock: Clock,
    readonly logger: Logger,
  ) {
    this.selfKey = peerKeyOf(self);
    this.selfBytes = Buffer.from(peerNameToBytes(self));
    this.nextHop = (destination) => (this.neighbours.has(destination) ? destination : undefined);
    this.transmitter = new Transmitter({
      encrypt,
      selfBytes: this.selfBytes,
      counters: this.counters,
      drop: this.drop,
      logger,
      onTooBig: (ip, port, size) => this.onTooBig(ip, port, size),
    });
  }

  readonly drop = (reason: DropReason, count = 1): void => {
    this.drops[reason] += count;
  };

  /** Set by the prober: a send of `size` underlay bytes to ip:port was refused as too big. */
  onTooBig: (ip: number, port: number, size: number) => void = () => undefined;

  clearRoutes(): void {
    this.routeCache.clear();
  }

  /** The neighbour to send a frame for `destinationKey` through, or null. `bytes[offset..+6]` is its name. */
  route(destinationKey: number, bytes: Uint8Array, offset: number): NeighbourState | null {
    const cached = this.routeCache.get(destinationKey);
    if (cached !== undefined) return cached;
    const destination = peerNameFromBytes(bytes.subarray(offset, offset + 6));
    let hop: PeerName | undefined;
    try {
      hop = this.nextHop(destination);
    } catch (err) {
      this.logger.warn({ err, destination }, 'route lookup threw; treating as no route');
    }
    const next = hop === undefined ? null : (this.neighbours.get(hop) ?? null);
    if (this.routeCache.size >= ROUTE_CACHE_LIMIT) this.routeCache.clear();
    this.routeCache.set(destinationKey, next);
    return next;
  }

  /** The neighbour whose data address is ip:port, or undefined (slow path: drops and errors only). */
  neighbourAt(ip: number, port: number): NeighbourState | undefined {
    for (const n of this.neighbours.values()) if (n.ipNumber === ip && n.address.port === port) return n;
    return undefined;
  }
}
