/**
 * Edge validation of the low-level names the data plane hands to the kernel: interface names,
 * MAC addresses, IPv4 addresses and CIDRs. Each parser takes `unknown` and either returns a
 * normalised value or throws ERR_INVALID_ARGUMENT; nothing unchecked reaches an `ip` argument.
 */
import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { LoomError } from '../core/errors.js';

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

export function parseIpv4(value: unknown): string {
  if (typeof value !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(value)) throw invalid(`invalid IPv4 address ${show(value)}`);
  return ipaddr.IPv4.parse(value).toString();
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

/** A host address with prefix length ("10.32.0.5/12"). Prefix 1..32; the address must be a dotted quad. */
export function parseIpv4Cidr(value: unknown): Ipv4Cidr {
  if (typeof value !== 'string') throw invalid('CIDR must be a string');
  const slash = value.indexOf('/');
  if (slash < 0 || value.length > 18) throw invalid(`invalid CIDR ${show(value)}: expected ADDRESS/PREFIX like 10.32.0.5/12`);
  const address = parseIpv4(value.slice(0, slash));
  const prefixText = value.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^[0-9]{1,2}$/.test(prefixText) || prefix < 1 || prefix > 32) throw invalid(`invalid prefix length in ${show(value)}`);
  const network = ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefix}`).toString();
  return { address, prefix, text: `${address}/${prefix}`, network: `${network}/${prefix}` };
}
