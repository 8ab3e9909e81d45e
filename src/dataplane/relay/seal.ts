/**
 * ChaCha20-Poly1305 for relay packets: header as AAD, nonce = 00 00 00 00 || u64 counter.
 * node:crypto needs one cipher object per nonce (it cannot be re-keyed with a new IV); the
 * KeyObject is made once per key so only the cipher context is per packet (bench/relay.ts).
 */
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { OFFSET, RELAY_HEADER_BYTES, RELAY_TAG_BYTES } from './wire.js';

const ALGORITHM = 'chacha20-poly1305';

/** Scratch nonce: createCipheriv copies the IV, so one buffer serves every call. */
const nonce = Buffer.alloc(12);

function nonceFromHeader(header: Uint8Array): Buffer {
  nonce.set(header.subarray(OFFSET.counterHi, OFFSET.counterHi + 8), 4);
  return nonce;
}

/**
 * Seals `body` under `key`; `header` (already written, with the counter) is the AAD.
 * Returns [ciphertext, tag], fresh buffers owned by the caller.
 */
export function sealBody(key: KeyObject, header: Buffer, body: Uint8Array): [Buffer, Buffer] {
  const cipher = createCipheriv(ALGORITHM, key, nonceFromHeader(header), { authTagLength: RELAY_TAG_BYTES });
  cipher.setAAD(header, { plaintextLength: body.length });
  const ciphertext = cipher.update(body);
  cipher.final();
  return [ciphertext, cipher.getAuthTag()];
}

/**
 * Opens a whole sealed packet of `length` bytes; returns the plaintext body, or null when the tag
 * does not verify. Never throws for bad bytes.
 */
export function openPacket(key: KeyObject, packet: Buffer, length: number): Buffer | null {
  const header = packet.subarray(0, RELAY_HEADER_BYTES);
  const decipher = createDecipheriv(ALGORITHM, key, nonceFromHeader(header), { authTagLength: RELAY_TAG_BYTES });
  const bodyEnd = length - RELAY_TAG_BYTES;
  try {
    decipher.setAAD(header, { plaintextLength: bodyEnd - RELAY_HEADER_BYTES });
    decipher.setAuthTag(packet.subarray(bodyEnd, length));
    const body = decipher.update(packet.subarray(RELAY_HEADER_BYTES, bodyEnd));
    decipher.final();
    return body;
  } catch {
    return null;
  }
}
