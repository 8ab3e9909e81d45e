/**
 * plan(current, desired): the ordered ops that turn what the kernel has into what the router wants.
 * Pure. Contract: applying the ops and reading the state back gives a state for which plan() is
 * empty; so apply(desired) is idempotent and safe to call again with the same config.
 * Ops come in dependency order: links first (bridge before the vxlan enslaved to it), then FDB
 * deletions before additions (so a peer moved between fast path and relay never has two paths).
 */
import { FLOOD_MAC, RELAY_IP, type CurrentDataplane, type CurrentLink, type DataplaneOp, type DesiredDataplane, type FdbEntry, type VxlanSpec } from './types.js';

export function fdbKey(e: FdbEntry): string {
  return `${e.mac}|${e.dst}|${e.port ?? ''}`;
}

function byKey(a: FdbEntry, b: FdbEntry): number {
  const ka = fdbKey(a);
  const kb = fdbKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The vxlan FDB the desired state implies: one flood entry per peer, one entry per remote MAC. */
export function desiredFdb(desired: DesiredDataplane): FdbEntry[] {
  const dstOf = new Map<string, { dst: string; port: number | null }>();
  for (const p of desired.peers) {
    dstOf.set(p.name, p.via === 'fastdp' ? { dst: p.underlayIp, port: null } : { dst: RELAY_IP, port: p.via.relayPort });
  }
  const out: FdbEntry[] = [];
  for (const p of desired.peers) out.push({ mac: FLOOD_MAC, ...dstOf.get(p.name)! });
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
  const { name, mtu } = desired.bridge;
  const link = current.links.get(name);
  if (link && link.kind === 'bridge') {
    if (link.mtu !== mtu) ops.push({ op: 'set-mtu', name, mtu });
    if (!link.up) ops.push({ op: 'set-up', name });
    return;
  }
  if (link) ops.push({ op: 'delete-link', name, reason: `${name} is a ${link.kind ?? 'plain'} device, not a bridge` });
  ops.push({ op: 'create-bridge', name, mtu }, { op: 'set-up', name });
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
    if (link.master !== master) ops.push({ op: 'set-master', name: want.name, master });
    if (!link.up) ops.push({ op: 'set-up', name: want.name });
    return false;
  }
  if (link) ops.push({ op: 'delete-link', name: want.name, reason: mismatch! });
  ops.push(
    { op: 'create-vxlan', name: want.name, vni: want.vni, port: want.port, mtu: want.mtu, localIp: want.localIp },
    { op: 'set-local-bypass', name: want.name, enabled: false },
    { op: 'set-master', name: want.name, master },
    { op: 'set-up', name: want.name },
  );
  return true;
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
  planFdb(fresh ? [] : current.fdb, desiredFdb(desired), desired.vxlan.name, ops);
  return ops;
}

/** What teardown removes: the vxlan device first (its FDB goes with it), then the bridge. */
export function planTeardown(current: CurrentDataplane, names: { bridge: string; vxlan: string }): DataplaneOp[] {
  const ops: DataplaneOp[] = [];
  if (current.links.has(names.vxlan)) ops.push({ op: 'delete-link', name: names.vxlan, reason: 'teardown' });
  if (current.links.has(names.bridge)) ops.push({ op: 'delete-link', name: names.bridge, reason: 'teardown' });
  return ops;
}
