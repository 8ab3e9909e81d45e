/**
 * Edge validation of the low-level names the data plane hands to the kernel: interface names,
 * MAC addresses, IPv4 addresses and CIDRs. Each parser takes `unknown` and either returns a
 * normalised value or throws ERR_INVALID_ARGUMENT; nothing unchecked reaches an `ip` argument.
 */
import { createHash } from 'node:crypto';
import { LoomError } from '../core/errors.js';
import { type Cidr, formatCidr, formatIpv4Address, networkOf, parseCidr, parseIpv4Address } from '../core/net.js';

function invalid(message: string): LoomError {
  return new LoomError('ERR_INVALID_ARGUMENT', message);
}

function show(value: unknown): string {
  return JSON.stringify(value)?.slice(0, 40) ?? String(value);
}

/** Linux interface names: 1-15 bytes, no '/', ':', whitespace; not '.' or '..'; not a leading '-'. */
const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
export function parseInterfaceName(value: unknown): string {
  if (typeof value !== 'string' || !IFNAME_RE.test(value) || value === '.' || value === '..') throw invalid(`invalid interface name ${show(value)}`);
  return value;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** A unicast MAC, lower case. Multicast/broadcast and all-zero are refused. */
export function parseUnicastMac(value: unknown): string {
  if (typeof value !== 'string') throw invalid('MAC address must be a string');
  const mac = value.toLowerCase();
  if (!MAC_RE.test(mac)) throw invalid(`invalid MAC address ${show(value)}: expected six hex pairs like 02:42:ac:11:00:02`);
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) throw invalid(`MAC address ${mac} is multicast`);
  if (mac === '00:00:00:00:00:00') throw invalid('MAC address must not be all zero');
  return mac;
}

/**
 * A MAC derived from `seed` (SHA-256): the same seed always gives the same MAC, different seeds
 * spread evenly. Locally administered bit set, multicast bit clear.
 */
export function macFromSeed(seed: string): string {
  const b = createHash('sha256').update(seed).digest().subarray(0, 6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A dotted quad without leading zeros, in normal form. */
export function parseIpv4(value: unknown): string {
  return formatIpv4Address(parseIpv4Address(value));
}

export interface Ipv4Cidr {
  /** The host address, e.g. "10.32.0.5". */
  address: string;
  prefix: number;
  /** "10.32.0.5/12" */
  text: string;
  /** The network, e.g. "10.32.0.0/12". */
  network: string;
}

/** A host address with prefix length ("10.32.0.5/12"). Prefix 1..32 (the data plane's rule; core allows 0); the address must be a dotted quad. */
export function parseIpv4Cidr(value: unknown): Ipv4Cidr {
  return ipv4CidrOf(parseCidr(value, { minPrefix: 1 }));
}

/** The data plane's text forms of an already parsed CIDR (prefix 1..32). */
export function ipv4CidrOf(cidr: Cidr): Ipv4Cidr {
  return { address: formatIpv4Address(cidr.address), prefix: cidr.prefix, text: formatCidr(cidr), network: formatCidr(networkOf(cidr)) };
}
