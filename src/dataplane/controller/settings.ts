/**
 * The data plane's fixed names and numbers, and the one segment MTU.
 *
 * MTU: every interface on the Loom segment (bridge, vxlan device, each container's ethwe) gets
 * the same MTU, because one Ethernet segment cannot have a per-destination MTU: a container does
 * not know whether a frame will take the fast path or the relay. Kernel VXLAN costs 50 bytes
 * (1450 on a 1500 underlay); the sealed user-space relay costs 96 (outer IP 20 + UDP 8 + relay
 * header 30 + tag 16 + VXLAN 8 + Ethernet 14: 1404, see relayContainerMtu in ../relay/wire.ts).
 * The default, 1404, works on both paths over a 1500-byte underlay. `--mtu` (env LOOM_MTU)
 * overrides it: 1450 for a mesh that never uses the relay, more on a jumbo-frame underlay.
 */
import { LoomError } from '../../core/errors.js';

/** 'LOO' in ASCII: one fixed VNI for the one segment. */
export const LOOM_VNI = 0x4c4f4f;
export const VXLAN_PORT = 4789;
export const BRIDGE_NAME = 'loom';
export const VXLAN_NAME = 'vx-loom';
export const DEFAULT_MTU = 1404;
export const MIN_MTU = 576;
/** Kernel VXLAN overhead on an IPv4 underlay: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

export interface DataplaneSettings {
  bridge: string;
  vxlan: string;
  vni: number;
  port: number;
  /** The segment MTU (bridge, vxlan device, containers). */
  mtu: number;
}

export const DEFAULT_SETTINGS: Readonly<DataplaneSettings> = { bridge: BRIDGE_NAME, vxlan: VXLAN_NAME, vni: LOOM_VNI, port: VXLAN_PORT, mtu: DEFAULT_MTU };

/** An MTU from a flag or environment variable (text or number). ERR_INVALID_ARGUMENT outside 576..9000. */
export function parseSegmentMtu(value: unknown, what = '--mtu'): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{3,5}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < MIN_MTU || n > 9000 - VXLAN_OVERHEAD) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what} "${String(value).slice(0, 20)}": expected ${MIN_MTU}-${9000 - VXLAN_OVERHEAD}`);
  return n;
}

/** The segment MTU from a config value (wins), then env LOOM_MTU, then DEFAULT_MTU. */
export function segmentMtu(configured: unknown, env: NodeJS.ProcessEnv = process.env): number {
  if (configured !== undefined) return parseSegmentMtu(configured);
  const fromEnv = env['LOOM_MTU'];
  return fromEnv === undefined || fromEnv === '' ? DEFAULT_MTU : parseSegmentMtu(fromEnv, 'LOOM_MTU');
}
