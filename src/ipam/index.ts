/**
 * IPAM: the address ring CRDT, per-peer allocation, donations, bootstrap and persistence.
 *
 * The API the daemon wires (all per container id): `allocate(id, subnet?)`, `claim(id, cidr)`,
 * `release(id)`, `lookup(id)`; admin: `rmpeer(peer)`, `reset()`; `status()` for `loom status ipam`.
 */
export { Ipam, IPAM_CHANNEL, HOST_ID_PREFIX, parseAllocationId, type IpamComponents, type IpamInit } from './ipam.js';
export type { IpamStatus, IpamPeerStatus, AllocationResult, RangeMismatch } from './status.js';
export { Ring, type RingEntry, type PeerStats, type Interval, type MergeResult, entryWins } from './ring.js';
export { encodeRing, decodeRing, encodedRingSize } from './ring-codec.js';
export { RingGossipData } from './gossip-data.js';
export { type BootstrapMode, parseBootstrap, quorumOf } from './bootstrap.js';
export { type IpamStore, type StoredAllocation, MemoryStore } from './store.js';
export { SqliteStore, IPAM_DB_FILE, IPAM_DB_FILES, type SqliteStoreOptions } from './store-sqlite.js';
export { IpamSubsystem, IPAM_SUBSYSTEM, hostAllocationId, type IpamSubsystemComponents } from './daemon.js';
export { createIpamSubsystem, type IpamBuildComponents, type IpamBuildInit, type IpamFactoryOverrides } from './daemon-factory.js';
export { parseIpamOptions, ipamArgs, DEFAULT_IPALLOC_RANGE, type IpamLaunchConfig, type RawIpamOptions } from './daemon-options.js';
export type * from './daemon-types.js';
export * from './cidr.js';

/** The operations the API exposes, for the route table (names match Ipam's methods). */
export const IPAM_API_OPERATIONS = ['allocate', 'claim', 'release', 'lookup', 'rmpeer', 'reset', 'status'] as const;
