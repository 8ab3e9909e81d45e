/**
 * The data plane's fixed names and numbers, and the one segment MTU.
 *
 * MTU: every interface on the Loom segment (bridge, vxlan device, each container's ethwe) gets
 * the same MTU, because one Ethernet segment cannot have a per-destination MTU: a container does
 * not know whether a frame will take the fast path or the relay. The two paths cost differently
 * on a 1500-byte underlay:
 *
 * - kernel VXLAN (fast path): outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 = 50, so 1450;
 * - the sealed relay, frames from the tap: outer IP 20 + UDP 8 + relay header 30 + tag 16 +
 *   virtio-net header 10 + inner Ethernet 14 = 98, so 1402.
 *
 * The default follows which path carries most traffic. With a password, every peer outside
 * `--trusted-subnets` goes through the relay, sealed, so the segment gets 1402 and no full-size
 * frame fragments on the underlay. Without one, the fast path is the norm and gets its full 1450;
 * the few full-size frames that go relayed leave as two IP fragments, which costs little. `--mtu` (env LOOM_MTU) overrides either, e.g. for
 * a jumbo-frame underlay. The relay itself answers a DF frame over the segment MTU with ICMP
 * fragmentation-needed, so a container with a larger MTU adapts.
 *
 * The tap: the relay's TAP device on the bridge (tap mode). Its own MTU is the largest a tap
 * takes, so the bridge hands the relay every frame and the relay alone enforces the segment MTU;
 * its GSO limit keeps a TSO super-frame plus the relay's framing within one UDP datagram.
 */
import { LoomError } from '../../core/errors.js';

/** 'LOO' in ASCII: one fixed VNI for the one segment. */
export const LOOM_VNI = 0x4c4f4f;
export const VXLAN_PORT = 4789;
export const BRIDGE_NAME = 'loom';
export const VXLAN_NAME = 'vx-loom';
export const TAP_NAME = 'tap-loom';
/** The tap's own MTU: the largest a tap device accepts. */
export const TAP_MTU = 65521;
/**
 * Largest TSO super-frame the kernel hands the relay: with the relay's framing (virtio-net header,
 * relay header, tag: well under 507 bytes) it fits one UDP datagram (at most 65,507 bytes).
 */
export const TAP_GSO_MAX_SIZE = 65000;
/** The segment MTU for kernel VXLAN on a 1500-byte underlay: 1500 - 50. */
export const FASTDP_MTU = 1450;
/** The segment MTU for the sealed relay on a 1500-byte underlay: 1500 - 98 (see above). */
export const SEALED_MTU = 1402;
export const MIN_MTU = 576;
/** Kernel VXLAN overhead on an IPv4 underlay: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

export interface DataplaneSettings {
  bridge: string;
  vxlan: string;
  /** The relay's tap (used when the relay runs in tap mode); '' for none. */
  tap: string;
  vni: number;
  port: number;
  /** The segment MTU (bridge, vxlan device, containers). */
  mtu: number;
}

export const DEFAULT_SETTINGS: Readonly<DataplaneSettings> = { bridge: BRIDGE_NAME, vxlan: VXLAN_NAME, tap: TAP_NAME, vni: LOOM_VNI, port: VXLAN_PORT, mtu: FASTDP_MTU };

/** The segment MTU when none is configured: SEALED_MTU with a password, FASTDP_MTU without. */
export function defaultSegmentMtu(encrypted: boolean): number {
  return encrypted ? SEALED_MTU : FASTDP_MTU;
}

/** An MTU from a flag or environment variable (text or number). ERR_INVALID_ARGUMENT outside 576..8950. */
export function parseSegmentMtu(value: unknown, what = '--mtu'): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{3,5}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < MIN_MTU || n > 9000 - VXLAN_OVERHEAD) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what} "${String(value).slice(0, 20)}": expected ${MIN_MTU}-${9000 - VXLAN_OVERHEAD}`);
  return n;
}

/** The segment MTU from a config value (wins), then env LOOM_MTU, then defaultSegmentMtu(encrypted). */
export function segmentMtu(configured: unknown, env: NodeJS.ProcessEnv, encrypted: boolean): number {
  if (configured !== undefined) return parseSegmentMtu(configured);
  const fromEnv = env['LOOM_MTU'];
  return fromEnv === undefined || fromEnv === '' ? defaultSegmentMtu(encrypted) : parseSegmentMtu(fromEnv, 'LOOM_MTU');
}
