/**
 * The router: one per host. Accepts and dials streams, runs the handshake, keeps at most one
 * connection per peer, publishes our connections in the topology, computes routes and carries
 * gossip for every channel.
 *
 * Duplicates: when a second connection to a peer completes, both ends keep the one dialled by
 * the peer with the smaller name and close the other with goodbye "duplicate". Both ends apply
 * the same rule to the same two connections, so they agree without another round trip, and the
 * loser's target counts as satisfied, so nobody redials: no flapping.
 *
 * Dials and handshakes in progress are connection-attempts.ts. After each burst of topology
 * changes the router garbage-collects unreachable peers and hands on to peer-discovery.ts (new
 * dial targets) and topology-repair.ts (fingerprint checks with neighbours). router-status.ts
 * builds the status snapshot and describes the connection states.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { hostOf, parsePeerHostPort } from './address.js';
import type { BackoffOptions } from './backoff.js';
import type { HandshakeThrottleOptions } from './handshake-throttle.js';
import { ConnectionAttempts } from './connection-attempts.js';
import { ConnectionMaker } from './connection-maker.js';
import { GossipHub, type ChannelOptions, type GossipStats } from './gossip.js';
import { PeerDiscovery } from './peer-discovery.js';
import { Routes } from './routes.js';
import { routerStatus } from './router-status.js';
import { Topology, TopologyUpdate } from './topology.js';
import { TOPOLOGY_CHANNEL, TopologyGossiper } from './topology-gossiper.js';
import { TopologyRepair } from './topology-repair.js';
import type {
  GossipChannel,
  Gossiper,
  MeshView,
  ProtocolConnection,
  RouterApi,
  RouterInit,
  RouterStatus,
  Transport,
} from './types.js';

export { TOPOLOGY_CHANNEL } from './topology-gossiper.js';

export interface RouterComponents {
  transport: Transport;
  clock?: Clock;
  logger?: Logger;
  /** Uniform [0, 1) for jitter and discovery order; default Math.random. */
  random?: () => number;
}

export interface RouterOptions extends RouterInit {
  /** Passed to establishConnection (defaults there: 5,000 / 1,000 / 5,000 ms). */
  handshakeTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** Reconnect backoff (defaults in backoff.ts: 1 s base, 60 s cap, full jitter). */
  backoff?: BackoffOptions;
  /** Inbound handshake throttling per source address (defaults in handshake-throttle.ts). */
  handshakeThrottle?: HandshakeThrottleOptions;
  /** Redialling a peer whose connection just ended (defaults in connection-maker.ts: within 10 min, at most every 500 ms). */
  reconnect?: { capMs?: number; windowMs?: number };
  /** Full-state gossip to neighbours (default 30,000 ms, ±10 % jitter). */
  antiEntropyIntervalMs?: number;
  antiEntropyJitter?: number;
  /** Delay that coalesces topology changes before discovery dials (default 200 ms). */
  discoveryDelayMs?: number;
  /** Delay after a topology change before the digest check with neighbours (default 1,000 ms, +0-50 % jitter). */
  repairDelayMs?: number;
}

interface LiveConnection {
  conn: ProtocolConnection;
  peer: PeerName;
  /** Dialable address of the peer: its IP as we see it + the listen port from its hello. */
  address: string;
}

export class Router implements RouterApi {
  readonly mesh: MeshView;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly options: RouterOptions;
  private readonly topology: Topology;
  private readonly gossip: GossipHub;
  private readonly maker: ConnectionMaker;
  private readonly attempts: ConnectionAttempts;
  private readonly discovery: PeerDiscovery;
  private readonly repair: TopologyRepair;
  private readonly topologyChannel: GossipChannel;
  private readonly live = new Map<PeerName, LiveConnection>();
  private readonly listeners = new Set<() => void>();
  private cachedRoutes: Routes;
  private afterChangeScheduled = false;
  private terminations = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(components: RouterComponents, init: RouterOptions) {
    if (!Number.isInteger(init.port) || init.port < 1 || init.port > 65535) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `router port must be 1..65535, got ${String(init.port)}`);
    }
    if (init.connLimit !== undefined && !(Number.isInteger(init.connLimit) && init.connLimit >= 0)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'connLimit must be a non-negative integer');
    }
    this.transport = components.transport;
    this.clock = components.clock ?? systemClock;
    this.options = init;
    this.logger = (components.logger ?? silentLogger).child({ component: 'router', peer: init.identity.name });
    this.topology = new Topology(init.identity);
    this.cachedRoutes = new Routes(this.self, this.topology.graph);
    const random = components.random ?? Math.random;
    this.gossip = new GossipHub(
      {
        host: {
          self: this.self,
          routes: () => this.routes(),
          connectionTo: (peer) => this.live.get(peer)?.conn,
          neighbours: () => [...this.live.keys()],
        },
        clock: this.clock,
        logger: this.logger,
        random,
      },
      { antiEntropyIntervalMs: init.antiEntropyIntervalMs, antiEntropyJitter: init.antiEntropyJitter },
    );
    const topologyGossiper = new TopologyGossiper(
      this.topology,
      (_changed, selfBumped) => {
        this.topologyChanged();
        if (selfBumped) this.topologyChannel.gossipBroadcast(new TopologyUpdate([this.topology.ourEntry]));
      },
      (peer) => this.routes().isReachable(peer),
    );
    this.topologyChannel = this.gossip.newChannel(TOPOLOGY_CHANNEL, topologyGossiper, {
      relayNeighbourGossip: 'broadcast',
      fullStateExchange: false,
      beforeRelay: (update) => topologyGossiper.beforeRelay(update),
    });
    this.maker = new ConnectionMaker(
      {
        clock: this.clock,
        logger: this.logger,
        random,
        dial: (address) => this.attempts.dial(address),
        connectionCount: () => this.live.size + this.attempts.inboundCount(),
        isConnectedTo: (peer) => this.live.has(peer),
      },
      { discovery: init.discovery, connLimit: init.connLimit, backoff: init.backoff, reconnect: init.reconnect },
    );
    const isRunning = (): boolean => this.state === 'running';
    this.attempts = new ConnectionAttempts(
      {
        host: { isRunning, liveCount: () => this.live.size, adopt: (conn, target) => this.adopt(conn, target) },
        transport: this.transport,
        maker: this.maker,
        clock: this.clock,
        logger: this.logger,
      },
      init,
    );
    this.discovery = new PeerDiscovery(
      {
        host: {
          self: this.self,
          topology: this.topology,
          routes: () => this.routes(),
          isConnectedTo: (peer) => this.live.has(peer),
          isRunning,
        },
        maker: this.maker,
        clock: this.clock,
      },
      { discoveryDelayMs: init.discoveryDelayMs },
    );
    this.repair = new TopologyRepair(
      {
        host: { topology: this.topology, neighbours: () => this.live.keys(), isRunning },
        gossip: this.gossip,
        clock: this.clock,
        logger: this.logger,
        random,
      },
      { repairDelayMs: init.repairDelayMs, antiEntropyIntervalMs: init.antiEntropyIntervalMs, antiEntropyJitter: init.antiEntropyJitter },
    );
    this.mesh = {
      self: this.self,
      reachablePeers: () => [...this.routes().reachable].sort(),
      isReachable: (peer) => this.routes().isReachable(peer),
      nicknameOf: (peer) => this.topology.get(peer)?.nickname,
      onChange: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
    };
  }

  get self(): PeerName {
    return this.options.identity.name;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    await this.transport.listen((stream) => this.attempts.accept(stream));
    this.gossip.start();
    this.repair.start();
    this.connect(this.options.peers ?? []);
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.maker.stop();
    this.gossip.stop();
    this.discovery.stop();
    this.repair.stop();
    for (const { conn } of [...this.live.values()]) conn.close('shutdown');
    this.live.clear();
    await this.transport.close();
  }

  connect(addresses: string[]): void {
    const parsed = addresses.map((a) => parsePeerHostPort(a, this.options.port));
    if (this.state === 'stopped') return;
    this.maker.addTargets(parsed);
  }

  forget(addresses: string[]): void {
    this.maker.forget(addresses.map((a) => parsePeerHostPort(a, this.options.port)));
  }

  newGossipChannel(name: string, gossiper: Gossiper, options?: ChannelOptions): GossipChannel {
    if (name === TOPOLOGY_CHANNEL) throw new LoomError('ERR_CONFLICT', `gossip channel "${name}" is reserved`);
    return this.gossip.newChannel(name, gossiper, options);
  }

  connectionTo(peer: PeerName): ProtocolConnection | undefined {
    return this.live.get(peer)?.conn;
  }

  /** Neighbours with pending gossip; 0 means nothing waits to be sent (for simulations). */
  pendingGossip(): number {
    return this.gossip.pendingCount();
  }

  /** Handshakes in progress (for simulations). */
  handshakesInProgress(): number {
    return this.attempts.size;
  }

  gossipStats(): Readonly<GossipStats> {
    return this.gossip.stats;
  }

  /** Fingerprint of our topology's (name, uid, version) tuples; equal across routers = same topology. For convergence checks. */
  topologyDigest(): string {
    return this.topology.quickFingerprint();
  }

  /** Version of a peer's entry in our topology (for benchmarks and tests). */
  entryVersion(peer: PeerName): number | undefined {
    return this.topology.get(peer)?.version;
  }

  /** Recomputed only when an edge of the graph changed, not on every entry change. */
  routes(): Routes {
    if (this.cachedRoutes.generation !== this.topology.graph.generation) {
      this.cachedRoutes = new Routes(this.self, this.topology.graph);
    }
    return this.cachedRoutes;
  }

  status(): RouterStatus {
    return routerStatus({
      init: this.options,
      attempts: this.attempts.list(),
      live: this.live.values(),
      topology: this.topology,
      routes: this.routes(),
      maker: this.maker,
      gossipStats: this.gossip.stats,
      terminations: this.terminations,
      handshakes: this.attempts.throttleStats(),
      clock: this.clock,
    });
  }

  // ---- connections ----

  private adopt(conn: ProtocolConnection, target: string | null): void {
    const peer = conn.remote.name;
    if (this.state !== 'running') return conn.close('shutdown');
    if (peer === this.self) {
      conn.close('self');
      if (target) this.maker.dialFailed(target, new LoomError('ERR_SELF_CONNECTION', 'dialled ourselves'));
      return;
    }
    if (target) this.maker.dialSucceeded(target, peer);
    const existing = this.live.get(peer);
    if (existing) {
      const keepNew = dialler(conn, this.self) === minName(this.self, peer) && dialler(existing.conn, this.self) !== minName(this.self, peer);
      if (!keepNew) {
        this.logger.debug({ peer }, 'duplicate connection closed');
        conn.close('duplicate');
        return;
      }
      this.live.delete(peer);
      existing.conn.close('duplicate');
    }
    const address = `${hostOf(conn.remoteAddress)}:${conn.remoteListenPort}`;
    const entry: LiveConnection = { conn, peer, address };
    this.live.set(peer, entry);
    conn.onMessage((msg) => {
      if (this.live.get(peer) !== entry) return;
      if (msg.type === 'heartbeat' || msg.type === 'goodbye') return;
      if (msg.type === 'gossip' && msg.channel === TOPOLOGY_CHANNEL && this.repair.receive(peer, msg.payload)) return;
      this.gossip.receive(peer, msg);
    });
    conn.onDrain(() => {
      if (this.live.get(peer) === entry) this.gossip.drained(peer);
    });
    conn.onClose((err) => this.connectionClosed(entry, err));
    this.logger.info({ peer, nickname: conn.remote.nickname, address, outbound: conn.outbound }, 'connection established');
    if (existing) this.gossip.connectionClosed(peer);
    this.publishOurConnections();
    this.gossip.connectionEstablished(peer);
    this.repair.connectionEstablished(peer);
  }

  private connectionClosed(entry: LiveConnection, err: LoomError | null): void {
    if (this.live.get(entry.peer) !== entry) return;
    this.live.delete(entry.peer);
    this.terminations++;
    // The one line per lost connection (the connection itself logs its failure at debug only).
    this.logger.info({ peer: entry.peer, nickname: entry.conn.remote.nickname, address: entry.address, code: err?.code ?? null, reason: err?.message ?? 'closed by this router' }, 'connection closed');
    this.gossip.connectionClosed(entry.peer);
    if (this.state !== 'running') return;
    this.publishOurConnections();
    this.maker.peerDisconnected(entry.peer, err);
    this.maker.refresh();
  }

  /** Re-publishes our entry when our set of live connections changed, and broadcasts it. */
  private publishOurConnections(): void {
    const ours = this.topology.setOurConnections(
      [...this.live.values()].map(({ peer, address, conn }) => ({ name: peer, address, outbound: conn.outbound, established: true })),
    );
    if (!ours) return;
    this.topologyChanged();
    this.topologyChannel.gossipBroadcast(new TopologyUpdate([ours]));
  }

  // ---- topology changes ----

  private topologyChanged(): void {
    if (this.afterChangeScheduled) return;
    this.afterChangeScheduled = true;
    queueMicrotask(() => this.afterTopologyChange());
  }

  /** Runs once per burst of changes: GC of unreachable peers, discovery, listeners. */
  private afterTopologyChange(): void {
    this.afterChangeScheduled = false;
    if (this.state === 'stopped') return;
    const routes = this.routes();
    const removed = this.topology.removeUnreachable(routes.reachable);
    if (removed.length > 0) this.logger.debug({ removed: removed.length }, 'unreachable peers removed from topology');
    this.discovery.topologyChanged();
    this.repair.topologyChanged();
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.logger.error({ err: toLoomError(err).message }, 'mesh change listener threw');
      }
    }
  }
}

function dialler(conn: ProtocolConnection, self: PeerName): PeerName {
  return conn.outbound ? self : conn.remote.name;
}

function minName(a: PeerName, b: PeerName): PeerName {
  return a < b ? a : b;
}
