/**
 * plan(current, desired): the ordered ops that turn what the kernel has into what the router wants.
 * Pure. Contract: applying the ops and reading the state back gives a state for which plan() is
 * empty; so apply(desired) is idempotent and safe to call again with the same config.
 * Ops come in dependency order: links first (bridge before the ports enslaved to it), then the
 * vxlan FDB, then the bridge's static entries; each table's deletions before its additions (so a
 * peer moved between fast path and relay never has two paths).
 *
 * Tap mode (desired.tap set): the vxlan device and the relay's tap are both isolated bridge ports,
 * so frames never pass between the fast path and the relay inside a host (no loops, no double
 * floods), and every remote MAC is pinned to its port by a static sticky bridge entry. The relay
 * creates the tap; until it exists, the plan leaves it (and entries on it) out.
 */
import { FLOOD_MAC, RELAY_IP, type BridgeFdbEntry, type CurrentDataplane, type CurrentLink, type DataplaneOp, type DesiredDataplane, type FdbEntry, type VxlanSpec } from './types.js';

export function fdbKey(e: FdbEntry): string {
  return `${e.mac}|${e.dst}|${e.port ?? ''}`;
}

function byKey(a: FdbEntry, b: FdbEntry): number {
  const ka = fdbKey(a);
  const kb = fdbKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * The vxlan FDB the desired state implies: one flood entry per peer, one entry per remote MAC.
 * Peers reached through the tap have none: their frames, floods included, go to the tap (the relay
 * floods to each of them once).
 */
export function desiredFdb(desired: DesiredDataplane): FdbEntry[] {
  const dstOf = new Map<string, { dst: string; port: number | null }>();
  for (const p of desired.peers) {
    if (p.via === 'tap') continue;
    dstOf.set(p.name, p.via === 'fastdp' ? { dst: p.underlayIp, port: null } : { dst: RELAY_IP, port: p.via.relayPort });
  }
  const out: FdbEntry[] = [];
  for (const d of dstOf.values()) out.push({ mac: FLOOD_MAC, ...d });
  for (const r of desired.remoteMacs) {
    const d = dstOf.get(r.peer);
    if (d) out.push({ mac: r.mac, ...d });
  }
  return out;
}

function vxlanMismatch(link: CurrentLink, want: VxlanSpec): string | null {
  if (link.kind !== 'vxlan' || !link.vxlan) return `${link.name} is a ${link.kind ?? 'plain'} device, not vxlan`;
  const v = link.vxlan;
  if (v.vni !== want.vni) return `vni ${v.vni} != ${want.vni}`;
  if (v.port !== want.port) return `port ${v.port} != ${want.port}`;
  if (v.localIp !== want.localIp) return `local ${v.localIp ?? 'none'} != ${want.localIp ?? 'none'}`;
  if (v.learning) return 'learning is on';
  return null;
}

function planBridge(current: CurrentDataplane, desired: DesiredDataplane, ops: DataplaneOp[]): void {
  const { name, mtu, mac } = desired.bridge;
  const link = current.links.get(name);
  if (link && link.kind === 'bridge') {
    if (link.mtu !== mtu) ops.push({ op: 'set-mtu', name, mtu });
    if (mac !== undefined && link.address !== mac) ops.push({ op: 'set-address', name, mac });
    if (!link.up) ops.push({ op: 'set-up', name });
    return;
  }
  if (link) ops.push({ op: 'delete-link', name, reason: `${name} is a ${link.kind ?? 'plain'} device, not a bridge` });
  ops.push({ op: 'create-bridge', name, mtu });
  if (mac !== undefined) ops.push({ op: 'set-address', name, mac });
  ops.push({ op: 'set-up', name });
}

/** Returns true if the vxlan device is (re)created, so its FDB starts empty. */
function planVxlan(current: CurrentDataplane, desired: DesiredDataplane, ops: DataplaneOp[]): boolean {
  const want = desired.vxlan;
  const master = desired.bridge.name;
  const link = current.links.get(want.name);
  const mismatch = link ? vxlanMismatch(link, want) : null;
  if (link && mismatch === null) {
    if (link.mtu !== want.mtu) ops.push({ op: 'set-mtu', name: want.name, mtu: want.mtu });
    // null = the kernel cannot say (or set) it: nothing to do, the caller warns once.
    if (link.vxlan!.localBypass === true) ops.push({ op: 'set-local-bypass', name: want.name, enabled: false });
    planPort(link, master, desired.tap !== null, ops);
    if (!link.up) ops.push({ op: 'set-up', name: want.name });
    return false;
  }
  if (link) ops.push({ op: 'delete-link', name: want.name, reason: mismatch! });
  ops.push(
    { op: 'create-vxlan', name: want.name, vni: want.vni, port: want.port, mtu: want.mtu, localIp: want.localIp },
    { op: 'set-local-bypass', name: want.name, enabled: false },
    { op: 'set-master', name: want.name, master },
  );
  if (desired.tap) ops.push({ op: 'set-isolated', name: want.name, on: true });
  ops.push({ op: 'set-up', name: want.name });
  return true;
}

/** Enslaves `link` to `master` and, if wanted, isolates it (a port enslaved anew starts not isolated). */
function planPort(link: CurrentLink, master: string, isolate: boolean, ops: DataplaneOp[]): void {
  const enslave = link.master !== master;
  if (enslave) ops.push({ op: 'set-master', name: link.name, master });
  if (isolate && (enslave || link.isolated !== true)) ops.push({ op: 'set-isolated', name: link.name, on: true });
}

/** The relay's tap, once the relay has created it. Returns true if it is (or will be) a port of the bridge. */
function planTap(current: CurrentDataplane, desired: DesiredDataplane, ops: DataplaneOp[]): boolean {
  const want = desired.tap;
  const link = want ? current.links.get(want.name) : undefined;
  // Absent: the relay has not started (or is restarting); the next apply after it has picks it up.
  if (!want || !link || link.kind !== 'tun') return false;
  if (link.mtu !== want.mtu) ops.push({ op: 'set-mtu', name: want.name, mtu: want.mtu });
  if (link.gsoMaxSize !== want.gsoMaxSize) ops.push({ op: 'set-gso-max-size', name: want.name, size: want.gsoMaxSize });
  planPort(link, desired.bridge.name, true, ops);
  if (!link.up) ops.push({ op: 'set-up', name: want.name });
  return true;
}

function byMac(a: BridgeFdbEntry, b: BridgeFdbEntry): number {
  return a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0;
}

/**
 * The bridge's static entries on the vxlan device and the tap (tap mode only; otherwise existing
 * ones are left alone). A wanted MAC on the wrong port is moved by one replace.
 */
function planBridgeFdb(current: CurrentDataplane, desired: DesiredDataplane, vxlanFresh: boolean, tapReady: boolean, ops: DataplaneOp[]): void {
  if (!desired.tap) return;
  const ports = new Set<string>();
  if (tapReady) ports.add(desired.tap.name);
  // A recreated vxlan device starts as a new port: nothing of its old entries is left.
  const have = current.bridgeFdb.filter((e) => ports.has(e.dev) || (e.dev === desired.vxlan.name && !vxlanFresh));
  ports.add(desired.vxlan.name);
  const want = new Map<string, string>();
  for (const e of desired.bridgeFdb) if (ports.has(e.dev)) want.set(e.mac, e.dev);
  const placed = new Set<string>();
  const deletes: BridgeFdbEntry[] = [];
  for (const e of have) {
    const dev = want.get(e.mac);
    if (dev === e.dev) placed.add(e.mac);
    else if (dev === undefined) deletes.push(e);
  }
  const replaces: BridgeFdbEntry[] = [];
  for (const [mac, dev] of want) if (!placed.has(mac)) replaces.push({ mac, dev });
  for (const entry of deletes.sort(byMac)) ops.push({ op: 'bridge-fdb-delete', entry });
  for (const entry of replaces.sort(byMac)) ops.push({ op: 'bridge-fdb-replace', entry });
}

function planFdb(have: readonly FdbEntry[], want: readonly FdbEntry[], dev: string, ops: DataplaneOp[]): void {
  const wantKeys = new Set(want.map(fdbKey));
  const haveKeys = new Set(have.map(fdbKey));
  const wantUnicast = new Map<string, FdbEntry>();
  for (const e of want) if (e.mac !== FLOOD_MAC) wantUnicast.set(e.mac, e);
  const haveByMac = new Map<string, FdbEntry[]>();
  for (const e of have) haveByMac.set(e.mac, [...(haveByMac.get(e.mac) ?? []), e]);

  const deletes: FdbEntry[] = [];
  const appends: FdbEntry[] = [];
  const replaces: FdbEntry[] = [];
  for (const e of have) {
    if (e.mac === FLOOD_MAC) {
      if (!wantKeys.has(fdbKey(e))) deletes.push(e);
      continue;
    }
    const w = wantUnicast.get(e.mac);
    const entries = haveByMac.get(e.mac)!;
    // A wanted MAC with a single wrong destination is fixed by one replace; extra copies go.
    if (!w || (entries.length > 1 && !wantKeys.has(fdbKey(e)))) deletes.push(e);
  }
  for (const e of want) {
    if (haveKeys.has(fdbKey(e))) continue;
    if (e.mac === FLOOD_MAC) appends.push(e);
    else replaces.push(e);
  }
  for (const entry of deletes.sort(byKey)) ops.push({ op: 'fdb-delete', dev, entry });
  for (const entry of appends.sort(byKey)) ops.push({ op: 'fdb-append', dev, entry });
  for (const entry of replaces.sort(byKey)) ops.push({ op: 'fdb-replace', dev, entry });
}

export function plan(current: CurrentDataplane, desired: DesiredDataplane): DataplaneOp[] {
  const ops: DataplaneOp[] = [];
  planBridge(current, desired, ops);
  const fresh = planVxlan(current, desired, ops);
  const tapReady = planTap(current, desired, ops);
  planFdb(fresh ? [] : current.fdb, desiredFdb(desired), desired.vxlan.name, ops);
  planBridgeFdb(current, desired, fresh, tapReady, ops);
  return ops;
}

/**
 * What teardown removes: the vxlan device first (its FDB goes with it), then the bridge (its
 * static entries with it). Not the tap: it belongs to the relay and goes when the relay closes it.
 */
export function planTeardown(current: CurrentDataplane, names: { bridge: string; vxlan: string }): DataplaneOp[] {
  const ops: DataplaneOp[] = [];
  if (current.links.has(names.vxlan)) ops.push({ op: 'delete-link', name: names.vxlan, reason: 'teardown' });
  if (current.links.has(names.bridge)) ops.push({ op: 'delete-link', name: names.bridge, reason: 'teardown' });
  return ops;
}
