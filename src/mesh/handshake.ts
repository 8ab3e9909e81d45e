/**
 * The pure part of the handshake: the hello message, version negotiation, the flag check and the
 * session keys. No I/O; src/mesh/connection.ts drives it. Wire diagram in docs/PROTOCOL.md.
 */
import { randomBytes } from 'node:crypto';
import { LoomError } from '../core/errors.js';
import { peerNameFromBytes, peerNameToBytes, type PeerUid } from '../core/ids.js';
import { deriveDirectionalKeys, x25519SharedSecret, X25519_PUBLIC_KEY_BYTES, type EphemeralKeyPair } from './crypto.js';
import type { PeerIdentity, SessionKeys } from './types.js';

export const HELLO_MAGIC = Buffer.from('LOOM', 'ascii');
export const MAX_NICKNAME_BYTES = 64;
export const HELLO_NONCE_BYTES = 16;
/** Bytes of a hello before the nickname, and after it. */
const HELLO_FIXED_HEAD = 4 + 1 + 1 + 1 + 2 + 6 + 8 + 1;
const HELLO_FIXED_TAIL = X25519_PUBLIC_KEY_BYTES + HELLO_NONCE_BYTES;
/**
 * Largest hello we accept. Hellos may grow in later versions (extra bytes after the random ones
 * are ignored but covered by the keys), so this leaves room; it also rejects non-Loom peers fast.
 */
export const MAX_HELLO_BYTES = 1024;

export const FLAG_PASSWORD = 0x01;

/** The plaintext of the first sealed frame each side sends, proving it derived the same keys. */
export const CONFIRM_PLAINTEXT = Buffer.from('loom confirm v1\0', 'ascii');

export interface Hello {
  minVersion: number;
  maxVersion: number;
  flags: number;
  listenPort: number;
  identity: PeerIdentity;
  publicKey: Uint8Array;
  random: Uint8Array;
}

export function nicknameBytes(nickname: string): Buffer {
  const bytes = Buffer.from(nickname, 'utf8');
  if (bytes.length > MAX_NICKNAME_BYTES) throw new LoomError('ERR_INVALID_ARGUMENT', `nickname must be at most ${MAX_NICKNAME_BYTES} UTF-8 bytes`);
  return bytes;
}

export function createHello(opts: {
  identity: PeerIdentity;
  minVersion: number;
  maxVersion: number;
  passwordSet: boolean;
  listenPort: number;
  keyPair: EphemeralKeyPair;
}): Hello {
  return {
    minVersion: opts.minVersion,
    maxVersion: opts.maxVersion,
    flags: opts.passwordSet ? FLAG_PASSWORD : 0,
    listenPort: opts.listenPort,
    identity: opts.identity,
    publicKey: opts.keyPair.publicKey,
    random: new Uint8Array(randomBytes(HELLO_NONCE_BYTES)),
  };
}

export function encodeHello(hello: Hello): Buffer {
  const nick = nicknameBytes(hello.identity.nickname);
  const out = Buffer.alloc(HELLO_FIXED_HEAD + nick.length + HELLO_FIXED_TAIL);
  let at = HELLO_MAGIC.copy(out, 0);
  at = out.writeUInt8(hello.minVersion, at);
  at = out.writeUInt8(hello.maxVersion, at);
  at = out.writeUInt8(hello.flags, at);
  at = out.writeUInt16BE(hello.listenPort, at);
  peerNameToBytes(hello.identity.name, out, at);
  at += 6;
  at += out.write(hello.identity.uid, at, 'hex');
  at = out.writeUInt8(nick.length, at);
  at += nick.copy(out, at);
  out.set(hello.publicKey, at);
  at += X25519_PUBLIC_KEY_BYTES;
  out.set(hello.random, at);
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a peer's hello. Throws ERR_PROTOCOL for anything that is not a well-formed Loom hello. */
export function decodeHello(body: Uint8Array): Hello {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (b.length < HELLO_MAGIC.length || !b.subarray(0, HELLO_MAGIC.length).equals(HELLO_MAGIC)) {
    throw new LoomError('ERR_PROTOCOL', 'not a Loom peer (bad hello magic)');
  }
  if (b.length < HELLO_FIXED_HEAD) throw new LoomError('ERR_PROTOCOL', 'hello too short');
  let at = HELLO_MAGIC.length;
  const minVersion = b.readUInt8(at++);
  const maxVersion = b.readUInt8(at++);
  const flags = b.readUInt8(at++);
  const listenPort = b.readUInt16BE(at);
  at += 2;
  const name = peerNameFromBytes(b.subarray(at, at + 6));
  at += 6;
  const uid = b.toString('hex', at, at + 8) as PeerUid;
  at += 8;
  const nickLength = b.readUInt8(at++);
  if (nickLength > MAX_NICKNAME_BYTES) throw new LoomError('ERR_PROTOCOL', `hello nickname of ${nickLength} bytes is too long`);
  if (b.length < at + nickLength + HELLO_FIXED_TAIL) throw new LoomError('ERR_PROTOCOL', 'hello too short');
  let nickname: string;
  try {
    nickname = strictUtf8.decode(b.subarray(at, at + nickLength));
  } catch {
    throw new LoomError('ERR_PROTOCOL', 'hello nickname is not UTF-8');
  }
  at += nickLength;
  const publicKey = new Uint8Array(b.subarray(at, at + X25519_PUBLIC_KEY_BYTES));
  at += X25519_PUBLIC_KEY_BYTES;
  const random = new Uint8Array(b.subarray(at, at + HELLO_NONCE_BYTES));
  if (minVersion === 0 || minVersion > maxVersion) throw new LoomError('ERR_PROTOCOL', `hello has an invalid version range ${minVersion}..${maxVersion}`);
  return { minVersion, maxVersion, flags, listenPort, identity: { name, nickname, uid }, publicKey, random };
}

/** The highest version both ranges contain; ERR_VERSION_MISMATCH naming both ranges if none. */
export function negotiateVersion(ours: { minVersion: number; maxVersion: number }, theirs: { minVersion: number; maxVersion: number }): number {
  const version = Math.min(ours.maxVersion, theirs.maxVersion);
  if (version < Math.max(ours.minVersion, theirs.minVersion)) {
    throw new LoomError(
      'ERR_VERSION_MISMATCH',
      `no common protocol version: we speak ${ours.minVersion}..${ours.maxVersion}, the peer speaks ${theirs.minVersion}..${theirs.maxVersion}`,
      { detail: { ours, theirs } },
    );
  }
  return version;
}

/** Both sides must agree on whether there is a password; ERR_AUTH_FAILED otherwise. */
export function checkFlags(ourFlags: number, theirFlags: number): void {
  const ours = (ourFlags & FLAG_PASSWORD) !== 0;
  const theirs = (theirFlags & FLAG_PASSWORD) !== 0;
  if (ours && !theirs) throw new LoomError('ERR_AUTH_FAILED', 'peer has no password but we have one');
  if (!ours && theirs) throw new LoomError('ERR_AUTH_FAILED', 'peer has a password but we have none');
}

/**
 * Negative when `a` comes first in the canonical order: peer name bytes, then uid bytes.
 * Zero only for the same name and uid, i.e. a connection to ourselves.
 */
export function compareIdentities(a: PeerIdentity, b: PeerIdentity): number {
  const byName = Buffer.compare(peerNameToBytes(a.name), peerNameToBytes(b.name));
  if (byName !== 0) return byName;
  return Buffer.compare(Buffer.from(a.uid, 'hex'), Buffer.from(b.uid, 'hex'));
}

/** Hellos may carry extension bytes, so each is length-prefixed in the HKDF info to keep the split unambiguous. */
function lengthPrefix(hello: Uint8Array): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(hello.length);
  return prefix;
}

/**
 * Session keys from both hellos (as sent, byte for byte). The info binds the keys to the whole
 * hello exchange, so a tampered hello makes the confirm frame fail on both sides.
 * Throws ERR_SELF_CONNECTION if both hellos carry the same name and uid (the directions would
 * share a key, and nonces would repeat).
 */
export function deriveSessionKeys(opts: {
  ours: Hello;
  oursEncoded: Uint8Array;
  theirs: Hello;
  theirsEncoded: Uint8Array;
  keyPair: EphemeralKeyPair;
  password: string | undefined;
}): SessionKeys {
  const order = compareIdentities(opts.ours.identity, opts.theirs.identity);
  if (order === 0) throw new LoomError('ERR_SELF_CONNECTION', 'connected to ourselves (same peer name and uid)');
  const shared = x25519SharedSecret(opts.keyPair.privateKey, opts.theirs.publicKey);
  const [firstHello, secondHello] = order < 0 ? [opts.oursEncoded, opts.theirsEncoded] : [opts.theirsEncoded, opts.oursEncoded];
  const info = Buffer.concat([Buffer.from('loom v1', 'ascii'), lengthPrefix(firstHello), firstHello, lengthPrefix(secondHello), secondHello]);
  const { first, second } = deriveDirectionalKeys(shared, opts.password, info);
  return order < 0 ? { send: first, receive: second } : { send: second, receive: first };
}
