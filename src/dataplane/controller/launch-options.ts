/**
 * The data plane's part of `loom launch`: `--dataplane on|off|auto`, `--mtu N`, `--no-fastdp`,
 * `--trusted-subnets CIDR,...`, `--no-masq`. Parsed once at the edge; `dataplaneArgs` gives them back as flags
 * for the re-executed foreground daemon.
 */
import { existsSync } from 'node:fs';
import { LoomError } from '../../core/errors.js';
import { defaultSegmentMtu, parseSegmentMtu } from './settings.js';
import { parseTrustedSubnets } from './trusted-subnets.js';

/**
 * How relayed frames meet the kernel: `tap` (the relay's TAP device on the bridge) or
 * `vxlan-port` (kernel VXLAN FDB entries to one local UDP port per peer; the fallback).
 */
export type RelayPath = 'tap' | 'vxlan-port';

/**
 * on: always; off: never (no bridge, no relay); auto (default): on, except where it cannot or must
 * not run (see dataplaneEnabled in subsystem.ts).
 */
export type DataplaneMode = 'on' | 'off' | 'auto';

export interface DataplaneLaunchConfig {
  mode: DataplaneMode;
  /** The segment MTU (bridge, vxlan device, every container). */
  mtu: number;
  /** False with `--no-fastdp`: every peer through the relay. */
  fastdp: boolean;
  /** Normalised "a.b.c.d/n" entries of `--trusted-subnets`. */
  trustedSubnets: string[];
  /**
   * False with `--no-masq`: containers' traffic to the outside leaves unmasqueraded (the host
   * still forwards it; the outside then needs a route back to the Loom range). See egress.ts.
   */
  masquerade: boolean;
  /** LOOM_RELAY_PATH (tap | vxlan-port); default tap where /dev/net/tun exists. */
  relayPath: RelayPath;
  /**
   * True when the node test runner started us (NODE_TEST_CONTEXT is set): `auto` then keeps the
   * data plane out of the host's initial namespace (see dataplaneEnabled in subsystem.ts).
   */
  underTestRunner: boolean;
}

export interface RawDataplaneOptions {
  dataplane?: string;
  mtu?: string;
  /** Commander's `--no-fastdp` sets this to false. */
  fastdp?: boolean;
  trustedSubnets?: string;
  /** Commander's `--no-masq` sets this to false. */
  masq?: boolean;
}

const MODES: readonly DataplaneMode[] = ['on', 'off', 'auto'];

/**
 * Reads LOOM_DATAPLANE, LOOM_MTU, LOOM_RELAY_PATH and NODE_TEST_CONTEXT (the environment is read
 * nowhere else in the data plane). Flags win over LOOM_DATAPLANE and LOOM_MTU; without either, the MTU is defaultSegmentMtu:
 * `encrypted` (the mesh has a password) decides it. Throws ERR_INVALID_ARGUMENT naming the option.
 */
export function parseDataplaneOptions(
  raw: RawDataplaneOptions,
  env: NodeJS.ProcessEnv,
  encrypted: boolean,
  tunExists: () => boolean = () => existsSync('/dev/net/tun'),
): DataplaneLaunchConfig {
  const modeText = raw.dataplane ?? (env['LOOM_DATAPLANE'] || 'auto');
  if (!(MODES as readonly string[]).includes(modeText)) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${raw.dataplane === undefined ? 'LOOM_DATAPLANE' : '--dataplane'} "${modeText.slice(0, 20)}": on, off or auto`);
  }
  const mtuText = raw.mtu ?? (env['LOOM_MTU'] || undefined);
  return {
    mode: modeText as DataplaneMode,
    mtu: mtuText === undefined ? defaultSegmentMtu(encrypted) : parseSegmentMtu(mtuText, raw.mtu === undefined ? 'LOOM_MTU' : '--mtu'),
    fastdp: raw.fastdp ?? true,
    trustedSubnets: parseTrustedSubnets(raw.trustedSubnets ?? '').map((s) => s.text),
    masquerade: raw.masq ?? true,
    relayPath: parseRelayPath(env['LOOM_RELAY_PATH'], tunExists),
    underTestRunner: env['NODE_TEST_CONTEXT'] !== undefined,
  };
}

function parseRelayPath(value: string | undefined, tunExists: () => boolean): RelayPath {
  if (value === 'tap' || value === 'vxlan-port') return value;
  if (value !== undefined && value !== '') throw new LoomError('ERR_INVALID_ARGUMENT', `invalid LOOM_RELAY_PATH "${value.slice(0, 20)}": tap or vxlan-port`);
  return tunExists() ? 'tap' : 'vxlan-port';
}

export function dataplaneArgs(config: DataplaneLaunchConfig): string[] {
  return [
    '--dataplane', config.mode,
    '--mtu', String(config.mtu),
    ...(config.fastdp ? [] : ['--no-fastdp']),
    ...(config.trustedSubnets.length > 0 ? ['--trusted-subnets', config.trustedSubnets.join(',')] : []),
    ...(config.masquerade ? [] : ['--no-masq']),
  ];
}
