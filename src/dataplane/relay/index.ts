/**
 * The user-space relay of the data plane: frames from the relay's TAP device on the bridge (or
 * VXLAN datagrams from the kernel), carried hop by hop over UDP between routers, sealed with
 * per-neighbour keys. Wire format in docs/DATAPLANE.md.
 */
export { Relay, type RelayComponents, type RelayInit, type NeighbourConfig, type ReachabilityListener, type FrameDevice, type RelayForwarding } from './relay.js';
export type { RelayStats, RelayCounters, NeighbourStats } from './stats.js';
export {
  DROP_REASONS,
  type DropReason,
  type RelayHeader,
  decodeHeader,
  relayContainerMtu,
  RELAY_HEADER_BYTES,
  RELAY_TAG_BYTES,
  RELAY_VERSION,
  PacketType,
  BATCH_LENGTH_BYTES,
  MAX_BATCH_BYTES,
  MAX_BODY_BYTES,
  VNET_HEADER_BYTES,
  vnetHeaderOk,
} from './wire.js';
export { deriveDataKeys, DATA_KEY_INFO, type DataKeys } from './keys.js';
export { ReplayWindow, ReplayVerdict, REPLAY_WINDOW_BITS } from './replay-window.js';
export { createRelaySocket, type SocketFactory } from './socket.js';
export { parseUdpAddress, type UdpAddress } from './address.js';
export { encodeRelayPacket, decodeRelayPacket, encodeBatchBody, decodeBatchBody } from './codec.js';
