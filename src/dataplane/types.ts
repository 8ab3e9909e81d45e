/**
 * The data plane as data: what the router wants (DesiredDataplane), what the kernel has
 * (CurrentDataplane), and the steps between them (DataplaneOp). No I/O here.
 */
import type { PeerName } from '../core/ids.js';

export interface BridgeSpec {
  /** Interface name, at most 15 bytes (IFNAMSIZ - 1). */
  name: string;
  mtu: number;
  /**
   * The bridge's own MAC, pinned. Unset, Linux gives a bridge the smallest MAC of its ports and
   * changes it whenever ports come and go (the relay's TAP at every router restart): containers'
   * ARP entries for the host's address on the bridge (the DNS server) would then point nowhere.
   * Absent = leave it as it is.
   */
  mac?: string;
}

export interface VxlanSpec {
  name: string;
  /** VXLAN network identifier, 24 bits. */
  vni: number;
  /** UDP destination port of the kernel tunnel (IANA: 4789). */
  port: number;
  /** Container MTU: underlay MTU - 50 (1450 on a 1500 underlay). */
  mtu: number;
  /**
   * Source address of encapsulated packets, or null to let routing choose. Use null when any peer
   * goes through the user-space relay (FDB dst 127.0.0.1), as the lab's mixed-mode setup did.
   */
  localIp: string | null;
  /** Always false: FDB entries pointing at 127.0.0.1 (the relay) need local bypass off (kernel >= 6.6). */
  localBypass: false;
}

/**
 * How frames for a peer leave this host: 'fastdp', kernel VXLAN straight to the peer; 'tap', the
 * bridge hands them to the relay through the tap device (bridge FDB entries pin the peer's MACs
 * to it); `relayPort` (the relay's older mode), the vxlan device sends them to the relay at
 * 127.0.0.1:relayPort, one port per peer.
 */
export type PeerPath = 'fastdp' | 'tap' | { relayPort: number };

export interface PeerSpec {
  name: PeerName;
  /** The peer's underlay IPv4 address (its VXLAN endpoint). */
  underlayIp: string;
  via: PeerPath;
}

export interface RemoteMac {
  /** Lower-case unicast MAC of a container on another host. */
  mac: string;
  peer: PeerName;
}

/**
 * The relay's tap device, a port of the bridge. The relay creates it (and it goes when the relay's
 * file descriptor closes); the data plane only sets its MTU, GSO limit, bridge port and isolation.
 */
export interface TapSpec {
  name: string;
  /** The tap's own MTU: large, so the bridge hands the relay any frame; the relay enforces the segment MTU. */
  mtu: number;
  /** Largest TSO super-frame the kernel hands the relay (`gso_max_size`). */
  gsoMaxSize: number;
}

/** A static sticky entry in the bridge's own table (`master`): frames for `mac` leave by port `dev`. */
export interface BridgeFdbEntry {
  mac: string;
  dev: string;
}

export interface DesiredDataplane {
  bridge: BridgeSpec;
  vxlan: VxlanSpec;
  peers: PeerSpec[];
  remoteMacs: RemoteMac[];
  /** The relay's tap, when the relay runs in tap mode; null otherwise. */
  tap: TapSpec | null;
  /** Each remote MAC pinned to its port (vxlan device or tap); empty when `tap` is null. */
  bridgeFdb: BridgeFdbEntry[];
}

export interface CurrentVxlanInfo {
  vni: number;
  port: number;
  localIp: string | null;
  learning: boolean;
  /** null: the kernel (or iproute2) does not report it. */
  localBypass: boolean | null;
}

export interface CurrentLink {
  name: string;
  /** `info_kind` from `ip -d link` ('bridge', 'vxlan', 'veth', ...), or null for a plain device. */
  kind: string | null;
  mtu: number;
  up: boolean;
  master: string | null;
  vxlan: CurrentVxlanInfo | null;
  /** The bridge port flag `isolated`; null when not a bridge port (or not reported). */
  isolated: boolean | null;
  /** `gso_max_size`, or null when not reported. */
  gsoMaxSize: number | null;
  /** The link's MAC (lower case), when reported. */
  address?: string | null;
}

/** One entry of the vxlan device's own forwarding table (`bridge fdb show dev VXLAN`, with a dst). */
export interface FdbEntry {
  mac: string;
  dst: string;
  /** Destination UDP port, or null for the device's own port. */
  port: number | null;
}

export interface CurrentDataplane {
  /** The links the plan cares about, by name (others are not listed). */
  links: ReadonlyMap<string, CurrentLink>;
  /** Remote (dst-carrying) entries of the vxlan device; empty if it does not exist. */
  fdb: readonly FdbEntry[];
  /** Static entries of the bridge's own table whose port is the vxlan device or the tap. */
  bridgeFdb: readonly BridgeFdbEntry[];
}

export type DataplaneOp =
  | { op: 'create-bridge'; name: string; mtu: number }
  | { op: 'create-vxlan'; name: string; vni: number; port: number; mtu: number; localIp: string | null }
  /** Removes a link whose immutable attributes (kind, vni, port, local, learning) are wrong. */
  | { op: 'delete-link'; name: string; reason: string }
  | { op: 'set-mtu'; name: string; mtu: number }
  | { op: 'set-address'; name: string; mac: string }
  | { op: 'set-master'; name: string; master: string }
  | { op: 'set-up'; name: string }
  | { op: 'set-local-bypass'; name: string; enabled: boolean }
  /** Adds one more destination for a MAC (head-end replication list of 00:00:00:00:00:00). */
  | { op: 'fdb-append'; dev: string; entry: FdbEntry }
  /** Sets the one destination of a unicast MAC, replacing any other. */
  | { op: 'fdb-replace'; dev: string; entry: FdbEntry }
  | { op: 'fdb-delete'; dev: string; entry: FdbEntry }
  /** The bridge port flag: isolated ports never exchange frames with each other. */
  | { op: 'set-isolated'; name: string; on: boolean }
  | { op: 'set-gso-max-size'; name: string; size: number }
  /** Pins a MAC to a bridge port (static, sticky), moving it from another port if need be. */
  | { op: 'bridge-fdb-replace'; entry: BridgeFdbEntry }
  | { op: 'bridge-fdb-delete'; entry: BridgeFdbEntry };

export const FLOOD_MAC = '00:00:00:00:00:00';
export const RELAY_IP = '127.0.0.1';
