/**
 * IPv4 addresses as unsigned 32-bit numbers, and CIDR blocks over them. All IPAM arithmetic
 * works on these numbers; strings exist only at the edge (config, API, status).
 */
import { type Ipv4Address, formatIpv4Address, networkOf, parseCidr as parseCoreCidr, parseIpv4Address, parseNetworkCidr } from '../core/net.js';

/** An IPv4 address as an unsigned 32-bit integer (0 ..= 0xffffffff). */
export type Address = number;

/** A CIDR block: `start` is the network address (host bits zero), `size` = 2^(32-prefix). */
export interface Cidr {
  readonly start: Address;
  readonly prefix: number;
  readonly size: number;
}

/** Dotted quad; leading zeros accepted ("010.0.0.1" = 10.0.0.1), as IPAM always has. */
export function parseAddress(value: unknown): Address {
  return parseIpv4Address(value, { leadingZeros: true });
}

export function formatAddress(a: Address): string {
  return formatIpv4Address(a as Ipv4Address);
}

export function cidrOf(start: Address, prefix: number): Cidr {
  return { start, prefix, size: 2 ** (32 - prefix) };
}

/** Parses a block "a.b.c.d/n" (prefix 0..32, leading zeros accepted): host bits must be zero. */
export function parseCidr(value: unknown): Cidr {
  const network = parseNetworkCidr(value, { leadingZeros: true });
  return cidrOf(network.address, network.prefix);
}

/** Parses "a.b.c.d/n" (prefix 0..32, leading zeros accepted) into the address and its enclosing block (host bits may be set). */
export function parseAddressInCidr(value: unknown): { address: Address; cidr: Cidr } {
  const parsed = parseCoreCidr(value, { leadingZeros: true });
  const network = networkOf(parsed);
  return { address: parsed.address, cidr: cidrOf(network.address, network.prefix) };
}

export function formatCidr(c: Cidr): string {
  return `${formatAddress(c.start)}/${c.prefix}`;
}

/** One past the last address of the block. May be 2^32. */
export function cidrEnd(c: Cidr): number {
  return c.start + c.size;
}

export function cidrContains(c: Cidr, a: Address): boolean {
  return a >= c.start && a < c.start + c.size;
}

export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.start >= outer.start && inner.start + inner.size <= outer.start + outer.size;
}

export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.start === b.start && a.prefix === b.prefix;
}

/**
 * Addresses of the block a container may get: the network and broadcast addresses are excluded
 * for blocks of 4 or more addresses (/30 and wider); /31 and /32 have no such addresses.
 * Returned as a half-open interval [lo, hi).
 */
export function usableInterval(c: Cidr): { lo: number; hi: number } {
  if (c.size >= 4) return { lo: c.start + 1, hi: c.start + c.size - 1 };
  return { lo: c.start, hi: c.start + c.size };
}
