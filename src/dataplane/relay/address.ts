import { isIPv4 } from 'node:net';
import { LoomError } from '../../core/errors.js';

/** A neighbour's UDP data address. IPv4 only: the relay's sockets are udp4. */
export interface UdpAddress {
  ip: string;
  port: number;
}

/** Parses "a.b.c.d:port"; throws ERR_INVALID_ARGUMENT. */
export function parseUdpAddress(value: unknown): UdpAddress {
  if (typeof value !== 'string' || value.length > 21) throw new LoomError('ERR_INVALID_ARGUMENT', 'data address must be "ip:port"');
  const colon = value.lastIndexOf(':');
  const ip = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  const port = Number(portText);
  if (colon < 0 || !isIPv4(ip) || !/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid data address "${value}": expected IPv4 "ip:port"`);
  }
  return { ip, port };
}

export function formatUdpAddress(a: UdpAddress): string {
  return `${a.ip}:${a.port}`;
}
