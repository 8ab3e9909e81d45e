/**
 * An in-memory mesh for DNS record stores: N peers, full mesh, a fixed per-message latency on a
 * FakeClock, and partitions. Broadcasts and neighbour gossip are delivered only if the two peers
 * can still reach each other when the message lands. `connectAll` plays what the router does on a
 * new connection: both sides send their complete state.
 */
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { PeerName } from '../../../src/core/ids.js';
import type { GossipChannel, GossipData, MeshView } from '../../../src/mesh/types.js';
import { DnsRecordStore, type DnsStoreInit } from '../../../src/dns/store.js';

export interface FakePeer {
  readonly name: PeerName;
  readonly mesh: MeshView;
  store: DnsRecordStore;
}

export function peerName(i: number): PeerName {
  return `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}` as PeerName;
}

export class FakeDnsMesh {
  readonly clock = new FakeClock();
  readonly peers: FakePeer[] = [];
  /** Messages scheduled but not yet delivered or dropped. */
  inFlight = 0;
  delivered = 0;
  private readonly groupOf = new Map<PeerName, number>();
  private readonly listeners = new Set<() => void>();

  constructor(
    count: number,
    private readonly latencyMs = 5,
    private readonly storeInit: DnsStoreInit = {},
  ) {
    for (let i = 0; i < count; i++) {
      const name = peerName(i + 1);
      const mesh: MeshView = {
        self: name,
        reachablePeers: () => this.peers.filter((p) => this.canReach(name, p.name)).map((p) => p.name),
        isReachable: (peer) => this.canReach(name, peer),
        nicknameOf: () => undefined,
        onChange: (listener) => {
          this.listeners.add(listener);
          return () => this.listeners.delete(listener);
        },
      };
      const peer: FakePeer = { name, mesh, store: this.newStore(mesh) };
      this.peers.push(peer);
    }
  }

  peer(i: number): FakePeer {
    const p = this.peers[i];
    if (!p) throw new Error(`no peer ${i}`);
    return p;
  }

  /** Replaces a peer's store with an empty one (a daemon restart that lost its state). */
  restart(i: number): DnsRecordStore {
    const p = this.peer(i);
    p.store = this.newStore(p.mesh);
    return p.store;
  }

  canReach(a: PeerName, b: PeerName): boolean {
    return a === b || (this.groupOf.get(a) ?? 0) === (this.groupOf.get(b) ?? 0);
  }

  /** Peers in different groups cannot reach each other; peers not listed stay in group 0. */
  partition(groups: number[][]): void {
    this.groupOf.clear();
    groups.forEach((members, g) => members.forEach((i) => this.groupOf.set(this.peer(i).name, g + 1)));
    this.notify();
  }

  /** Everyone reachable again; every pair exchanges complete state, as on reconnection. */
  heal(): void {
    this.groupOf.clear();
    this.notify();
    this.connectAll();
  }

  connectAll(): void {
    for (const src of this.peers) {
      const full = src.store.gossip();
      if (full) this.sendNeighbours(src, full);
    }
  }

  /** Delivers until nothing is in flight; bounded by `limitMs` of fake time. */
  settle(limitMs = 60_000): boolean {
    return this.clock.runUntil(() => this.inFlight === 0, limitMs);
  }

  private newStore(mesh: MeshView): DnsRecordStore {
    const store = new DnsRecordStore({ mesh, clock: this.clock, logger: silentLogger }, this.storeInit);
    const src = () => this.peers.find((p) => p.mesh === mesh)!;
    const channel: GossipChannel = {
      name: 'dns',
      gossipUnicast: () => {},
      gossipBroadcast: (update) => this.sendBroadcast(src(), update),
      gossipNeighbours: (update) => this.sendNeighbours(src(), update),
    };
    store.attach(channel);
    return store;
  }

  private sendBroadcast(src: FakePeer, update: GossipData): void {
    const bytes = update.encode();
    for (const dst of this.peers) {
      if (dst === src || !this.canReach(src.name, dst.name)) continue;
      this.deliver(src, dst, () => dst.store.onGossipBroadcast(src.name, bytes));
    }
  }

  private sendNeighbours(src: FakePeer, update: GossipData): void {
    const bytes = update.encode();
    for (const dst of this.peers) {
      if (dst === src || !this.canReach(src.name, dst.name)) continue;
      this.deliver(src, dst, () => {
        const news = dst.store.onGossip(bytes);
        if (news) this.sendNeighbours(dst, news);
      });
    }
  }

  private deliver(src: FakePeer, dst: FakePeer, receive: () => void): void {
    this.inFlight++;
    this.clock.setTimeout(() => {
      this.inFlight--;
      if (!this.canReach(src.name, dst.name)) return;
      this.delivered++;
      receive();
    }, this.latencyMs);
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}
