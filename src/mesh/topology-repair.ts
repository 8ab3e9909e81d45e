/**
 * Topology repair: how two neighbours find and fix a difference between their topologies without
 * sending full states. Broadcast trees computed from views that differ during churn can miss a
 * peer, so after every burst of changes (and every anti-entropy interval) we send our
 * fingerprint (topology-digest.ts) to each neighbour; one whose fingerprint differs answers
 * with a summary (topology-summary.ts, 18 B per entry), and the two then exchange only the
 * entries that differ. A new connection starts with summaries both ways, so a joiner receives
 * the full state once and two peers that already agree exchange 18 B per entry.
 *
 * Contract with the router:
 * - all sends go through the gossip hub as kind 'repair' (digest, summary) or 'repairState' (the
 *   entries a neighbour lacks) on the topology channel, so pending ones merge per neighbour;
 * - `receive` takes every payload of the topology channel and handles digests and summaries
 *   itself; it returns false for anything else (an update: the hub's job);
 * - no timer is armed and nothing is sent by a timer while the router is not running; `stop`
 *   cancels both timers. Bad digests and summaries are logged and ignored.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { toLoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { GossipHub } from './gossip.js';
import { type Topology, TopologyUpdate } from './topology.js';
import { decodeDigest, isDigest, sameHash, topologyHash, TopologyDigest } from './topology-digest.js';
import { TOPOLOGY_CHANNEL } from './topology-gossiper.js';
import { entriesNewerThan, isSummary, summaryHasNews, TopologySummary } from './topology-summary.js';

/** What repair needs from the router. */
export interface TopologyRepairHost {
  /** The router's topology; repair only reads it. */
  readonly topology: Topology;
  /** Neighbours with a live connection. */
  neighbours(): Iterable<PeerName>;
  isRunning(): boolean;
}

export interface TopologyRepairComponents {
  host: TopologyRepairHost;
  gossip: Pick<GossipHub, 'gossipTo' | 'countReceived'>;
  clock: Clock;
  logger: Logger;
  /** Uniform [0, 1) for the timers' jitter. */
  random: () => number;
}

export interface TopologyRepairInit {
  /** Delay after a topology change before the fingerprint check (default 1,000 ms, +0-50 % jitter). */
  repairDelayMs?: number | undefined;
  /** Fingerprints to every neighbour every interval (default 30,000 ms, ±`antiEntropyJitter`, default 10 %). */
  antiEntropyIntervalMs?: number | undefined;
  antiEntropyJitter?: number | undefined;
}

export class TopologyRepair {
  private readonly host: TopologyRepairHost;
  private readonly gossip: TopologyRepairComponents['gossip'];
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly init: TopologyRepairInit;
  private cachedHash: { at: number; hash: Uint8Array } | null = null;
  private repairTimer: TimerHandle | null = null;
  private antiEntropyTimer: TimerHandle | null = null;

  constructor(components: TopologyRepairComponents, init: TopologyRepairInit) {
    this.host = components.host;
    this.gossip = components.gossip;
    this.clock = components.clock;
    this.logger = components.logger;
    this.random = components.random;
    this.init = init;
  }

  /** Starts the anti-entropy timer (call once the router runs). */
  start(): void {
    this.scheduleAntiEntropy();
  }

  stop(): void {
    this.repairTimer?.cancel();
    this.antiEntropyTimer?.cancel();
  }

  /** A connection to `peer` became live: summaries both ways, then each side sends what the other lacks. */
  connectionEstablished(peer: PeerName): void {
    this.gossip.gossipTo(peer, 'repair', TOPOLOGY_CHANNEL, TopologySummary.of(this.host.topology.view().values(), false));
  }

  /** Once per burst of topology changes: a fingerprint check with every neighbour, after a delay. */
  topologyChanged(): void {
    this.scheduleRepair();
  }

  /**
   * A payload of the topology channel from neighbour `peer`: handles a digest or a summary and
   * returns true; returns false for anything else.
   */
  receive(peer: PeerName, payload: Uint8Array): boolean {
    if (isDigest(payload)) {
      this.gossip.countReceived(payload.length);
      this.onDigest(peer, payload);
      return true;
    }
    if (isSummary(payload)) {
      this.gossip.countReceived(payload.length);
      this.onSummary(peer, payload);
      return true;
    }
    return false;
  }

  /** Our topology's hash for the repair check, recomputed only after a change. */
  private fingerprint(): { hash: Uint8Array } {
    const topology = this.host.topology;
    const at = topology.changeCount;
    if (this.cachedHash?.at !== at) this.cachedHash = { at, hash: topologyHash(topology.view().values()) };
    return this.cachedHash;
  }

  private scheduleRepair(): void {
    if (this.repairTimer || !this.host.isRunning()) return;
    const base = this.init.repairDelayMs ?? 1_000;
    this.repairTimer = this.clock.setTimeout(() => {
      this.repairTimer = null;
      if (this.host.isRunning()) this.sendFingerprints();
    }, Math.round(base * (1 + this.random() / 2)));
  }

  /** Topology anti-entropy: fingerprints (not full states) to every neighbour, every interval. */
  private scheduleAntiEntropy(): void {
    if (!this.host.isRunning()) return;
    const interval = this.init.antiEntropyIntervalMs ?? 30_000;
    const jitter = this.init.antiEntropyJitter ?? 0.1;
    this.antiEntropyTimer = this.clock.setTimeout(() => {
      this.sendFingerprints();
      this.scheduleAntiEntropy();
    }, Math.round(interval * (1 - jitter + 2 * jitter * this.random())));
  }

  private sendFingerprints(): void {
    const digest = new TopologyDigest(this.fingerprint().hash);
    for (const peer of this.host.neighbours()) this.gossip.gossipTo(peer, 'repair', TOPOLOGY_CHANNEL, digest);
  }

  private onDigest(peer: PeerName, payload: Uint8Array): void {
    let theirs: Uint8Array;
    try {
      theirs = decodeDigest(payload);
    } catch (err) {
      this.logger.warn({ peer, err: toLoomError(err).message }, 'bad topology digest');
      return;
    }
    if (sameHash(theirs, this.fingerprint().hash)) return;
    this.gossip.gossipTo(peer, 'repair', TOPOLOGY_CHANNEL, TopologySummary.of(this.host.topology.view().values(), false));
    this.scheduleRepair();
  }

  /** Sends the entries the neighbour lacks; answers a request with our summary if it has news for us. */
  private onSummary(peer: PeerName, payload: Uint8Array): void {
    const topology = this.host.topology;
    let theirs: TopologySummary;
    try {
      theirs = TopologySummary.decode(payload);
    } catch (err) {
      this.logger.warn({ peer, err: toLoomError(err).message }, 'bad topology summary');
      return;
    }
    const delta = entriesNewerThan(topology.view().values(), theirs);
    if (delta.length > 0) this.gossip.gossipTo(peer, 'repairState', TOPOLOGY_CHANNEL, new TopologyUpdate(delta));
    if (!theirs.reply && summaryHasNews(topology.view(), theirs)) {
      this.gossip.gossipTo(peer, 'repair', TOPOLOGY_CHANNEL, TopologySummary.of(topology.view().values(), true));
    }
  }
}
