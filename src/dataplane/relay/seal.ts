/**
 * ChaCha20-Poly1305 (IETF, RFC 8439) for relay packets, through libsodium (sodium-native): header
 * as AAD, nonce = 00 00 00 00 || u64 counter (the header's counter field), 16-byte tag after the
 * body. Every segment of a super-frame is sealed on its own, so this runs per datagram: libsodium
 * seals a 1,400-byte segment in ~2 µs here, node:crypto in ~10 µs (a cipher object per nonce).
 * The bytes are those node:crypto's 'chacha20-poly1305' produces (tests check both ways).
 *
 * In place: the hot path lays out `header | body | room for the tag` in its send buffer and seals
 * there; the receive path opens in the receive buffer. Keys are 32-byte Buffers (keys.ts).
 */
import sodium from 'sodium-native';
import { OFFSET, RELAY_HEADER_BYTES, RELAY_TAG_BYTES } from './wire.js';

/** Scratch nonce, rewritten per call (sodium reads it synchronously). */
const nonce = Buffer.alloc(12);

function nonceOf(packet: Uint8Array, start: number): Buffer {
  nonce.set(packet.subarray(start + OFFSET.counterHi, start + OFFSET.counterHi + 8), 4);
  return nonce;
}

/**
 * Seals the packet at `packet[start..)`: a written header (counter included), then `bodyBytes` of
 * body, then RELAY_TAG_BYTES that receive the tag. Returns the packet's sealed length.
 */
export function sealInPlace(key: Buffer, packet: Buffer, start: number, bodyBytes: number): number {
  const bodyStart = start + RELAY_HEADER_BYTES;
  const bodyEnd = bodyStart + bodyBytes;
  const body = packet.subarray(bodyStart, bodyEnd);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(body, packet.subarray(bodyEnd, bodyEnd + RELAY_TAG_BYTES), body, packet.subarray(start, bodyStart), null, nonceOf(packet, start), key);
  return RELAY_HEADER_BYTES + bodyBytes + RELAY_TAG_BYTES;
}

/**
 * Opens the sealed packet `packet[start..start+length)` in place: on success the body
 * (`packet[start+30 .. start+length-16)`) is plaintext and true is returned; false when the tag
 * does not verify (the bytes are then garbage). Never throws for bad bytes.
 */
export function openInPlace(key: Buffer, packet: Buffer, start: number, length: number): boolean {
  const bodyStart = start + RELAY_HEADER_BYTES;
  const bodyEnd = start + length - RELAY_TAG_BYTES;
  if (bodyEnd < bodyStart) return false;
  const body = packet.subarray(bodyStart, bodyEnd);
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(body, null, body, packet.subarray(bodyEnd, bodyEnd + RELAY_TAG_BYTES), packet.subarray(start, bodyStart), nonceOf(packet, start), key);
    return true;
  } catch {
    return false;
  }
}

/** Seals `body` behind the written `header`; returns [ciphertext, tag], fresh buffers (tools and tests). */
export function sealBody(key: Buffer, header: Buffer, body: Uint8Array): [Buffer, Buffer] {
  const packet = Buffer.alloc(RELAY_HEADER_BYTES + body.length + RELAY_TAG_BYTES);
  header.copy(packet, 0, 0, RELAY_HEADER_BYTES);
  packet.set(body, RELAY_HEADER_BYTES);
  sealInPlace(key, packet, 0, body.length);
  const bodyEnd = RELAY_HEADER_BYTES + body.length;
  return [packet.subarray(RELAY_HEADER_BYTES, bodyEnd), packet.subarray(bodyEnd)];
}

/** Opens a copy of a whole sealed packet; the plaintext body, or null when it does not verify (tools and tests). */
export function openPacket(key: Buffer, packet: Uint8Array, length: number): Buffer | null {
  const copy = Buffer.from(packet.subarray(0, length));
  return openInPlace(key, copy, 0, length) ? copy.subarray(RELAY_HEADER_BYTES, length - RELAY_TAG_BYTES) : null;
}
