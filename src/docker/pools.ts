/**
 * Docker IPAM pools on Loom's address range. A pool is a subnet (`--subnet`, or Loom's default
 * subnet when the user gives none) and the part of it addresses are allocated from (`--ip-range`,
 * or the whole subnet). The pool id carries both, so it needs no state and survives restarts:
 *
 *   loom:default                   no --subnet: Loom's default subnet
 *   loom:10.40.0.0/24              --subnet, no --ip-range
 *   loom:10.40.0.0/24:10.40.0.128/25
 *
 * Without --subnet Docker is told the pool is 0.0.0.0/0: for a pool it did not ask for, Docker
 * (local scope) rejects any that overlaps a route of its namespace, and asks again, forever; the
 * loom bridge routes Loom's range there once the host has an address. 0.0.0.0/0 is the one
 * answer Docker does not check. Addresses still come with the default subnet's prefix.
 */
import { LoomError } from '../core/errors.js';
import { cidrSize, formatCidr, formatIpv4Address, ipv4FromNumber, parseNetworkCidr, type NetworkCidr } from '../core/net.js';

export interface DockerPool {
  /** True for the pool of a network created without --subnet. */
  isDefault?: boolean;
  subnet: NetworkCidr;
  /** Where automatic addresses come from: the --ip-range, or the subnet itself. */
  range: NetworkCidr;
}

const POOL_PREFIX = 'loom:';

export const DEFAULT_POOL_ID = `${POOL_PREFIX}default`;
/** What Docker is told a network without --subnet spans (see above). */
export const UNCHECKED_POOL = '0.0.0.0/0';

export function encodePoolId(pool: DockerPool): string {
  if (pool.isDefault) return DEFAULT_POOL_ID;
  const subnet = formatCidr(pool.subnet);
  const range = formatCidr(pool.range);
  return range === subnet ? `${POOL_PREFIX}${subnet}` : `${POOL_PREFIX}${subnet}:${range}`;
}

/** ERR_NOT_FOUND for an id Loom never made. */
export function decodePoolId(id: unknown, defaultSubnet: NetworkCidr): DockerPool {
  if (id === DEFAULT_POOL_ID) return { isDefault: true, subnet: defaultSubnet, range: defaultSubnet };
  if (typeof id !== 'string' || !id.startsWith(POOL_PREFIX) || id.length > 100) throw new LoomError('ERR_NOT_FOUND', `unknown pool id ${JSON.stringify(String(id).slice(0, 60))}`);
  const [subnetText, rangeText, extra] = id.slice(POOL_PREFIX.length).split(':');
  try {
    if (extra !== undefined) throw new Error('too many parts');
    const subnet = parseNetworkCidr(subnetText);
    const range = rangeText === undefined ? subnet : parseNetworkCidr(rangeText);
    if (!within(range, subnet)) throw new Error('range outside subnet');
    return { subnet, range };
  } catch (err) {
    throw new LoomError('ERR_NOT_FOUND', `unknown pool id ${JSON.stringify(id.slice(0, 60))}`, { cause: err });
  }
}

/** True when block `inner` lies inside block `outer`. */
export function within(inner: NetworkCidr, outer: NetworkCidr): boolean {
  return inner.prefix >= outer.prefix && inner.address >= outer.address && inner.address + cidrSize(inner.prefix) <= outer.address + cidrSize(outer.prefix);
}

/** The last address of a block, as text. */
export function lastAddress(block: NetworkCidr): string {
  return formatIpv4Address(ipv4FromNumber(block.address + cidrSize(block.prefix) - 1));
}

/**
 * The pool for Docker's RequestPool: `pool` (--subnet) or `defaultSubnet`, with `subPool`
 * (--ip-range) inside it. `inRange(cidr)` says whether an address lies in Loom's range; a subnet
 * reaching outside it is refused (its addresses could collide with other hosts' containers).
 */
export function parseRequestedPool(pool: string, subPool: string, defaultSubnet: NetworkCidr, range: string, inRange: (cidr: string) => boolean): DockerPool {
  if (pool === '' && subPool !== '') throw new LoomError('ERR_INVALID_ARGUMENT', '--ip-range needs --subnet');
  if (pool === '') return { isDefault: true, subnet: defaultSubnet, range: defaultSubnet };
  const subnet = parseNetworkCidr(pool, { minPrefix: 1 });
  const first = `${formatIpv4Address(subnet.address)}/32`;
  const last = `${lastAddress(subnet)}/32`;
  if (!inRange(first) || !inRange(last)) throw new LoomError('ERR_INVALID_ARGUMENT', `subnet ${formatCidr(subnet)} is not inside Loom's range ${range}: choose a --subnet inside it`);
  if (subPool === '') return { subnet, range: subnet };
  const ipRange = parseNetworkCidr(subPool, { minPrefix: 1 });
  if (!within(ipRange, subnet)) throw new LoomError('ERR_INVALID_ARGUMENT', `--ip-range ${formatCidr(ipRange)} is not inside --subnet ${formatCidr(subnet)}`);
  return { subnet, range: ipRange };
}
