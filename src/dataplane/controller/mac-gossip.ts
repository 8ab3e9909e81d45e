/**
 * The local replica of channel "dataplane" and its Gossiper side.
 *
 * Contracts:
 * - Only this peer writes its own entry (`setLocalMacs`); a change is broadcast at once.
 * - The owner is authoritative: when gossip brings a copy of our own entry that supersedes ours
 *   (we restarted and the mesh still holds the previous run's entry), we re-assert our MACs at a
 *   version above it and broadcast that. Our initial version is the wall clock in ms, so a
 *   restart normally starts above anything the previous run sent and the re-assert is a backstop.
 * - Entries of other peers are kept even while the peer is unreachable (the controller ignores
 *   them then); they are replaced when the peer's newer entry arrives.
 * - `onChange` fires after any change to the replica (local or remote), synchronously.
 */
import { toLoomError } from '../../core/errors.js';
import type { PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { GossipChannel, GossipData, Gossiper } from '../../mesh/types.js';
import { decodeDataplaneGossip, DataplaneGossipData, normaliseMacs, supersedes, type DataplaneEntry } from './gossip-data.js';

export interface MacGossipComponents {
  self: PeerName;
  logger: Logger;
  /** Milliseconds since the epoch, for the initial version; default Date.now. */
  wallClock?: () => number;
}

export class MacGossip implements Gossiper {
  readonly self: PeerName;
  private readonly logger: Logger;
  private readonly state = new DataplaneGossipData();
  private readonly listeners = new Set<() => void>();
  private channel: GossipChannel | null = null;

  constructor(components: MacGossipComponents) {
    this.self = components.self;
    this.logger = components.logger;
    const version = Math.max(1, Math.floor((components.wallClock ?? Date.now)()));
    this.state.offer({ peer: this.self, version, macs: [] });
  }

  /** The channel from `router.newGossipChannel(DATAPLANE_CHANNEL, this)`; without one the replica is local only. */
  attach(channel: GossipChannel): void {
    this.channel = channel;
    this.broadcastOwn();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get own(): DataplaneEntry {
    return this.state.entries.get(this.self)!;
  }

  /** The entry of `peer`, or undefined. */
  entryOf(peer: PeerName): DataplaneEntry | undefined {
    return this.state.entries.get(peer);
  }

  entries(): DataplaneEntry[] {
    return [...this.state.entries.values()];
  }

  /** Replaces our MAC list. No-op (no version bump, no gossip) if it is unchanged. */
  setLocalMacs(macs: Iterable<string>): void {
    const next = normaliseMacs(macs);
    const own = this.own;
    if (next.join(',') === own.macs.join(',')) return;
    this.state.entries.set(this.self, { peer: this.self, version: own.version + 1, macs: next });
    this.broadcastOwn();
    this.changed();
  }

  gossip(): GossipData | null {
    return new DataplaneGossipData(this.state.entries.values());
  }

  onGossip(update: Uint8Array): GossipData | null {
    return this.mergeRemote(update);
  }

  onGossipBroadcast(_src: PeerName, update: Uint8Array): GossipData | null {
    return this.mergeRemote(update);
  }

  onGossipUnicast(): void {
    // The channel has no unicast messages.
  }

  /** Merges received bytes; returns what was new to us. Throws ERR_PROTOCOL (the hub logs and drops it). */
  private mergeRemote(update: Uint8Array): GossipData | null {
    const incoming = decodeDataplaneGossip(update);
    const news: DataplaneEntry[] = [];
    let reassert = false;
    for (const e of incoming.entries.values()) {
      if (e.peer === this.self) {
        if (supersedes(e, this.own)) reassert = true;
        continue;
      }
      if (this.state.offer(e)) news.push(e);
    }
    if (reassert) {
      const own = this.own;
      const seen = incoming.entries.get(this.self)!;
      this.state.entries.set(this.self, { peer: this.self, version: seen.version + 1, macs: own.macs });
      this.logger.info({ version: seen.version + 1 }, 'dataplane: re-asserting our MAC list over a stale copy');
      this.broadcastOwn();
    }
    if (news.length > 0) this.changed();
    return news.length > 0 ? new DataplaneGossipData(news) : null;
  }

  private broadcastOwn(): void {
    this.channel?.gossipBroadcast(new DataplaneGossipData([this.own]));
  }

  private changed(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.logger.error({ err: toLoomError(err).message }, 'dataplane gossip listener failed');
      }
    }
  }
}
