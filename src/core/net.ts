/**
 * Network values, parsed once at the edge: IPv4 addresses, CIDRs (an address with a prefix, the
 * network/host distinction in the type), host:port pairs, and the default allocation range.
 * Every parser takes `unknown` and returns a typed value or throws ERR_INVALID_ARGUMENT; every
 * formatter is its inverse (parse(format(x)) = x). Dependency-free, like the rest of core.
 */
import { LoomError } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** An IPv4 address as an unsigned 32-bit integer (0 ..= 0xffffffff). */
export type Ipv4Address = Brand<number, 'Ipv4Address'>;

/**
 * An address with a prefix length, as "10.32.0.5/12" says it: `address` may have host bits set
 * (an interface address). See `NetworkCidr` for a block.
 */
export interface Cidr {
  readonly address: Ipv4Address;
  readonly prefix: number;
}

/** A CIDR block: the address is the network address (host bits zero). */
export type NetworkCidr = Brand<Cidr, 'NetworkCidr'>;

/** "host:port": host is an IPv4 address, a DNS name, or an IPv6 address written without brackets. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** The default allocation range of IPAM (as Weave Net's). */
export const DEFAULT_IPALLOC_RANGE = '10.32.0.0/12';

function invalid(message: string): LoomError {
  return new LoomError('ERR_INVALID_ARGUMENT', message);
}

function shown(value: unknown): string {
  return JSON.stringify(value)?.slice(0, 60) ?? String(value);
}

export interface Ipv4ParseOptions {
  /** Accept octets with leading zeros ("010.0.0.1" = 10.0.0.1). Default false. */
  readonly leadingZeros?: boolean;
}

const OCTET_STRICT_RE = /^(?:0|[1-9]\d{0,2})$/;
const OCTET_LENIENT_RE = /^\d{1,3}$/;

/** Parses a dotted quad "a.b.c.d" (each 0..255). */
export function parseIpv4Address(value: unknown, options: Ipv4ParseOptions = {}): Ipv4Address {
  if (typeof value !== 'string') throw invalid('IPv4 address must be a string');
  const parts = value.length <= 15 ? value.split('.') : [];
  if (parts.length !== 4) throw invalid(`invalid IPv4 address ${shown(value)}`);
  const octetRe = options.leadingZeros === true ? OCTET_LENIENT_RE : OCTET_STRICT_RE;
  let n = 0;
  for (const part of parts) {
    const octet = Number(part);
    if (!octetRe.test(part) || octet > 255) throw invalid(`invalid IPv4 address ${shown(value)}`);
    n = n * 256 + octet;
  }
  return n as Ipv4Address;
}

/** True when `value` is a dotted quad without leading zeros. */
export function isIpv4Address(value: unknown): value is string {
  try {
    parseIpv4Address(value);
    return true;
  } catch {
    return false;
  }
}

/** An unsigned 32-bit integer as an address; throws ERR_INVALID_ARGUMENT when out of range. */
export function ipv4FromNumber(n: number): Ipv4Address {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw invalid(`IPv4 address number out of range: ${n}`);
  return n as Ipv4Address;
}

export function formatIpv4Address(a: Ipv4Address): string {
  return `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export interface CidrParseOptions extends Ipv4ParseOptions {
  /** The smallest prefix length accepted. Default 0. */
  readonly minPrefix?: number;
}

/** Parses "a.b.c.d/n" (n 0..32, or minPrefix..32); host bits may be set. */
export function parseCidr(value: unknown, options: CidrParseOptions = {}): Cidr {
  if (typeof value !== 'string') throw invalid('CIDR must be a string');
  const slash = value.indexOf('/');
  if (slash < 0 || value.length > 40) throw invalid(`invalid CIDR ${shown(value)}: expected ADDRESS/PREFIX like 10.32.0.5/12`);
  const address = parseIpv4Address(value.slice(0, slash), options);
  const prefixText = value.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,2}$/.test(prefixText) || prefix > 32 || prefix < (options.minPrefix ?? 0)) {
    throw invalid(`invalid prefix length in ${shown(value)}`);
  }
  return { address, prefix };
}

/** Parses "a.b.c.d/n" that must be a block: host bits zero. */
export function parseNetworkCidr(value: unknown, options: CidrParseOptions = {}): NetworkCidr {
  const cidr = parseCidr(value, options);
  const network = networkOf(cidr);
  if (network.address !== cidr.address) {
    throw invalid(`CIDR ${shown(value)} has host bits set; did you mean ${formatCidr(network)}?`);
  }
  return network;
}

/** The number of addresses in a block of this prefix: 2^(32-prefix). */
export function cidrSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

/** The block that holds `cidr`'s address. */
export function networkOf(cidr: Cidr): NetworkCidr {
  const size = cidrSize(cidr.prefix);
  return { address: (cidr.address - (cidr.address % size)) as Ipv4Address, prefix: cidr.prefix } as NetworkCidr;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4Address(cidr.address)}/${cidr.prefix}`;
}

/** Parses a port 1..65535 written in decimal (1-5 digits, no sign). */
export function parsePortText(value: string, what = 'port'): number {
  const port = Number(value);
  if (!/^\d{1,5}$/.test(value) || port < 1 || port > 65535) throw invalid(`invalid ${what} ${shown(value)}: expected 1..65535`);
  return port;
}

export interface HostPortSplit {
  /** The host without brackets. */
  readonly host: string;
  /** True when the host was written in brackets ("[::1]:80"). */
  readonly bracketed: boolean;
  /** The port text, undefined when none was given. */
  readonly portText: string | undefined;
}

/**
 * Splits "host", "host:port", "[v6]" or "[v6]:port" without judging the host. A host with more
 * than one ':' outside brackets is refused (write IPv6 addresses in brackets).
 */
export function splitHostPort(value: unknown, what = 'address'): HostPortSplit {
  if (typeof value !== 'string' || value.length === 0 || value.length > 300) throw invalid(`invalid ${what}: expected host[:port]`);
  const bracketed = /^\[([^\]]+)\](?::([^:]*))?$/.exec(value);
  if (bracketed) return { host: bracketed[1]!, bracketed: true, portText: bracketed[2] };
  const colon = value.lastIndexOf(':');
  if (colon !== value.indexOf(':')) throw invalid(`invalid ${what} ${shown(value)}: write IPv6 addresses as [addr]:port`);
  if (colon === -1) return { host: value, bracketed: false, portText: undefined };
  return { host: value.slice(0, colon), bracketed: false, portText: value.slice(colon + 1) };
}

/** Parses "host:port" (or "host" with `defaultPort`); the host is an IPv4 address, a DNS name or [IPv6]. */
export function parseHostPort(value: unknown, options: { readonly defaultPort?: number; readonly what?: string } = {}): HostPort {
  const what = options.what ?? 'address';
  const split = splitHostPort(value, what);
  if (split.host.length === 0 || (split.bracketed && !/^[0-9A-Fa-f:.]{2,45}$/.test(split.host))) throw invalid(`invalid ${what} ${shown(value)}`);
  if (!split.bracketed && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?$/.test(split.host)) throw invalid(`invalid ${what} ${shown(value)}`);
  if (split.portText === undefined) {
    if (options.defaultPort === undefined) throw invalid(`invalid ${what} ${shown(value)}: expected host:port`);
    return { host: split.host, port: options.defaultPort };
  }
  return { host: split.host, port: parsePortText(split.portText, `port in ${what} ${shown(value)}`) };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
