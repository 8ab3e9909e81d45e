/**
 * The router's status snapshot (`loom status`, the JSON report, the API): a pure read of the
 * router's parts, as weaveworks/mesh's status.go.
 *
 * Connection states (RouterStatus.connections):
 *   connecting  — dialling, or handshake in progress (either direction);
 *   pending     — handshake done, the peer's topology entry does not list us yet, so routes
 *                 do not use the connection;
 *   established — both ends list the connection: routes use it;
 *   retrying    — a target whose last attempt failed; next attempt at retryAt;
 *   failed      — a target we will not dial again (it is ourselves).
 */
import type { Clock } from '../core/clock.js';
import type { PeerName } from '../core/ids.js';
import { PROTOCOL_MAX_VERSION, PROTOCOL_MIN_VERSION } from './connection.js';
import type { ConnectionMaker } from './connection-maker.js';
import type { GossipStats } from './gossip.js';
import type { HandshakeThrottleStats } from './handshake-throttle.js';
import type { Routes } from './routes.js';
import type { Topology } from './topology.js';
import type { ConnectionStatus, ProtocolConnection, RouterInit, RouterStatus } from './types.js';

/** Everything the snapshot reads; nothing is changed. */
export interface RouterStatusSource {
  init: Pick<RouterInit, 'identity' | 'port' | 'password'>;
  /** Dials and handshakes in progress. */
  attempts: Iterable<{ address: string; outbound: boolean }>;
  /** Live connections, one per peer, with the peer's dialable address. */
  live: Iterable<{ conn: ProtocolConnection; peer: PeerName; address: string }>;
  topology: Topology;
  routes: Routes;
  maker: Pick<ConnectionMaker, 'status' | 'discovery' | 'userTargets'>;
  gossipStats: Readonly<GossipStats>;
  terminations: number;
  handshakes: Pick<HandshakeThrottleStats, 'failures' | 'rateLimited' | 'backedOff'>;
  clock: Clock;
}

export function routerStatus(source: RouterStatusSource): RouterStatus {
  const { init, routes, topology, maker, clock } = source;
  const self = init.identity.name;
  const connections: ConnectionStatus[] = [];
  for (const a of source.attempts) {
    connections.push({ address: a.address, outbound: a.outbound, state: 'connecting', info: a.outbound ? 'dialling' : 'handshake' });
  }
  for (const { conn, peer, address } of source.live) {
    const listsUs = topology.get(peer)?.connections.some((c) => c.name === self && c.established) ?? false;
    connections.push({
      address,
      outbound: conn.outbound,
      state: listsUs ? 'established' : 'pending',
      info: `${peer}(${conn.remote.nickname})`,
      peer: { name: peer, nickname: conn.remote.nickname },
      encrypted: conn.encrypted,
    });
  }
  connections.push(...maker.status(Date.now() - clock.now()));
  const stats = source.gossipStats;
  return {
    name: self,
    nickname: init.identity.nickname,
    uid: init.identity.uid,
    protocol: 'loom',
    protocolMinVersion: PROTOCOL_MIN_VERSION,
    protocolMaxVersion: PROTOCOL_MAX_VERSION,
    encryption: init.password !== undefined,
    peerDiscovery: maker.discovery,
    port: init.port,
    targets: maker.userTargets(),
    connections,
    peers: topology.status(),
    routes: { unicast: routes.unicastRows(), broadcast: routes.broadcastNextHops(self) },
    stats: {
      terminations: source.terminations,
      handshakesFailed: source.handshakes.failures,
      handshakesThrottled: source.handshakes.rateLimited + source.handshakes.backedOff,
      gossipBytesSent: stats.bytesSent,
      gossipBytesReceived: stats.bytesReceived,
      gossipMessagesSent: stats.messagesSent,
      gossipMessagesReceived: stats.messagesReceived,
    },
  };
}
