/**
 * The data plane controller inside the router: gossip of container MACs (channel "dataplane"),
 * the pure computation of the desired data plane, and the debounced apply loop.
 */
export { DataplaneController, HOLD_FAST_PATH_MS, underlayIpOf, type DataplaneMemory, type DataplaneApplier, type DataplaneControllerComponents, type DataplaneControllerInit, type DataplaneStatus } from './controller.js';
export { bridgeMacOf, computeDesired, choosePath, relayForwarding, DEFAULT_POLICY, type PathPolicy, type ControllerFacts, type NeighbourFact, type RelayFacts, type RelayForwardingTable, type PeerPathStatus, type PathKind, type PathChoice, type ComputedDataplane } from './desired.js';
export { MacGossip, type MacGossipComponents } from './mac-gossip.js';
export { DataplaneGossipData, decodeDataplaneGossip, normaliseMacs, supersedes, DATAPLANE_CHANNEL, MAX_MACS_PER_PEER, MAX_PEERS, type DataplaneEntry } from './gossip-data.js';
export {
  DEFAULT_SETTINGS,
  LOOM_VNI,
  VXLAN_PORT,
  BRIDGE_NAME,
  VXLAN_NAME,
  TAP_NAME,
  TAP_MTU,
  TAP_GSO_MAX_SIZE,
  FASTDP_MTU,
  SEALED_MTU,
  defaultSegmentMtu,
  parseSegmentMtu,
  segmentMtu,
  type DataplaneSettings,
} from './settings.js';
export { DataplaneSubsystem, createDataplaneSubsystem, type DataplaneBuildComponents, type DataplaneBuildInit, dataplaneEnabled, inInitialNetns, DATAPLANE_SUBSYSTEM } from './subsystem.js';
export { fileMemory } from './memory.js';
export { holdFastPaths, retainPrevious, type RememberedDataplane } from './desired.js';
export { RelayDriver, type RelayPort, type RelayDriverComponents, type RelayDriverInit, type RelayDriverStatus, type RelayNeighbourStatus } from './relay-driver.js';
export { parseTrustedSubnets, inTrustedSubnet, type TrustedSubnet } from './trusted-subnets.js';
export { parseDataplaneOptions, dataplaneArgs, type DataplaneMode, type DataplaneLaunchConfig, type RawDataplaneOptions } from './launch-options.js';
