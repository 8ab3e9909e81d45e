/**
 * The cryptography of a mesh connection, all from node:crypto: X25519 key agreement,
 * HKDF-SHA256 key derivation and ChaCha20-Poly1305 frames with implicit counter nonces.
 * Wire diagram and rationale in docs/PROTOCOL.md.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { LoomError } from '../core/errors.js';

export const X25519_PUBLIC_KEY_BYTES = 32;
export const SESSION_KEY_BYTES = 32;
export const AEAD_TAG_BYTES = 16;
export const NONCE_BYTES = 12;

/** DER SubjectPublicKeyInfo prefix of an X25519 key; the raw 32 bytes follow it. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface EphemeralKeyPair {
  privateKey: KeyObject;
  /** Raw 32-byte public key, as sent in the hello. */
  publicKey: Uint8Array;
}

/** A fresh key pair per connection: forward secrecy even when the password leaks later. */
export function generateEphemeralKeyPair(): EphemeralKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(X25519_SPKI_PREFIX.length)) };
}

/**
 * X25519(ours, theirs). Throws ERR_PROTOCOL for a key of the wrong size or a low-order key
 * (which would give an all-zero secret that an attacker can predict).
 */
export function x25519SharedSecret(ours: KeyObject, theirPublicKey: Uint8Array): Buffer {
  if (theirPublicKey.length !== X25519_PUBLIC_KEY_BYTES) throw new LoomError('ERR_PROTOCOL', 'X25519 public key must be 32 bytes');
  let shared: Buffer;
  try {
    const publicKey = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, theirPublicKey]), format: 'der', type: 'spki' });
    shared = diffieHellman({ privateKey: ours, publicKey });
  } catch (err) {
    throw new LoomError('ERR_PROTOCOL', 'invalid X25519 public key from peer', { cause: err });
  }
  if (shared.every((b) => b === 0)) throw new LoomError('ERR_PROTOCOL', 'low-order X25519 public key from peer');
  return shared;
}

/** HKDF salt: SHA-256("loom password" || password), or empty without a password. */
export function passwordSalt(password: string | undefined): Buffer {
  if (password === undefined) return Buffer.alloc(0);
  return createHash('sha256').update('loom password').update(password, 'utf8').digest();
}

/**
 * 64 bytes from HKDF-SHA256(ikm = shared, salt = passwordSalt, info): the first 32 are the key of
 * the canonically-first peer's sending direction, the last 32 that of the second peer.
 */
export function deriveDirectionalKeys(shared: Uint8Array, password: string | undefined, info: Uint8Array): { first: Buffer; second: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', shared, passwordSalt(password), info, 2 * SESSION_KEY_BYTES));
  return { first: okm.subarray(0, SESSION_KEY_BYTES), second: okm.subarray(SESSION_KEY_BYTES) };
}

/**
 * A 64-bit per-direction message counter, written as the last 8 bytes (big-endian) of a 12-byte
 * nonce whose first 4 bytes are zero. Each value is used once; after 2^64 - 1 the counter is
 * exhausted and the connection must be replaced (a new handshake gives new keys).
 */
class NonceCounter {
  private hi: number;
  private lo: number;

  constructor(start: bigint) {
    if (start < 0n || start > 0xffff_ffff_ffff_ffffn) throw new LoomError('ERR_INVALID_ARGUMENT', 'nonce counter out of range');
    this.hi = Number(start >> 32n);
    this.lo = Number(start & 0xffff_ffffn);
  }

  /** Writes the current nonce into `out` and advances; throws when exhausted. */
  take(out: Buffer): void {
    if (this.hi === 0xffff_ffff && this.lo === 0xffff_ffff) {
      throw new LoomError('ERR_PROTOCOL', 'nonce counter exhausted; the connection must be re-established');
    }
    out.writeUInt32BE(0, 0);
    out.writeUInt32BE(this.hi, 4);
    out.writeUInt32BE(this.lo, 8);
    if (this.lo === 0xffff_ffff) {
      this.lo = 0;
      this.hi++;
    } else {
      this.lo++;
    }
  }
}

/** Seals frames of one direction. Not thread-safe; one per connection direction. */
export class FrameSealer {
  private readonly counter: NonceCounter;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);

  /** `startCounter` exists for tests of exhaustion; a connection always starts at 0. */
  constructor(
    private readonly key: Uint8Array,
    startCounter = 0n,
  ) {
    if (key.length !== SESSION_KEY_BYTES) throw new LoomError('ERR_INVALID_ARGUMENT', 'session key must be 32 bytes');
    this.counter = new NonceCounter(startCounter);
  }

  /**
   * Returns `headroom` free bytes, then ciphertext, then the 16-byte tag, in one buffer of
   * headroom + plaintext.length + 16 bytes. Throws ERR_PROTOCOL when the counter is exhausted.
   */
  seal(plaintext: Uint8Array, headroom = 0): Buffer {
    this.counter.take(this.nonce);
    const cipher = createCipheriv('chacha20-poly1305', this.key, this.nonce, { authTagLength: AEAD_TAG_BYTES });
    const out = Buffer.allocUnsafe(headroom + plaintext.length + AEAD_TAG_BYTES);
    const body = cipher.update(plaintext);
    cipher.final();
    body.copy(out, headroom);
    cipher.getAuthTag().copy(out, headroom + body.length);
    return out;
  }
}

/** Opens frames of one direction, in order. */
export class FrameOpener {
  private readonly counter: NonceCounter;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);

  constructor(
    private readonly key: Uint8Array,
    startCounter = 0n,
  ) {
    if (key.length !== SESSION_KEY_BYTES) throw new LoomError('ERR_INVALID_ARGUMENT', 'session key must be 32 bytes');
    this.counter = new NonceCounter(startCounter);
  }

  /**
   * The plaintext of the next frame (a new buffer). Throws ERR_AUTH_FAILED when the tag does not
   * verify (wrong key, tampering, or a dropped/reordered frame) and ERR_PROTOCOL when too short.
   */
  open(sealed: Uint8Array): Buffer {
    if (sealed.length < AEAD_TAG_BYTES) throw new LoomError('ERR_PROTOCOL', 'sealed frame shorter than its tag');
    this.counter.take(this.nonce);
    const decipher = createDecipheriv('chacha20-poly1305', this.key, this.nonce, { authTagLength: AEAD_TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - AEAD_TAG_BYTES));
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - AEAD_TAG_BYTES));
    try {
      decipher.final();
    } catch (err) {
      throw new LoomError('ERR_AUTH_FAILED', 'frame failed authentication', { cause: err });
    }
    return plaintext;
  }
}
