/**
 * Whole-packet encode/decode for tools and tests. The relay's hot path uses the pieces directly
 * (wire.ts, seal.ts) to avoid allocating; these are the same format, checked the same way.
 */
import type { KeyObject } from 'node:crypto';
import { LoomError } from '../../core/errors.js';
import { peerNameToBytes } from '../../core/ids.js';
import { openPacket, sealBody } from './seal.js';
import { decodeHeader, PacketType, RELAY_HEADER_BYTES, writeHeader, type RelayHeader } from './wire.js';

/** `header.sealed` must match whether `key` is given. */
export function encodeRelayPacket(header: RelayHeader, body: Uint8Array, key: KeyObject | null): Buffer {
  if (header.sealed !== (key !== null)) throw new LoomError('ERR_INVALID_ARGUMENT', 'a sealed packet needs a key, a plain one none');
  if (!Number.isInteger(header.ttl) || header.ttl < 0 || header.ttl > 255) throw new LoomError('ERR_INVALID_ARGUMENT', 'ttl must be 0..255');
  if (!Number.isSafeInteger(header.counter) || header.counter < 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'counter must be 0..2^53-1');
  const out = Buffer.alloc(RELAY_HEADER_BYTES);
  writeHeader(out, PacketType[header.type], header.sealed, header.ttl, peerNameToBytes(header.source), peerNameToBytes(header.destination), peerNameToBytes(header.hop), header.counter);
  if (!key) return Buffer.concat([out, body]);
  const [ciphertext, tag] = sealBody(key, out, body);
  return Buffer.concat([out, ciphertext, tag]);
}

/**
 * Parses and, when sealed, opens a packet. Throws ERR_PROTOCOL for malformed bytes and
 * ERR_AUTH_FAILED for a sealed packet that does not open under `key` (or when no key is given).
 */
export function decodeRelayPacket(bytes: Uint8Array, key: KeyObject | null): { header: RelayHeader; body: Buffer } {
  const header = decodeHeader(bytes);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!header.sealed) return { header, body: Buffer.from(buf.subarray(RELAY_HEADER_BYTES)) };
  const body = key ? openPacket(key, buf, buf.length) : null;
  if (body === null) throw new LoomError('ERR_AUTH_FAILED', 'relay packet does not authenticate');
  return { header, body };
}
