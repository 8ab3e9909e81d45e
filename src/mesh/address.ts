/**
 * Peer addresses as the user writes them ("host", "host:port", "[v6]:port") and as the mesh
 * stores them: always "host:port" (IPv6 in brackets), so one peer has one spelling.
 */
import { LoomError } from '../core/errors.js';
import { splitHostPort } from '../core/net.js';

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?$/;
const V6_RE = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * Parses a user-given peer target "host", "host:port" or "[v6]:port" into the mesh's one
 * spelling "host:port" (lower case, IPv6 in brackets, `defaultPort` when none). The mesh's
 * rules, kept as they were: a loose host pattern, and a port after a plain host read by Number().
 * Throws ERR_INVALID_ARGUMENT.
 */
export function parsePeerHostPort(text: unknown, defaultPort: number): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > 300) {
    throw new LoomError('ERR_INVALID_ARGUMENT', 'peer address must be a non-empty string like "10.0.0.2" or "host:6783"');
  }
  const split = splitHostPort(text, 'peer address');
  let host: string;
  if (split.bracketed) {
    if (!V6_RE.test(split.host) || (split.portText !== undefined && !/^\d+$/.test(split.portText))) throw badAddress(text);
    host = `[${split.host.toLowerCase()}]`;
  } else {
    if (!HOST_RE.test(split.host)) throw badAddress(text);
    host = split.host.toLowerCase();
  }
  const port = split.portText === undefined ? defaultPort : Number(split.portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw badAddress(text);
  return `${host}:${port}`;
}

function badAddress(text: string): LoomError {
  return new LoomError('ERR_INVALID_ARGUMENT', `invalid peer address "${text.slice(0, 60)}": expected host, host:port or [ipv6]:port`);
}

/** The host part of "host:port" (brackets kept for IPv6). */
export function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return i <= 0 || address.endsWith(']') ? address : address.slice(0, i);
}
