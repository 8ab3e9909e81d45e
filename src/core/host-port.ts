/**
 * "host[:port]" and port arguments of the API and the CLI (`--http-addr`, peers), free of any
 * schema library so that the API's transport (api/transport.ts) can use them without zod.
 */
import { isIP } from 'node:net';
import { LoomError } from './errors.js';
import { parsePortText, splitHostPort } from './net.js';

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** A TCP/UDP port 1..65535 from a string or number; ERR_INVALID_ARGUMENT otherwise. */
export function parsePort(value: unknown, what = 'port'): number {
  if (typeof value === 'string') return parsePortText(value, what);
  const n = typeof value === 'number' ? value : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what} "${String(value).slice(0, 20)}": expected 1-65535`);
  return n;
}

export interface HostPort {
  host: string;
  port: number | undefined;
}

/**
 * Splits "host[:port]" where host is an IPv4 address, a bracketed IPv6 address or a DNS name.
 * Nothing is resolved here. Throws ERR_INVALID_ARGUMENT.
 */
export function parseHostPort(value: unknown, what = 'address'): HostPort {
  if (typeof value !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what}: expected host[:port]`);
  const shown = value.slice(0, 60);
  const { host, bracketed, portText } = splitHostPort(value, what);
  if (bracketed) {
    if (isIP(host) !== 6) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what} "${shown}": not an IPv6 address in brackets`);
  } else if (isIP(host) === 0 && (!HOSTNAME_RE.test(host) || /^[\d.]+$/.test(host))) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what} "${shown}": not a host name or IPv4 address`);
  }
  return { host, port: portText === undefined ? undefined : parsePort(portText, `port in ${what} "${shown}"`) };
}

