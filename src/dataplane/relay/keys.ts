/**
 * Data-plane keys, derived from a mesh connection's session keys. The control channel's own keys
 * are never used here: its nonces also start at 0, so sharing a key would reuse nonces.
 */
import { hkdfSync } from 'node:crypto';
import { LoomError } from '../../core/errors.js';
import type { SessionKeys } from '../../mesh/types.js';

export const DATA_KEY_INFO = 'loom data v1';

export interface DataKeys {
  /** Seals what we send to this neighbour (the neighbour's `receive`). */
  send: Buffer;
  /** Opens what this neighbour sends us. */
  receive: Buffer;
}

/** 32 raw bytes: libsodium takes the key itself (seal.ts). */
function derive(sessionKey: Uint8Array): Buffer {
  if (sessionKey.length !== 32) throw new LoomError('ERR_INVALID_ARGUMENT', 'session key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', sessionKey, new Uint8Array(0), DATA_KEY_INFO, 32));
}

/**
 * One key per direction: HKDF-SHA256(ikm = session key of that direction, salt = empty,
 * info = "loom data v1"). Our `send` equals the neighbour's `receive` because the session keys do.
 */
export function deriveDataKeys(keys: SessionKeys): DataKeys {
  return { send: derive(keys.send), receive: derive(keys.receive) };
}

export function sameSessionKeys(a: SessionKeys | null, b: SessionKeys | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.compare(a.send, b.send) === 0 && Buffer.compare(a.receive, b.receive) === 0;
}
