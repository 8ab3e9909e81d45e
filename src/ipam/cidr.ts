/**
 * IPv4 addresses as unsigned 32-bit numbers, and CIDR blocks over them. All IPAM arithmetic
 * works on these numbers; strings exist only at the edge (config, API, status).
 */
import { LoomError } from '../core/errors.js';

/** An IPv4 address as an unsigned 32-bit integer (0 ..= 0xffffffff). */
export type Address = number;

/** A CIDR block: `start` is the network address (host bits zero), `size` = 2^(32-prefix). */
export interface Cidr {
  readonly start: Address;
  readonly prefix: number;
  readonly size: number;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseAddress(value: unknown): Address {
  if (typeof value !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', 'address must be a string');
  const m = IPV4_RE.exec(value);
  if (!m) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid IPv4 address "${value.slice(0, 40)}"`);
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid IPv4 address "${value.slice(0, 40)}"`);
    n = n * 256 + octet;
  }
  return n;
}

export function formatAddress(a: Address): string {
  return `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export function cidrOf(start: Address, prefix: number): Cidr {
  return { start, prefix, size: 2 ** (32 - prefix) };
}

/**
 * Parses "a.b.c.d/n". With `strict` the host bits must be zero (a range or subnet); without it
 * the address is kept and the block is returned separately by `parseAddressInCidr`.
 */
export function parseCidr(value: unknown): Cidr {
  const { address, cidr } = parseAddressInCidr(value);
  if (address !== cidr.start) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `CIDR "${String(value).slice(0, 40)}" has host bits set; did you mean ${formatCidr(cidr)}?`);
  }
  return cidr;
}

/** Parses "a.b.c.d/n" into the address and its enclosing block (host bits may be set). */
export function parseAddressInCidr(value: unknown): { address: Address; cidr: Cidr } {
  if (typeof value !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', 'CIDR must be a string');
  const slash = value.indexOf('/');
  if (slash < 0) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid CIDR "${value.slice(0, 40)}": expected a.b.c.d/n`);
  const address = parseAddress(value.slice(0, slash));
  const prefixText = value.slice(slash + 1);
  if (!/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid prefix length in "${value.slice(0, 40)}"`);
  }
  const prefix = Number(prefixText);
  const size = 2 ** (32 - prefix);
  const start = address - (address % size);
  return { address, cidr: { start, prefix, size } };
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
