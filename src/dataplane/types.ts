/**
 * The data plane as data: what the router wants (DesiredDataplane), what the kernel has
 * (CurrentDataplane), and the steps between them (DataplaneOp). No I/O here.
 */
import type { PeerName } from '../core/ids.js';

export interface BridgeSpec {
  /** Interface name, at most 15 bytes (IFNAMSIZ - 1). */
  name: string;
  mtu: number;
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

/** How frames for a peer leave this host: kernel VXLAN straight to the peer, or via the local relay. */
/** `relayPort`: the local UDP port the relay listens on for this peer; unique per peer. */
export type PeerPath = 'fastdp' | { relayPort: number };

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

export interface DesiredDataplane {
  bridge: BridgeSpec;
  vxlan: VxlanSpec;
  peers: PeerSpec[];
  remoteMacs: RemoteMac[];
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
}

export type DataplaneOp =
  | { op: 'create-bridge'; name: string; mtu: number }
  | { op: 'create-vxlan'; name: string; vni: number; port: number; mtu: number; localIp: string | null }
  /** Removes a link whose immutable attributes (kind, vni, port, local, learning) are wrong. */
  | { op: 'delete-link'; name: string; reason: string }
  | { op: 'set-mtu'; name: string; mtu: number }
  | { op: 'set-master'; name: string; master: string }
  | { op: 'set-up'; name: string }
  | { op: 'set-local-bypass'; name: string; enabled: boolean }
  /** Adds one more destination for a MAC (head-end replication list of 00:00:00:00:00:00). */
  | { op: 'fdb-append'; dev: string; entry: FdbEntry }
  /** Sets the one destination of a unicast MAC, replacing any other. */
  | { op: 'fdb-replace'; dev: string; entry: FdbEntry }
  | { op: 'fdb-delete'; dev: string; entry: FdbEntry };

export const FLOOD_MAC = '00:00:00:00:00:00';
export const RELAY_IP = '127.0.0.1';
