/**
 * Shared pieces of the relay tests: relays on real UDP sockets on 127.0.0.1 (no root), a socket
 * factory that records every datagram a relay sends, session keys for a pair of neighbours, and a
 * bounded wait over event-loop turns (never a sleep).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import type { SessionKeys } from '../../src/mesh/types.js';
import { createRelaySocket } from '../../src/dataplane/relay/index.js';
import type { DatagramEndpoint, EndpointFactory } from '../../src/dataplane/relay/endpoint.js';
import { UdpEndpoint } from '../../src/os/udp-endpoint.js';

export const LOOPBACK = '127.0.0.1';

/** Waits, turn by turn, until `cond` holds; fails the test after `maxMs`. */
export async function until(cond: () => boolean, what: string, maxMs = 3000): Promise<void> {
  const end = Date.now() + maxMs;
  for (let i = 0; i < 1_000_000 && !cond(); i++) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Session keys of one connection, as each end sees them. */
export function keyPair(): [SessionKeys, SessionKeys] {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  return [
    { send: k1, receive: k2 },
    { send: k2, receive: k1 },
  ];
}

/** A relay socket factory that appends every datagram sent (header, body, tag joined) to `wire`. */
export function recordingSocketFactory(wire: Buffer[], sockets: Socket[]): () => Socket {
  return () => {
    const s = createRelaySocket();
    const send = s.send.bind(s) as (...args: unknown[]) => void;
    (s as unknown as { send: (...args: unknown[]) => void }).send = (msg: unknown, ...rest: unknown[]) => {
      wire.push(Buffer.concat(Array.isArray(msg) ? (msg as Buffer[]) : [msg as Buffer]));
      send(msg, ...rest);
    };
    sockets.push(s);
    return s;
  };
}

/**
 * A relay endpoint factory that appends every datagram the relay sends (trains split into their
 * datagrams, probes and answers too) to `wire`, in order, and keeps the endpoints it made.
 */
export function recordingEndpointFactory(wire: Buffer[], endpoints: DatagramEndpoint[]): EndpointFactory {
  return (options) => {
    const e = UdpEndpoint.open(options);
    const queue = e.queue.bind(e);
    const sendNow = e.sendNow.bind(e);
    e.queue = (buf, offset, length, segment, ip, port) => {
      for (let at = offset; at < offset + length; at += segment) wire.push(Buffer.from(buf.subarray(at, Math.min(at + segment, offset + length))));
      queue(buf, offset, length, segment, ip, port);
    };
    e.sendNow = (buf, ip, port) => {
      wire.push(Buffer.from(buf));
      return sendNow(buf, ip, port);
    };
    endpoints.push(e);
    return e;
  };
}

/** "127.0.0.1" as the endpoints take addresses. */
export const LOOPBACK_U32 = 0x7f000001;
