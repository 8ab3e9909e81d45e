import { randomBytes } from 'node:crypto';
import { LoomError } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/**
 * A peer's stable name: 48 bits written like a MAC address, lower case ("8a:3f:00:12:9c:01"),
 * as Weave Net users know it. Generated once and kept in the state dir.
 */
export type PeerName = Brand<string, 'PeerName'>;
/** A random 64-bit id per router start, 16 lower-case hex digits. Tells a restart from a long-lived peer. */
export type PeerUid = Brand<string, 'PeerUid'>;

const PEER_NAME_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const PEER_UID_RE = /^[0-9a-f]{16}$/;

export function parsePeerName(value: unknown): PeerName {
  if (typeof value !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', 'peer name must be a string');
  const v = value.toLowerCase();
  if (!PEER_NAME_RE.test(v)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid peer name "${value.slice(0, 40)}": expected six hex pairs like 8a:3f:00:12:9c:01`);
  return v as PeerName;
}

export function isPeerName(value: unknown): value is PeerName {
  return typeof value === 'string' && PEER_NAME_RE.test(value);
}

/** A random peer name with the locally-administered bit set and the multicast bit clear. */
export function randomPeerName(): PeerName {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return peerNameFromBytes(b);
}

export function peerNameFromBytes(b: Uint8Array): PeerName {
  if (b.length !== 6) throw new LoomError('ERR_PROTOCOL', 'peer name must be 6 bytes');
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':') as PeerName;
}

export function peerNameToBytes(name: PeerName, out: Uint8Array = new Uint8Array(6), offset = 0): Uint8Array {
  for (let i = 0; i < 6; i++) out[offset + i] = parseInt(name.slice(i * 3, i * 3 + 2), 16);
  return out;
}

export function parsePeerUid(value: unknown): PeerUid {
  if (typeof value !== 'string' || !PEER_UID_RE.test(value)) throw new LoomError('ERR_INVALID_ARGUMENT', 'invalid peer uid');
  return value as PeerUid;
}

export function randomPeerUid(): PeerUid {
  return randomBytes(8).toString('hex') as PeerUid;
}

/** Short printable id for a container (12 hex digits, like Docker's short ids). */
export type ContainerId = Brand<string, 'ContainerId'>;
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export function parseContainerId(value: unknown): ContainerId {
  if (typeof value !== 'string' || !CONTAINER_ID_RE.test(value)) throw new LoomError('ERR_INVALID_ARGUMENT', 'invalid container id');
  return value as ContainerId;
}
