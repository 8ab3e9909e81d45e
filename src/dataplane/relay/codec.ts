/**
 * Whole-packet encode/decode for tools and tests. The relay's hot path uses the pieces directly
 * (wire.ts, seal.ts) to avoid allocating; these are the same format, checked the same way.
 */
import { LoomError } from '../../core/errors.js';
import { peerNameToBytes } from '../../core/ids.js';
import { openPacket, sealBody } from './seal.js';
import { BATCH_LENGTH_BYTES, countBatchFrames, decodeHeader, MIN_FRAME_BYTES, PacketType, RELAY_HEADER_BYTES, writeHeader, type RelayHeader } from './wire.js';

/** `header.sealed` must match whether `key` is given. */
export function encodeRelayPacket(header: RelayHeader, body: Uint8Array, key: Buffer | null): Buffer {
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
export function decodeRelayPacket(bytes: Uint8Array, key: Buffer | null): { header: RelayHeader; body: Buffer } {
  const header = decodeHeader(bytes);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!header.sealed) return { header, body: Buffer.from(buf.subarray(RELAY_HEADER_BYTES)) };
  const body = key ? openPacket(key, buf, buf.length) : null;
  if (body === null) throw new LoomError('ERR_AUTH_FAILED', 'relay packet does not authenticate');
  return { header, body };
}

/** The body of a data batch: each frame as `u16 length | frame`. Throws ERR_INVALID_ARGUMENT for an empty list or a frame that cannot be carried. */
export function encodeBatchBody(frames: readonly Uint8Array[]): Buffer {
  if (frames.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'a batch carries at least one frame');
  const parts: Buffer[] = [];
  for (const frame of frames) {
    if (frame.length < MIN_FRAME_BYTES || frame.length > 0xffff) throw new LoomError('ERR_INVALID_ARGUMENT', `batch frame of ${frame.length} bytes: must be ${MIN_FRAME_BYTES}..65535`);
    const length = Buffer.alloc(BATCH_LENGTH_BYTES);
    length.writeUInt16BE(frame.length, 0);
    parts.push(length, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
  }
  return Buffer.concat(parts);
}

/** Splits a data batch body into its frames (views into `body`). Throws ERR_PROTOCOL when the records are malformed. */
export function decodeBatchBody(body: Uint8Array, maxFrameBytes = 0xffff): Buffer[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (countBatchFrames(buf, 0, buf.length, maxFrameBytes) < 0) throw new LoomError('ERR_PROTOCOL', 'malformed relay batch', { detail: { length: buf.length } });
  const frames: Buffer[] = [];
  for (let at = 0; at < buf.length; ) {
    const length = buf.readUInt16BE(at);
    frames.push(buf.subarray(at + BATCH_LENGTH_BYTES, at + BATCH_LENGTH_BYTES + length));
    at += BATCH_LENGTH_BYTES + length;
  }
  return frames;
}
