/** The IPAM snapshot behind `loom status ipam`, the JSON report and the API. */
import type { PeerName } from '../core/ids.js';
import type { Cidr as CoreCidr } from '../core/net.js';

export interface IpamPeerStatus {
  name: PeerName;
  /** Absent (undefined) when the mesh does not know it. */
  nickname?: string | undefined;
  /** Addresses this peer owns in the ring. */
  owned: number;
  /** As last reported by the peer (advisory; null until it has reported). */
  inUse: number | null;
  free: number | null;
  reachable: boolean;
}

export interface IpamStatus {
  self: PeerName;
  range: string;
  defaultSubnet: string | null;
  /** 'seed' | 'consensus' | 'observer' */
  mode: string;
  /** `idle`, `awaiting consensus (quorum Q, known K)` or `ready`. */
  state: string;
  rangeSize: number;
  /** One row per peer that owns space, in name order. */
  peers: IpamPeerStatus[];
  /** Owners of space that we cannot reach: candidates for `loom rmpeer` if they are gone for good. */
  unreachableOwners: PeerName[];
  /** This peer's containers with an address, and released ones still in their grace period. */
  allocations: number;
  releasedInGrace: number;
  pendingAllocations: number;
  /** Peers whose gossip was refused because they use another range (ERR_RANGE_MISMATCH). */
  rangeMismatches: RangeMismatch[];
}

export interface RangeMismatch {
  /** Their range, "a.b.c.d/n". */
  range: string;
  /** Peers known to use it (the broadcast source, or the owners in their ring), in name order. */
  peers: PeerName[];
  /** Refused updates so far. */
  count: number;
  /** Clock time of the last one (the daemon's monotonic clock, ms). */
  lastSeenAt: number;
}

/** One address handed to a container. */
export interface AllocationResult {
  containerId: string;
  /** "a.b.c.d" */
  address: string;
  /** The address with its subnet's prefix, "a.b.c.d/n", as a container interface wants it. */
  cidr: string;
  /** `cidr` as a value (what the daemon hands the container runtime; never sent as JSON). */
  value: CoreCidr;
}
