/**
 * The IPAM options of `loom launch` (Weave's names), validated at the edge. Imported by the
 * launch command: keep it free of SQLite, sockets and the mesh.
 */
import { LoomError } from '../core/errors.js';
import { DEFAULT_IPALLOC_RANGE } from '../core/net.js';
import { parseBootstrap } from './bootstrap.js';
import { cidrWithin, formatCidr, parseCidr } from './cidr.js';

export { DEFAULT_IPALLOC_RANGE };

export interface IpamLaunchConfig {
  /** Canonical "a.b.c.d/n"; every peer must use the same. */
  range: string;
  /** Canonical; undefined = the whole range. */
  defaultSubnet: string | undefined;
  /** As typed (validated): `consensus[=N]`, `seed=NAME,...` or `observer`; default `consensus`. */
  init: string;
}

/** As commander hands them over. */
export interface RawIpamOptions {
  ipallocRange?: string;
  ipallocDefaultSubnet?: string;
  ipallocInit?: string;
}

/** Throws ERR_INVALID_ARGUMENT naming the option. */
export function parseIpamOptions(raw: RawIpamOptions): IpamLaunchConfig {
  const range = named('--ipalloc-range', () => parseCidr(raw.ipallocRange ?? DEFAULT_IPALLOC_RANGE));
  if (range.prefix > 30) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --ipalloc-range ${formatCidr(range)}: use /30 or wider`);
  let defaultSubnet: string | undefined;
  if (raw.ipallocDefaultSubnet !== undefined) {
    const subnet = named('--ipalloc-default-subnet', () => parseCidr(raw.ipallocDefaultSubnet));
    if (!cidrWithin(subnet, range)) throw new LoomError('ERR_INVALID_ARGUMENT', `--ipalloc-default-subnet ${formatCidr(subnet)} is not inside --ipalloc-range ${formatCidr(range)}`);
    defaultSubnet = formatCidr(subnet);
  }
  const init = raw.ipallocInit ?? 'consensus';
  named('--ipalloc-init', () => parseBootstrap(init));
  return { range: formatCidr(range), defaultSubnet, init };
}

/** The launch arguments that reproduce `config` (for the re-executed background daemon). */
export function ipamArgs(config: IpamLaunchConfig): string[] {
  return [
    '--ipalloc-range', config.range,
    ...(config.defaultSubnet === undefined ? [] : ['--ipalloc-default-subnet', config.defaultSubnet]),
    '--ipalloc-init', config.init,
  ];
}

function named<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof LoomError)) throw err;
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${option}: ${err.message}`);
  }
}
