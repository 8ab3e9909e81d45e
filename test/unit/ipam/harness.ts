/**
 * N IPAM instances in one process, wired by an in-memory fake of GossipChannel and MeshView,
 * on a FakeClock, with explicit partitions. Messages go into one FIFO queue and are delivered
 * by `deliverAll` until nothing is left (bounded), so tests are deterministic and need no sleeps.
 *
 * Simplifications against the real router: a broadcast or neighbour gossip reaches every peer
 * of the sender's component directly (no relaying); when components merge, every pair of newly
 * connected peers exchanges full gossip, as the router does on a new connection.
 */
import { FakeClock } from '../../../src/core/clock.js';
import type { PeerName } from '../../../src/core/ids.js';
import { type LogRecord, type Logger, recordingLogger, silentLogger } from '../../../src/core/logger.js';
import type { GossipChannel, GossipData, Gossiper, MeshView } from '../../../src/mesh/types.js';
import { Ipam, type IpamInit } from '../../../src/ipam/ipam.js';
import { MemoryStore } from '../../../src/ipam/store.js';
import type { IpamStore } from '../../../src/ipam/store.js';

export function peerName(i: number): PeerName {
  const hex = i.toString(16).padStart(12, '0');
  return hex.match(/../g)!.join(':') as PeerName;
}

interface Node {
  name: PeerName;
  ipam: Ipam | null;
  store: IpamStore;
  init: IpamInit;
  group: number;
  alive: boolean;
  listeners: Set<() => void>;
}

export class IpamNet {
  readonly clock = new FakeClock();
  readonly nodes = new Map<PeerName, Node>();
  readonly records: LogRecord[] = [];
  delivered = 0;
  private queue: Array<() => void> = [];
  private readonly logger: Logger;

  constructor(opts: { record?: boolean } = {}) {
    this.logger = opts.record ? recordingLogger(this.records) : silentLogger;
  }

  /** Adds and starts a peer in component 0 (or `group`). */
  add(name: PeerName, init: IpamInit, group = 0, store: IpamStore = new MemoryStore()): Ipam {
    const before = this.componentsSnapshot();
    const node: Node = { name, ipam: null, store, init, group, alive: true, listeners: new Set() };
    this.nodes.set(name, node);
    node.ipam = this.build(node);
    node.ipam.start();
    this.topologyChanged(before);
    return node.ipam;
  }

  ipam(name: PeerName): Ipam {
    const n = this.nodes.get(name);
    if (!n?.ipam || !n.alive) throw new Error(`peer ${name} is not running`);
    return n.ipam;
  }

  live(): PeerName[] {
    return [...this.nodes.values()].filter((n) => n.alive).map((n) => n.name).sort();
  }

  /** Stops the peer; its store stays (for `restart`). */
  kill(name: PeerName): void {
    const before = this.componentsSnapshot();
    const n = this.nodes.get(name)!;
    n.ipam?.stop();
    n.ipam = null;
    n.alive = false;
    this.topologyChanged(before);
  }

  /** Starts a new instance over the killed peer's store, as a restarted daemon would. */
  restart(name: PeerName): Ipam {
    const before = this.componentsSnapshot();
    const n = this.nodes.get(name)!;
    n.alive = true;
    n.listeners = new Set();
    n.ipam = this.build(n);
    n.ipam.start();
    this.topologyChanged(before);
    return n.ipam;
  }

  /** Puts each listed peer in the component of its list index; unlisted peers keep theirs. */
  partition(groups: PeerName[][]): void {
    const before = this.componentsSnapshot();
    groups.forEach((g, i) => g.forEach((p) => (this.nodes.get(p)!.group = i)));
    this.topologyChanged(before);
  }

  heal(): void {
    const before = this.componentsSnapshot();
    for (const n of this.nodes.values()) n.group = 0;
    this.topologyChanged(before);
  }

  reachable(from: PeerName): PeerName[] {
    const me = this.nodes.get(from)!;
    if (!me.alive) return [];
    return [...this.nodes.values()].filter((n) => n.alive && n.group === me.group).map((n) => n.name).sort();
  }

  /** Delivers queued messages until none are left. Throws if `limit` deliveries do not suffice. */
  deliverAll(limit = 1_000_000): void {
    let n = 0;
    while (this.queue.length > 0) {
      if (++n > limit) throw new Error('deliverAll: no quiescence within the delivery limit');
      this.queue.shift()!();
      this.delivered++;
    }
  }

  /**
   * Delivers only the messages queued now (one network hop; what they send waits for the next
   * round). With a clock advance per round this models a fixed latency per message. Returns how many.
   */
  deliverRound(): number {
    const round = this.queue;
    this.queue = [];
    for (const deliver of round) deliver();
    this.delivered += round.length;
    return round.length;
  }

  /** Delivers, runs timers for `ms`, delivers again: gossip and advisory stats reach everyone. */
  settle(ms = 10_000): void {
    this.deliverAll();
    for (let t = 0; t < ms; t += 500) {
      this.clock.advance(500);
      this.deliverAll();
    }
  }

  private build(node: Node): Ipam {
    const mesh: MeshView = {
      self: node.name,
      reachablePeers: () => this.reachable(node.name),
      isReachable: (p) => this.reachable(node.name).includes(p),
      nicknameOf: (p) => `host-${p.slice(-2)}`,
      onChange: (l) => {
        node.listeners.add(l);
        return () => node.listeners.delete(l);
      },
    };
    const router = {
      newGossipChannel: (name: string, _gossiper: Gossiper): GossipChannel => this.channel(node, name),
    };
    return new Ipam({ mesh, router, clock: this.clock, logger: this.logger.child({ peer: node.name }), store: node.store }, node.init);
  }

  private channel(node: Node, name: string): GossipChannel {
    const target = (dst: PeerName): Gossiper | null => {
      const n = this.nodes.get(dst);
      return n?.ipam && n.alive ? n.ipam : null;
    };
    return {
      name,
      gossipUnicast: (dst, msg) => {
        if (!node.alive || !this.reachable(node.name).includes(dst)) return;
        const copy = msg.slice();
        this.queue.push(() => {
          if (this.reachable(node.name).includes(dst)) target(dst)?.onGossipUnicast(node.name, copy);
        });
      },
      gossipBroadcast: (update: GossipData) => {
        if (!node.alive) return;
        const bytes = update.encode();
        for (const dst of this.reachable(node.name)) {
          if (dst === node.name) continue;
          this.queue.push(() => {
            if (this.reachable(node.name).includes(dst)) target(dst)?.onGossipBroadcast(node.name, bytes);
          });
        }
      },
      gossipNeighbours: (update: GossipData) => {
        if (!node.alive) return;
        const bytes = update.encode();
        for (const dst of this.reachable(node.name)) {
          if (dst !== node.name) this.queue.push(() => target(dst)?.onGossip(bytes));
        }
      },
    };
  }

  private componentsSnapshot(): Map<PeerName, string> {
    const out = new Map<PeerName, string>();
    for (const n of this.nodes.values()) out.set(n.name, n.alive ? `${n.group}` : 'dead');
    return out;
  }

  /** Notifies every running peer; newly connected pairs exchange full gossip, as on a new connection. */
  private topologyChanged(before: Map<PeerName, string>): void {
    const live = [...this.nodes.values()].filter((n) => n.alive && n.ipam);
    for (const a of live) {
      for (const b of live) {
        if (a === b || a.group !== b.group) continue;
        const wasTogether = before.get(a.name) !== undefined && before.get(a.name) !== 'dead' && before.get(a.name) === before.get(b.name);
        if (wasTogether) continue;
        this.queue.push(() => {
          if (!a.ipam || !b.ipam || a.group !== b.group) return;
          const g = a.ipam.gossip();
          if (g) b.ipam.onGossip(g.encode());
        });
      }
    }
    for (const n of live) for (const l of [...n.listeners]) l();
  }
}
