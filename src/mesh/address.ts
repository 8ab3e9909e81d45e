/**
 * Peer addresses as the user writes them ("host", "host:port", "[v6]:port") and as the mesh
 * stores them: always "host:port" (IPv6 in brackets), so one peer has one spelling.
 */
import { LoomError } from '../core/errors.js';

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?$/;
const V6_RE = /^[0-9A-Fa-f:.]{2,45}$/;

/** Parses a user-given target; throws ERR_INVALID_ARGUMENT. */
export function parsePeerAddress(text: unknown, defaultPort: number): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > 300) {
    throw new LoomError('ERR_INVALID_ARGUMENT', 'peer address must be a non-empty string like "10.0.0.2" or "host:6783"');
  }
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
    if (!V6_RE.test(host)) throw badAddress(text);
    host = `[${host.toLowerCase()}]`;
  } else {
    const parts = text.split(':');
    if (parts.length > 2) throw badAddress(text);
    host = parts[0]!;
    portText = parts[1];
    if (!HOST_RE.test(host)) throw badAddress(text);
    host = host.toLowerCase();
  }
  const port = portText === undefined ? defaultPort : Number(portText);
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
