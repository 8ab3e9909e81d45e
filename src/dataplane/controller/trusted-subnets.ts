/**
 * `--trusted-subnets CIDR,...`: underlay networks the user trusts (a private LAN). With a password,
 * peers whose underlay address is inside one of them still take the kernel fast path, unencrypted,
 * as Weave Net's trusted subnets do; everyone else goes through the sealed relay.
 */
import ipaddr from 'ipaddr.js';
import { LoomError } from '../../core/errors.js';

export interface TrustedSubnet {
  /** Network address as a 32-bit unsigned number, host bits cleared. */
  network: number;
  prefix: number;
  /** "a.b.c.d/n", normalised. */
  text: string;
}

const MAX_SUBNETS = 64;

function ipv4Number(bytes: number[]): number {
  return (((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0);
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "10.0.0.0/8,192.168.1.0/24" (or a list) -> subnets. ERR_INVALID_ARGUMENT naming the bad entry. */
export function parseTrustedSubnets(value: string | readonly string[]): TrustedSubnet[] {
  const items = (typeof value === 'string' ? value.split(',') : value).map((s) => s.trim()).filter((s) => s !== '');
  if (items.length > MAX_SUBNETS) throw new LoomError('ERR_INVALID_ARGUMENT', `too many --trusted-subnets (at most ${MAX_SUBNETS})`);
  return items.map((item) => {
    let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
    try {
      parsed = ipaddr.parseCIDR(item);
    } catch {
      throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --trusted-subnets entry "${item.slice(0, 50)}": expected IPv4 CIDR like 10.0.0.0/8`);
    }
    const [addr, prefix] = parsed;
    if (addr.kind() !== 'ipv4') throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --trusted-subnets entry "${item.slice(0, 50)}": only IPv4 underlays are supported`);
    const network = (ipv4Number((addr as ipaddr.IPv4).octets) & maskOf(prefix)) >>> 0;
    const text = `${[network >>> 24, (network >>> 16) & 255, (network >>> 8) & 255, network & 255].join('.')}/${prefix}`;
    return { network, prefix, text };
  });
}

/** True if IPv4 `ip` lies in one of `subnets`; false for anything unparsable. */
export function inTrustedSubnet(ip: string, subnets: readonly TrustedSubnet[]): boolean {
  if (subnets.length === 0 || !ipaddr.IPv4.isValidFourPartDecimal(ip)) return false;
  const n = ipv4Number(ipaddr.IPv4.parse(ip).octets);
  return subnets.some((s) => ((n & maskOf(s.prefix)) >>> 0) === s.network);
}
