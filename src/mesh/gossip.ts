/**
 * Gossip channels over the router's neighbour connections.
 *
 * Per neighbour connection there is one pending slot per (kind, channel[, source]). New gossip
 * for a slot is MERGED into what is already there, never queued, so a slow neighbour costs
 * at most one pending value per slot, and what it finally receives is the newest state.
 * Slots are flushed in a microtask (so changes made in one event go out as one message) and
 * whenever the connection drains after `send` returned false.
 *
 * Ownership: a GossipData handed to a channel (or returned by a Gossiper) belongs to the hub
 * from then on; the hub may call `merge` on it, which may mutate it. Never hand over live state.
 *
 * Unicast messages cannot be merged: they wait in a bounded queue per neighbour and the oldest
 * is dropped beyond `maxQueuedUnicasts` (gossip is best-effort; senders retry via state).
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { isLoomError, LoomError, toLoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { hopsLeftOf, MAX_CHANNEL_NAME_BYTES, UNICAST_HOP_LIMIT, type GossipUnicastMessage } from './protocol.js';
import type { Routes } from './routes.js';
import type { ControlMessage, GossipChannel, GossipData, Gossiper, ProtocolConnection } from './types.js';

/** What the hub needs from the router. */
export interface GossipHost {
  readonly self: PeerName;
  /** Current routes (recomputed lazily by the router after topology changes). */
  routes(): Routes;
  /** The live connection to a neighbour, or undefined. */
  connectionTo(peer: PeerName): ProtocolConnection | undefined;
  /** Neighbours with a live connection. */
  neighbours(): PeerName[];
}

export interface GossipHubComponents {
  host: GossipHost;
  clock: Clock;
  logger: Logger;
  /** Uniform [0, 1) for anti-entropy jitter; default Math.random. */
  random?: () => number;
}

export interface GossipHubInit {
  /** Full-state exchange with every neighbour (default 30,000 ms). */
  antiEntropyIntervalMs?: number | undefined;
  /** Each period is drawn from interval * [1 - jitter, 1 + jitter] (default 0.1). */
  antiEntropyJitter?: number | undefined;
  /** Default 1,024. */
  maxQueuedUnicasts?: number | undefined;
}

export interface ChannelOptions {
  /**
   * What to do with the part of a neighbour's gossip that was new to us:
   * 'neighbours' (default, as Weave): merge it into every other neighbour's pending gossip;
   * 'broadcast': send it along our own broadcast tree, so each peer receives it about once.
   */
  relayNeighbourGossip?: 'neighbours' | 'broadcast';
  /**
   * Default true: the hub sends the channel's full state to a new neighbour and at every
   * anti-entropy round. False: never; the owner reconciles on its own (the topology exchanges
   * fingerprints and summaries instead, so a 1,000-peer state is not resent every 30 s).
   */
  fullStateExchange?: boolean;
  /**
   * Called for each update about to be relayed along a broadcast tree, once the batch it arrived
   * in has been merged (so routes are current); returns what to relay, or null to drop it.
   */
  beforeRelay?: (update: GossipData) => GossipData | null;
}

/** 'repair' and 'repairState': the topology's digest check and its answer (see topology-repair.ts). */
export type GossipKind = 'neighbour' | 'antiEntropy' | 'broadcast' | 'unicast' | 'repair' | 'repairState';

export interface GossipStats {
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  /** Bytes sent, split by kind (anti-entropy counted apart from change-driven gossip). */
  bytesSentByKind: Record<GossipKind, number>;
  /** Unicasts relayed by us that had no hops left (a routing loop during churn). */
  unicastsDroppedHopLimit: number;
  /** Gossip a Gossiper refused (LoomError) or failed on (anything else); the connection stays. */
  gossipRejected: number;
}

interface PendingSlot {
  kind: GossipKind;
  channel: string;
  src: PeerName | null;
  data: GossipData;
}

type UnicastMessage = GossipUnicastMessage;

interface NeighbourQueue {
  /** Keyed by `${kind}\0${channel}\0${src}`; insertion order is flush order. */
  slots: Map<string, PendingSlot>;
  unicasts: UnicastMessage[];
  blocked: boolean;
  flushScheduled: boolean;
}

interface PendingRelay {
  channel: string;
  src: PeerName;
  update: GossipData;
  from: PeerName | null;
}

interface ChannelEntry {
  gossiper: Gossiper;
  options: ChannelOptions;
  channel: GossipChannel;
}

export class GossipHub {
  private readonly host: GossipHost;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly antiEntropyIntervalMs: number;
  private readonly antiEntropyJitter: number;
  private readonly maxQueuedUnicasts: number;
  private readonly channels = new Map<string, ChannelEntry>();
  private readonly queues = new Map<PeerName, NeighbourQueue>();
  private antiEntropyTimer: TimerHandle | null = null;
  private running = false;
  /**
   * Broadcast relays wait here until the end of the current task: everything delivered in one
   * batch is merged first, then routes are computed once and every relay uses them (with 1,000
   * peers, recomputing routes per message was most of a router's CPU).
   */
  private pendingRelays: PendingRelay[] = [];
  readonly stats: GossipStats = {
    bytesSent: 0,
    bytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    bytesSentByKind: { neighbour: 0, antiEntropy: 0, broadcast: 0, unicast: 0, repair: 0, repairState: 0 },
    unicastsDroppedHopLimit: 0,
    gossipRejected: 0,
  };

  constructor(components: GossipHubComponents, init: GossipHubInit = {}) {
    this.host = components.host;
    this.clock = components.clock;
    this.logger = components.logger.child({ component: 'gossip' });
    this.random = components.random ?? Math.random;
    this.antiEntropyIntervalMs = init.antiEntropyIntervalMs ?? 30_000;
    this.antiEntropyJitter = init.antiEntropyJitter ?? 0.1;
    this.maxQueuedUnicasts = init.maxQueuedUnicasts ?? 1_024;
    if (!(this.antiEntropyIntervalMs > 0) || !(this.antiEntropyJitter >= 0 && this.antiEntropyJitter < 1)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'antiEntropyIntervalMs must be > 0 and antiEntropyJitter in [0, 1)');
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.scheduleAntiEntropy();
  }

  stop(): void {
    this.running = false;
    this.antiEntropyTimer?.cancel();
    this.antiEntropyTimer = null;
    this.queues.clear();
    this.pendingRelays = [];
  }

  newChannel(name: string, gossiper: Gossiper, options: ChannelOptions = {}): GossipChannel {
    if (!name || Buffer.byteLength(name) > MAX_CHANNEL_NAME_BYTES) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `gossip channel name must be 1..${MAX_CHANNEL_NAME_BYTES} bytes`);
    }
    if (this.channels.has(name)) throw new LoomError('ERR_CONFLICT', `gossip channel "${name}" already exists`);
    const channel: GossipChannel = {
      name,
      gossipUnicast: (dst, msg) => this.sendUnicast({ type: 'gossip-unicast', channel: name, src: this.host.self, dst, hopsLeft: UNICAST_HOP_LIMIT, payload: msg }),
      gossipBroadcast: (update) => this.queueRelay(name, this.host.self, update, null),
      gossipNeighbours: (update) => this.toNeighbours('neighbour', name, update, null),
    };
    this.channels.set(name, { gossiper, options, channel });
    return channel;
  }

  /** Number of neighbours with something still to send (0 = quiet). */
  pendingCount(): number {
    let n = 0;
    for (const q of this.queues.values()) if (q.slots.size > 0 || q.unicasts.length > 0) n++;
    return n;
  }

  /** Sends `data` to one neighbour as neighbour gossip, merged in a slot of its own `kind`. */
  gossipTo(peer: PeerName, kind: GossipKind, channel: string, data: GossipData): void {
    this.enqueue(peer, kind, channel, null, data);
  }

  /** A neighbour connection became live: both sides send the full state of every channel. */
  connectionEstablished(peer: PeerName): void {
    this.queues.set(peer, { slots: new Map(), unicasts: [], blocked: false, flushScheduled: false });
    for (const [name, entry] of this.channels) {
      if (entry.options.fullStateExchange === false) continue;
      const full = entry.gossiper.gossip();
      if (full) this.enqueue(peer, 'neighbour', name, null, full);
    }
  }

  connectionClosed(peer: PeerName): void {
    this.queues.delete(peer);
  }

  /** The connection to `peer` can take more: send what is pending. */
  drained(peer: PeerName): void {
    const q = this.queues.get(peer);
    if (!q) return;
    q.blocked = false;
    this.flush(peer);
  }

  /** Counts a gossip message the router handled itself (topology digests and summaries). */
  countReceived(bytes: number): void {
    this.stats.messagesReceived++;
    this.stats.bytesReceived += bytes;
  }

  /**
   * Handles a gossip message from neighbour `from`. Never throws: whatever a Gossiper throws is
   * logged (a LoomError, i.e. bad input, at warn; anything else, i.e. a bug, at error) and the
   * message dropped. The connection stays: one bad payload or one buggy subsystem must not cut
   * the mesh.
   */
  receive(from: PeerName, msg: ControlMessage): void {
    if (msg.type !== 'gossip' && msg.type !== 'gossip-broadcast' && msg.type !== 'gossip-unicast') return;
    this.stats.messagesReceived++;
    this.stats.bytesReceived += msg.payload.length;
    const entry = this.channels.get(msg.channel);
    if (!entry && !(msg.type === 'gossip-unicast' && msg.dst !== this.host.self)) {
      this.logger.debug({ channel: msg.channel, from }, 'gossip for unknown channel dropped');
      return;
    }
    try {
      switch (msg.type) {
        case 'gossip': {
          const news = entry!.gossiper.onGossip(msg.payload);
          if (!news) return;
          if (entry!.options.relayNeighbourGossip === 'broadcast') this.queueRelay(msg.channel, this.host.self, news, from);
          else this.toNeighbours('neighbour', msg.channel, news, from);
          return;
        }
        case 'gossip-broadcast': {
          const news = entry!.gossiper.onGossipBroadcast(msg.src, msg.payload);
          if (news) this.queueRelay(msg.channel, msg.src, news, from);
          return;
        }
        case 'gossip-unicast': {
          if (msg.dst === this.host.self) return entry!.gossiper.onGossipUnicast(msg.src, msg.payload);
          const hopsLeft = hopsLeftOf(msg);
          if (hopsLeft <= 0) {
            this.stats.unicastsDroppedHopLimit++;
            this.logger.debug({ channel: msg.channel, src: msg.src, dst: msg.dst }, 'unicast gossip dropped: hop limit');
            return;
          }
          this.sendUnicast({ ...msg, hopsLeft: hopsLeft - 1 });
          return;
        }
        default: {
          const never: never = msg;
          return never;
        }
      }
    } catch (err) {
      this.stats.gossipRejected++;
      if (isLoomError(err)) {
        this.logger.warn({ channel: msg.channel, from, code: err.code, err: err.message }, 'gossip rejected');
      } else {
        this.logger.error({ channel: msg.channel, from, type: msg.type, err: toLoomError(err).message, stack: err instanceof Error ? err.stack : undefined }, 'gossiper failed on gossip');
      }
    }
  }

  private queueRelay(channel: string, src: PeerName, update: GossipData, from: PeerName | null): void {
    this.pendingRelays.push({ channel, src, update, from });
    if (this.pendingRelays.length === 1) queueMicrotask(() => this.flushRelays());
  }

  private flushRelays(): void {
    const relays = this.pendingRelays;
    this.pendingRelays = [];
    for (const r of relays) {
      const hook = this.channels.get(r.channel)?.options.beforeRelay;
      let update: GossipData | null = r.update;
      try {
        update = hook ? hook(r.update) : r.update;
      } catch (err) {
        this.logger.error({ channel: r.channel, err: toLoomError(err).message }, 'beforeRelay failed; relaying unfiltered');
      }
      if (update) this.relayBroadcast(r.channel, r.src, update, r.from);
    }
  }

  /**
   * Along the source's tree, plus to every neighbour whose connection to us is live but not yet
   * in our topology graph (as Weave's "broadcastAll"). The tree is built from connections both
   * ends have announced; a fresh connection is missing from it for a moment, and views differ:
   * with A-C just up, A may still route C via B while B already sees A-C and leaves C to A, so a
   * tree-only broadcast reaches C only at the next anti-entropy round (up to 30 s; a restarted
   * router's container MACs were missing on one host for that long). Our tree's first hop from
   * ourselves is exactly the neighbours the graph joins to us, so any other live neighbour is
   * told directly; a duplicate is harmless (merged, and relayed only if new).
   */
  private relayBroadcast(channel: string, src: PeerName, update: GossipData, from: PeerName | null): void {
    const routes = this.host.routes();
    for (const hop of routes.broadcastNextHops(src)) {
      if (hop !== from) this.enqueue(hop, 'broadcast', channel, src, update);
    }
    const inGraph = new Set(routes.broadcastNextHops(this.host.self));
    for (const peer of this.host.neighbours()) {
      if (peer !== from && peer !== src && !inGraph.has(peer)) this.enqueue(peer, 'broadcast', channel, src, update);
    }
  }

  private toNeighbours(kind: GossipKind, channel: string, update: GossipData, except: PeerName | null): void {
    for (const peer of this.host.neighbours()) if (peer !== except) this.enqueue(peer, kind, channel, null, update);
  }

  private sendUnicast(msg: UnicastMessage): void {
    const via = this.host.routes().nextHop(msg.dst);
    const q = via === undefined ? undefined : this.queues.get(via);
    if (via === undefined || !q) {
      this.logger.debug({ channel: msg.channel, dst: msg.dst }, 'unicast gossip dropped: no route');
      return;
    }
    if (q.unicasts.length >= this.maxQueuedUnicasts) q.unicasts.shift();
    q.unicasts.push(msg);
    this.scheduleFlush(via, q);
  }

  private enqueue(peer: PeerName, kind: GossipKind, channel: string, src: PeerName | null, data: GossipData): void {
    const q = this.queues.get(peer);
    if (!q) return;
    const key = `${kind}\0${channel}\0${src ?? ''}`;
    const slot = q.slots.get(key);
    if (slot) slot.data = slot.data.merge(data);
    else q.slots.set(key, { kind, channel, src, data });
    this.scheduleFlush(peer, q);
  }

  private scheduleFlush(peer: PeerName, q: NeighbourQueue): void {
    if (q.flushScheduled || q.blocked) return;
    q.flushScheduled = true;
    queueMicrotask(() => {
      q.flushScheduled = false;
      this.flush(peer);
    });
  }

  private flush(peer: PeerName): void {
    const q = this.queues.get(peer);
    const conn = this.host.connectionTo(peer);
    if (!q || !conn || q.blocked) return;
    while (q.unicasts.length > 0) {
      const msg = q.unicasts.shift()!;
      if (!this.transmit(conn, msg, 'unicast', msg.payload.length)) return this.block(q);
    }
    for (const [key, slot] of q.slots) {
      q.slots.delete(key);
      const payload = slot.data.encode();
      const msg: ControlMessage =
        slot.src === null
          ? { type: 'gossip', channel: slot.channel, payload }
          : { type: 'gossip-broadcast', channel: slot.channel, src: slot.src, payload };
      if (!this.transmit(conn, msg, slot.kind, payload.length)) return this.block(q);
    }
  }

  private block(q: NeighbourQueue): void {
    q.blocked = true;
  }

  /** Returns false when the connection is backed up (the message itself was accepted). */
  private transmit(conn: ProtocolConnection, msg: ControlMessage, kind: GossipKind, bytes: number): boolean {
    this.stats.messagesSent++;
    this.stats.bytesSent += bytes;
    this.stats.bytesSentByKind[kind] += bytes;
    return conn.send(msg);
  }

  private scheduleAntiEntropy(): void {
    if (!this.running) return;
    const spread = 1 - this.antiEntropyJitter + 2 * this.antiEntropyJitter * this.random();
    this.antiEntropyTimer = this.clock.setTimeout(() => {
      this.antiEntropy();
      this.scheduleAntiEntropy();
    }, Math.round(this.antiEntropyIntervalMs * spread));
  }

  /** Full state of every channel to every neighbour: repairs whatever a lost or misrouted update left behind. */
  antiEntropy(): void {
    for (const [name, entry] of this.channels) {
      if (entry.options.fullStateExchange === false) continue;
      const full = entry.gossiper.gossip();
      if (full) this.toNeighbours('antiEntropy', name, full, null);
    }
  }
}
