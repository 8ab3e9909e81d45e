/** The mesh: topology, routes, gossip, router and connection maker over a Transport. */
export * from './types.js';
export { Router, TOPOLOGY_CHANNEL, type RouterComponents, type RouterOptions } from './router.js';
export { Topology, TopologyUpdate, type PeerEntry, type PeerConnectionEntry } from './topology.js';
export { Routes, type UnicastRoute } from './routes.js';
export { PeerGraph } from './peer-graph.js';
export { GossipHub, type GossipStats, type ChannelOptions } from './gossip.js';
export { ConnectionMaker } from './connection-maker.js';
export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { HandshakeThrottle, DEFAULT_HANDSHAKE_THROTTLE, type HandshakeThrottleOptions } from './handshake-throttle.js';
export { parsePeerHostPort } from './address.js';
export { establishConnection, PROTOCOL_MIN_VERSION, PROTOCOL_MAX_VERSION } from './connection.js';
export { MemoryNetwork } from './transport-memory.js';
export { TcpTransport } from './transport-tcp.js';
