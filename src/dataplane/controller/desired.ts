/**
 * The controller's pure core: from what the mesh knows (reachable peers, direct connections,
 * gossiped MACs, the relay if any) to the DesiredDataplane and one status row per peer.
 * No I/O, no clock: the same facts always give the same result, in a stable order.
 */
import { peerNameFromBytes, peerNameToBytes, type PeerName } from '../../core/ids.js';
import type { BridgeFdbEntry, DesiredDataplane, PeerPath, PeerSpec, RemoteMac, TapSpec } from '../types.js';
import { TAP_GSO_MAX_SIZE, TAP_MTU, type DataplaneSettings } from './settings.js';
import { inTrustedSubnet, type TrustedSubnet } from './trusted-subnets.js';

/** A direct (neighbour) connection as the data plane needs it. */
export interface NeighbourFact {
  /** The peer's underlay IPv4 address as we reach it, or null (IPv6, unparsable). */
  underlayIp: string | null;
  encrypted: boolean;
}

/** What the user-space relay offers, when it runs. */
export interface RelayFacts {
  /**
   * How frames reach the relay: 'tap', the bridge hands them over through the relay's tap device
   * (`ports` unused); 'vxlan-port', the vxlan device sends them to 127.0.0.1 at the peer's port.
   */
  mode: 'tap' | 'vxlan-port';
  /** Local UDP port the kernel sends a peer's frames to; one per peer ('vxlan-port' mode). */
  ports: ReadonlyMap<PeerName, number>;
  /** Whether the relay can deliver to the peer (it has a next hop); absent = not known yet. */
  reachable: ReadonlyMap<PeerName, boolean>;
  /** Verified path MTU (underlay IP bytes) to each neighbour the relay probed; absent = not known yet. */
  pmtu?: ReadonlyMap<PeerName, number>;
  /**
   * Per neighbour: whether UDP nobody asked for reaches it (the relay's unsolicited probe), i.e.
   * whether the kernel's VXLAN packets would; absent = not probed yet. False on a blocked path and
   * on a peer behind a NAT.
   */
  open: ReadonlyMap<PeerName, boolean>;
  /** The neighbour the relay sends each peer's frames through (the peer itself when direct). */
  nextHops: ReadonlyMap<PeerName, PeerName>;
  /** Whether the relay encrypts what it sends. */
  encrypted: boolean;
}

/** The user's say over paths: `--no-fastdp`, and `--trusted-subnets` for an encrypted mesh. */
export interface PathPolicy {
  /** Every peer through the relay (`--no-fastdp`). */
  forceRelay: boolean;
  /** With a password, peers whose underlay address is in one of these use fastdp, unencrypted. */
  trustedSubnets: readonly TrustedSubnet[];
}

export const DEFAULT_POLICY: PathPolicy = { forceRelay: false, trustedSubnets: [] };

export interface ControllerFacts {
  self: PeerName;
  /** Reachable peers (ourselves may be included; it is skipped). */
  reachable: readonly PeerName[];
  neighbours: ReadonlyMap<PeerName, NeighbourFact>;
  /** Gossiped MAC lists by peer (any peer; unreachable ones are ignored). */
  macs: ReadonlyMap<PeerName, readonly string[]>;
  /** Our own containers' MACs: never programmed as remote. */
  localMacs: readonly string[];
  /** Direct UDP to the peer is known to fail (relay probe); absent = not known to fail. */
  udpBlocked: ReadonlySet<PeerName>;
  relay: RelayFacts | null;
  /** Underlay IP bytes of the fast path's full-size frame (segment MTU + 50), for the reason text. */
  fastdpFrameBytes?: number;
  /** Default DEFAULT_POLICY. */
  policy?: PathPolicy;
}

export type PathKind = 'fastdp' | 'sleeve' | 'unreachable';

export interface PeerPathStatus {
  peer: PeerName;
  path: PathKind;
  encrypted: boolean;
  mtu: number;
  underlayIp: string | null;
  /** For 'sleeve' in the relay's 'vxlan-port' mode, the local relay port. */
  relayPort?: number;
  /** For 'sleeve', the neighbour the relay sends through when it is not the peer itself. */
  via?: PeerName;
  /** Why not the fast path (sleeve) or why no path (unreachable). */
  reason?: string;
  /** How many of the peer's MACs are programmed. */
  macs: number;
  /**
   * Path MTU (underlay IP bytes) to the neighbour the relay sends this peer's frames through (the
   * peer itself when direct), as the relay's probes verified it; absent until known.
   */
  pmtu?: number;
}

export type PathChoice = { via: PeerPath; reason?: string } | { via: null; reason: string };

/**
 * The one place that decides how frames reach a peer. Kernel VXLAN needs a direct connection (we
 * know the peer's underlay address), UDP that reaches the peer unasked (no NAT or firewall in
 * between), the fast path allowed (`--no-fastdp`), and an unencrypted mesh or a peer inside a
 * trusted subnet: the kernel here has no IPsec, so an encrypted mesh never sends containers'
 * frames in clear elsewhere; those go by the relay, sealed.
 */
export function choosePath(peer: PeerName, facts: ControllerFacts): PathChoice {
  const direct = facts.neighbours.get(peer);
  const policy = facts.policy ?? DEFAULT_POLICY;
  let why: string;
  if (!direct) why = 'no direct connection';
  else if (direct.underlayIp === null) why = 'underlay address is not IPv4';
  else if (policy.forceRelay) why = 'fast path off (--no-fastdp)';
  else if (direct.encrypted && !inTrustedSubnet(direct.underlayIp, policy.trustedSubnets)) why = 'encrypted mesh: kernel VXLAN cannot encrypt';
  else if (facts.udpBlocked.has(peer)) why = fastPathTooBig(peer, facts) ?? 'UDP to the peer is blocked';
  else return { via: 'fastdp' };
  const relay = facts.relay;
  if (!relay) return { via: null, reason: `${why}; no relay` };
  if (relay.reachable.get(peer) !== false) {
    if (relay.mode === 'tap') return { via: 'tap', reason: why };
    const relayPort = relay.ports.get(peer);
    if (relayPort !== undefined) return { via: { relayPort }, reason: why };
  }
  return { via: null, reason: `${why}; relay cannot reach it` };
}

/**
 * When unsolicited full-size probes fail but the relay found a path MTU below the fast path's
 * full-size frame (segment MTU + 50), that is the reason, not a firewall.
 */
function fastPathTooBig(peer: PeerName, facts: ControllerFacts): string | undefined {
  const pmtu = facts.relay?.pmtu?.get(peer);
  const needed = facts.fastdpFrameBytes;
  if (pmtu === undefined || needed === undefined || pmtu >= needed) return undefined;
  return `path MTU ${pmtu} < ${needed} for full-size VXLAN frames`;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface ComputedDataplane {
  desired: DesiredDataplane;
  peers: PeerPathStatus[];
}

/**
 * Desired state for the facts. A MAC claimed by two peers goes to the one with the smaller name
 * (deterministic on every host); a MAC that is local here is never programmed as remote.
 */
export function computeDesired(settings: DataplaneSettings, facts: ControllerFacts): ComputedDataplane {
  const peers: PeerSpec[] = [];
  const rows: PeerPathStatus[] = [];
  const remoteMacs: RemoteMac[] = [];
  const claimed = new Set(facts.localMacs);
  const reachable = [...new Set(facts.reachable)].filter((p) => p !== facts.self).sort(compareNames);
  for (const peer of reachable) {
    const choice = choosePath(peer, facts);
    const underlayIp = facts.neighbours.get(peer)?.underlayIp ?? null;
    if (choice.via === null) {
      rows.push({ peer, path: 'unreachable', encrypted: false, mtu: settings.mtu, underlayIp, reason: choice.reason, macs: 0 });
      continue;
    }
    // Only the fast path sends to the underlay address; for a relayed peer it is informative (the
    // port mode's FDB destination is 127.0.0.1:port).
    peers.push({ name: peer, underlayIp: choice.via === 'fastdp' ? underlayIp! : choice.via === 'tap' ? (underlayIp ?? '0.0.0.0') : '127.0.0.1', via: choice.via });
    let programmed = 0;
    for (const mac of facts.macs.get(peer) ?? []) {
      if (claimed.has(mac)) continue;
      claimed.add(mac);
      remoteMacs.push({ mac, peer });
      programmed++;
    }
    const row: PeerPathStatus =
      choice.via === 'fastdp'
        ? { peer, path: 'fastdp', encrypted: false, mtu: settings.mtu, underlayIp, macs: programmed }
        : { peer, path: 'sleeve', encrypted: facts.relay?.encrypted ?? false, mtu: settings.mtu, underlayIp, ...(choice.via === 'tap' ? {} : { relayPort: choice.via.relayPort }), macs: programmed };
    const hop = facts.relay?.nextHops.get(peer);
    if (row.path === 'sleeve' && hop !== undefined && hop !== peer) row.via = hop;
    const pmtu = facts.relay?.pmtu?.get(row.path === 'sleeve' ? (hop ?? peer) : peer);
    if (pmtu !== undefined) row.pmtu = pmtu;
    if (choice.reason !== undefined) row.reason = choice.reason;
    rows.push(row);
  }
  const tap: TapSpec | null = settings.tap && facts.relay?.mode === 'tap' ? { name: settings.tap, mtu: TAP_MTU, gsoMaxSize: TAP_GSO_MAX_SIZE } : null;
  const desired: DesiredDataplane = {
    bridge: { name: settings.bridge, mtu: settings.mtu, mac: bridgeMacOf(facts.self) },
    // localIp null: routing picks the source, which also suits FDB entries towards the relay.
    vxlan: { name: settings.vxlan, vni: settings.vni, port: settings.port, mtu: settings.mtu, localIp: null, localBypass: false },
    peers,
    remoteMacs,
    tap,
    bridgeFdb: [],
  };
  return { desired: { ...desired, bridgeFdb: bridgeFdbOf(desired) }, peers: rows };
}

/**
 * Tap mode: every remote MAC pinned to the bridge port its frames leave by, the tap for peers
 * through the relay, the vxlan device for the others; by MAC. Empty without a tap.
 */
function bridgeFdbOf(desired: DesiredDataplane): BridgeFdbEntry[] {
  if (!desired.tap) return [];
  const viaTap = new Set<string>(desired.peers.filter((p) => p.via === 'tap').map((p) => p.name));
  const tap = desired.tap.name;
  return desired.remoteMacs.map((r) => ({ mac: r.mac, dev: viaTap.has(r.peer) ? tap : desired.vxlan.name })).sort((a, b) => compareNames(a.mac, b.mac));
}

/** What the relay needs to forward frames read from the tap: whose each MAC is, and whom to flood to. */
export interface RelayForwardingTable {
  /** The MACs of peers reached through the tap, by MAC. */
  macs: Array<{ mac: string; peer: PeerName }>;
  /** The peers reached through the tap, by name: a broadcast read from the tap goes to each once. */
  floodPeers: PeerName[];
}

/** The relay's forwarding table for a desired state (pure): its peers whose path is the tap. */
export function relayForwarding(desired: DesiredDataplane): RelayForwardingTable {
  const viaTap = new Set<PeerName>(desired.peers.filter((p) => p.via === 'tap').map((p) => p.name));
  return {
    macs: desired.remoteMacs.filter((r) => viaTap.has(r.peer)).map((r) => ({ mac: r.mac, peer: r.peer })).sort((a, b) => compareNames(a.mac, b.mac)),
    floodPeers: [...viaTap].sort(compareNames),
  };
}

/** What the controller last applied: kept across restarts (STATE_DIR) for `retainPrevious`. */
export interface RememberedDataplane {
  peers: PeerSpec[];
  remoteMacs: RemoteMac[];
}

/**
 * During the start-up grace period, peers (and their MACs) applied before a restart that the new
 * router does not know yet are kept, so established flows do not stop while the mesh reconnects.
 * Peers and MACs the new state has win; a MAC already taken is not added twice.
 */
export function retainPrevious(computed: ComputedDataplane, previous: RememberedDataplane): ComputedDataplane {
  const known = new Set<string>(computed.peers.map((p) => p.peer));
  const kept = previous.peers.filter((p) => !known.has(p.name));
  if (kept.length === 0) return computed;
  const keptNames = new Set<string>(kept.map((p) => p.name));
  const macs = new Set(computed.desired.remoteMacs.map((r) => r.mac));
  const extraMacs = previous.remoteMacs.filter((r) => keptNames.has(r.peer) && !macs.has(r.mac));
  const rows: PeerPathStatus[] = kept.map((p) => ({
    peer: p.name,
    path: p.via === 'fastdp' ? 'fastdp' : 'sleeve',
    encrypted: false,
    mtu: computed.desired.vxlan.mtu,
    underlayIp: p.via === 'fastdp' ? p.underlayIp : null,
    reason: 'kept from before the restart until the mesh reconnects',
    macs: extraMacs.filter((r) => r.peer === p.name).length,
  }));
  const desired: DesiredDataplane = { ...computed.desired, peers: [...computed.desired.peers, ...kept], remoteMacs: [...computed.desired.remoteMacs, ...extraMacs] };
  return {
    desired: { ...desired, bridgeFdb: bridgeFdbOf(desired) },
    peers: [...computed.peers, ...rows].sort((a, b) => compareNames(a.peer, b.peer)),
  };
}

/**
 * Keeps the previous fast-path spec of each `held` peer in place of what `computed` chose for it
 * (a peer whose direct connection has just gone: see DataplaneController's hold). Its MACs stay
 * as computed (the same MACs; only where the FDB sends them changes), or the previous ones when
 * `computed` found no path for it. A held peer without a previous fast-path spec is left as
 * computed. Pure.
 */
export function holdFastPaths(computed: ComputedDataplane, previous: RememberedDataplane, held: ReadonlySet<PeerName>): ComputedDataplane {
  // Only peers `computed` still has a row for: an unreachable one is retainPrevious's to keep.
  const rows = new Set(computed.peers.map((r) => r.peer));
  const before = new Map(previous.peers.filter((p) => p.via === 'fastdp' && held.has(p.name) && rows.has(p.name)).map((p) => [p.name, p]));
  if (before.size === 0) return computed;
  const peers = computed.desired.peers.map((p) => before.get(p.name) ?? p);
  const present = new Set(peers.map((p) => p.name));
  for (const spec of before.values()) if (!present.has(spec.name)) peers.push(spec);
  // A peer computed as unreachable has no MACs in `computed`: its previous ones come back.
  const withMacs = new Set(computed.desired.remoteMacs.map((r) => r.peer));
  const claimed = new Set(computed.desired.remoteMacs.map((r) => r.mac));
  const extra = previous.remoteMacs.filter((r) => before.has(r.peer) && !withMacs.has(r.peer) && !claimed.has(r.mac));
  const desired: DesiredDataplane = { ...computed.desired, peers, remoteMacs: [...computed.desired.remoteMacs, ...extra] };
  const statusRows = computed.peers.map((r): PeerPathStatus => {
    const spec = before.get(r.peer);
    if (!spec) return r;
    const macs = r.macs + extra.filter((m) => m.peer === r.peer).length;
    return { peer: r.peer, path: 'fastdp', encrypted: false, mtu: r.mtu, underlayIp: spec.underlayIp, reason: 'direct connection lost a moment ago; fast path held', macs };
  });
  return { desired: { ...desired, bridgeFdb: bridgeFdbOf(desired) }, peers: statusRows };
}

/**
 * The bridge's pinned MAC (see BridgeSpec.mac): the peer name's bytes as a locally administered
 * unicast address, so it is stable across restarts and differs from host to host.
 */
export function bridgeMacOf(self: PeerName): string {
  const bytes = peerNameToBytes(self);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return peerNameFromBytes(bytes);
}
