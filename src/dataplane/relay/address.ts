import { LoomError } from '../../core/errors.js';
import { formatIpv4Address, parseIpv4Address, parsePortText } from '../../core/net.js';

/** A neighbour's UDP data address. IPv4 only: the relay's sockets are udp4. */
export interface UdpAddress {
  ip: string;
  port: number;
}

/** Parses "a.b.c.d:port"; throws ERR_INVALID_ARGUMENT. */
export function parseUdpAddress(value: unknown): UdpAddress {
  if (typeof value !== 'string' || value.length > 21) throw new LoomError('ERR_INVALID_ARGUMENT', 'data address must be "ip:port"');
  const colon = value.lastIndexOf(':');
  try {
    if (colon < 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'no port');
    return { ip: formatIpv4Address(parseIpv4Address(value.slice(0, colon))), port: parsePortText(value.slice(colon + 1)) };
  } catch {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid data address "${value}": expected IPv4 "ip:port"`);
  }
}

export function formatUdpAddress(a: UdpAddress): string {
  return `${a.ip}:${a.port}`;
}
