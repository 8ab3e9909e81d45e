/**
 * DNS names and addresses as the records store keeps them: lower-case, fully qualified, no
 * trailing dot ("web.loom.local"); IPv4 in dotted form. Parsed once at the edge (API, gossip).
 */
import { LoomError } from '../core/errors.js';
import { formatIpv4Address, isIpv4Address, parseIpv4Address } from '../core/net.js';

const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

export const DEFAULT_DOMAIN = 'loom.local';
export const MAX_NAME_LENGTH = 253;

/** Lower-cases and drops one trailing dot; does not validate. */
export function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') && lower.length > 1 ? lower.slice(0, -1) : lower;
}

export function isValidName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  for (const label of name.split('.')) if (!LABEL_RE.test(label)) return false;
  return true;
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is a host name; returns its canonical form. */
export function parseName(value: unknown): string {
  if (typeof value !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', 'DNS name must be a string');
  const name = canonicalName(value);
  if (!isValidName(name)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid DNS name "${value.slice(0, 80)}"`);
  return name;
}

/** A name the containers use: a single label gets the domain appended ("web" -> "web.loom.local"). */
export function qualifyName(value: unknown, domain: string): string {
  const name = parseName(value);
  return name.includes('.') ? name : `${name}.${domain}`;
}

/** A dotted quad without leading zeros (core/net.ts). */
export function isIPv4(value: string): boolean {
  return isIpv4Address(value);
}

/** A dotted quad without leading zeros, returned as given (which is its normal form). */
export function parseIPv4(value: unknown): string {
  return formatIpv4Address(parseIpv4Address(value));
}

/** True when `name` (canonical) is `domain` or inside it. */
export function isInDomain(name: string, domain: string): boolean {
  return name === domain || name.endsWith(`.${domain}`);
}

const REVERSE_SUFFIX = '.in-addr.arpa';

/** "4.3.2.1.in-addr.arpa" -> "1.2.3.4"; null for anything that is not a full IPv4 reverse name. */
export function addressFromReverseName(name: string): string | null {
  if (!name.endsWith(REVERSE_SUFFIX)) return null;
  const parts = name.slice(0, -REVERSE_SUFFIX.length).split('.');
  if (parts.length !== 4) return null;
  const address = parts.reverse().join('.');
  return isIPv4(address) ? address : null;
}

export function isReverseName(name: string): boolean {
  return name === REVERSE_SUFFIX.slice(1) || name.endsWith(REVERSE_SUFFIX);
}
