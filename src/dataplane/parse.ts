/**
 * Reading the kernel's state from iproute2's JSON (`ip -j -d link show`, `bridge -j fdb show dev X`,
 * `bridge -j fdb show br B`) into CurrentDataplane. Pure. Output of iproute2 6.1 and 6.15 both parse; unknown fields are
 * ignored; text that is not the expected JSON raises ERR_OS_COMMAND (the tool misbehaved).
 */
import { LoomError } from '../core/errors.js';
import type { BridgeFdbEntry, CurrentLink, CurrentVxlanInfo, FdbEntry } from './types.js';

type Json = Record<string, unknown>;

function parseJsonArray(text: string, what: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() === '' ? '[]' : text);
  } catch (err) {
    throw new LoomError('ERR_OS_COMMAND', `cannot parse ${what} output as JSON`, { cause: err });
  }
  if (!Array.isArray(value)) throw new LoomError('ERR_OS_COMMAND', `${what} output is not a JSON array`);
  return value;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function parseVxlanInfo(data: Json): CurrentVxlanInfo {
  const local = typeof data['local'] === 'string' ? data['local'] : null;
  // iproute2 >= 6.5 prints "localbypass"; older ones do not (then netlink is asked instead).
  const bypass = typeof data['localbypass'] === 'boolean' ? data['localbypass'] : null;
  return { vni: num(data['id']) ?? -1, port: num(data['port']) ?? -1, localIp: local, learning: data['learning'] === true, localBypass: bypass };
}

/** Links from `ip -j -d link show`, keeping only the names in `wanted`. */
export function parseLinks(text: string, wanted: ReadonlySet<string>): Map<string, CurrentLink> {
  const links = new Map<string, CurrentLink>();
  for (const item of parseJsonArray(text, 'ip -j link')) {
    if (!isObject(item) || typeof item['ifname'] !== 'string' || !wanted.has(item['ifname'])) continue;
    const name = item['ifname'];
    const info = isObject(item['linkinfo']) ? item['linkinfo'] : null;
    const kind = info && typeof info['info_kind'] === 'string' ? info['info_kind'] : null;
    const data = info && isObject(info['info_data']) ? info['info_data'] : {};
    // Present only on a port of a bridge (info_slave_kind "bridge").
    const port = info && isObject(info['info_slave_data']) ? info['info_slave_data'] : {};
    const flags = Array.isArray(item['flags']) ? item['flags'] : [];
    links.set(name, {
      name,
      kind,
      mtu: num(item['mtu']) ?? 0,
      address: typeof item['address'] === 'string' ? item['address'].toLowerCase() : null,
      up: flags.includes('UP'),
      master: typeof item['master'] === 'string' ? item['master'] : null,
      vxlan: kind === 'vxlan' ? parseVxlanInfo(data) : null,
      isolated: typeof port['isolated'] === 'boolean' ? port['isolated'] : null,
      gsoMaxSize: num(item['gso_max_size']),
    });
  }
  return links;
}

/** The vxlan device's own remote entries (those with a dst) from `bridge -j fdb show dev X`. */
export function parseFdb(text: string): FdbEntry[] {
  const entries: FdbEntry[] = [];
  for (const item of parseJsonArray(text, 'bridge -j fdb')) {
    if (!isObject(item) || typeof item['mac'] !== 'string' || typeof item['dst'] !== 'string') continue;
    entries.push({ mac: item['mac'].toLowerCase(), dst: item['dst'], port: num(item['port']) });
  }
  return entries;
}

/**
 * The static entries of a bridge's own table on the ports in `devs`, from `bridge -j fdb show br B`.
 * That output also lists the ports' own tables ("self", e.g. the vxlan device's dst entries), the
 * ports' and the bridge's own addresses (state "permanent") and learned entries (no state): all
 * skipped, so only what the data plane pins (static, `master` the bridge) remains.
 */
export function parseBridgeFdb(text: string, devs: ReadonlySet<string>): BridgeFdbEntry[] {
  const entries: BridgeFdbEntry[] = [];
  for (const item of parseJsonArray(text, 'bridge -j fdb')) {
    if (!isObject(item) || typeof item['mac'] !== 'string' || typeof item['ifname'] !== 'string') continue;
    if (item['state'] !== 'static' || typeof item['master'] !== 'string' || !devs.has(item['ifname'])) continue;
    entries.push({ mac: item['mac'].toLowerCase(), dev: item['ifname'] });
  }
  return entries;
}
