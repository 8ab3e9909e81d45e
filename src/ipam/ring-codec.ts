/**
 * Wire form of the ring (the "ipam" gossip payload). Big-endian, fixed-size records:
 *
 *   0      2    3            7       8             10
 *   +------+----+------------+-------+-------------+---------------------+
 *   | "LR" | v1 | range addr | pfx   | seed count  | seeds: 6 B each     |
 *   +------+----+------------+-------+-------------+---------------------+
 *   | entry count u32 | entries: token u32, owner 6 B, version u32 (14 B) |
 *   +-----------------+---------------------------------------------------+
 *   | stats count u32 | stats: peer 6 B, version u32, free u32, inUse u32 (18 B) |
 *   +-----------------+---------------------------------------------------+
 *
 * `decodeRing` accepts only well-formed rings (sizes exact, tokens strictly increasing and
 * starting at the range start, seeds and stats sorted by name, seeds present exactly when entries
 * are); anything else is ERR_PROTOCOL. The form is canonical: one ring has one encoding. The encoder sizes the buffer first and writes once.
 */
import { LoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import { cidrEnd, cidrOf } from './cidr.js';
import { type PeerStats, Ring, type RingEntry } from './ring.js';

const MAGIC0 = 0x4c; // 'L'
const MAGIC1 = 0x52; // 'R'
const FORMAT_VERSION = 1;
const HEADER = 10;
const SEED_SIZE = 6;
const ENTRY_SIZE = 14;
const STATS_SIZE = 18;
/** Bounds on counts so a hostile length cannot make us allocate or loop without limit. */
export const MAX_RING_ENTRIES = 1 << 20;
export const MAX_RING_PEERS = 1 << 16;

export function encodedRingSize(ring: Ring): number {
  return HEADER + ring.seeds.length * SEED_SIZE + 4 + ring.entries.length * ENTRY_SIZE + 4 + ring.stats.size * STATS_SIZE;
}

export function encodeRing(ring: Ring): Uint8Array {
  const buf = new Uint8Array(encodedRingSize(ring));
  const view = new DataView(buf.buffer);
  buf[0] = MAGIC0;
  buf[1] = MAGIC1;
  buf[2] = FORMAT_VERSION;
  view.setUint32(3, ring.range.start);
  buf[7] = ring.range.prefix;
  view.setUint16(8, ring.seeds.length);
  let o = HEADER;
  for (const s of ring.seeds) {
    writeName(s, buf, o);
    o += SEED_SIZE;
  }
  view.setUint32(o, ring.entries.length);
  o += 4;
  for (const e of ring.entries) {
    view.setUint32(o, e.token);
    writeName(e.owner, buf, o + 4);
    view.setUint32(o + 10, e.version);
    o += ENTRY_SIZE;
  }
  view.setUint32(o, ring.stats.size);
  o += 4;
  for (const [peer, s] of [...ring.stats].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    writeName(peer, buf, o);
    view.setUint32(o + 6, s.version);
    view.setUint32(o + 10, s.free);
    view.setUint32(o + 14, s.inUse);
    o += STATS_SIZE;
  }
  return buf;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Same result as core's peerNameFromBytes, without per-byte arrays (decode is the hot path). */
function readName(b: Uint8Array, o: number): PeerName {
  return `${HEX[b[o]!]}:${HEX[b[o + 1]!]}:${HEX[b[o + 2]!]}:${HEX[b[o + 3]!]}:${HEX[b[o + 4]!]}:${HEX[b[o + 5]!]}` as PeerName;
}

function hexDigit(c: number): number {
  return c <= 57 ? c - 48 : c - 87;
}

/** Writes a (validated, lower-case) peer name as 6 bytes. */
function writeName(name: PeerName, b: Uint8Array, o: number): void {
  for (let i = 0; i < 6; i++) b[o + i] = (hexDigit(name.charCodeAt(i * 3)) << 4) | hexDigit(name.charCodeAt(i * 3 + 1));
}

function bad(reason: string): LoomError {
  return new LoomError('ERR_PROTOCOL', `malformed ring update: ${reason}`, { detail: { reason } });
}

export function decodeRing(bytes: Uint8Array): Ring {
  if (bytes.length < HEADER + 8) throw bad('too short');
  if (bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) throw bad('bad magic');
  if (bytes[2] !== FORMAT_VERSION) throw bad(`unknown format version ${bytes[2]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rangeStart = view.getUint32(3);
  const prefix = bytes[7]!;
  if (prefix > 32) throw bad('prefix over 32');
  const range = cidrOf(rangeStart, prefix);
  if (rangeStart % range.size !== 0) throw bad('range has host bits set');
  const seedCount = view.getUint16(8);
  let o = HEADER;
  const need = (n: number): void => {
    if (o + n > bytes.length) throw bad('truncated');
  };
  need(seedCount * SEED_SIZE + 4);
  const seeds: PeerName[] = [];
  for (let i = 0; i < seedCount; i++) {
    const s = readName(bytes, o);
    if (seeds.length > 0 && !(seeds[seeds.length - 1]! < s)) throw bad('seeds not sorted');
    seeds.push(s);
    o += SEED_SIZE;
  }
  const entryCount = view.getUint32(o);
  o += 4;
  if (entryCount > MAX_RING_ENTRIES || entryCount > range.size) throw bad('too many entries');
  if ((entryCount === 0) !== (seedCount === 0)) throw bad('seeds and entries disagree');
  need(entryCount * ENTRY_SIZE + 4);
  const entries: RingEntry[] = [];
  const end = cidrEnd(range);
  for (let i = 0; i < entryCount; i++) {
    const token = view.getUint32(o);
    if (i === 0 && token !== rangeStart) throw bad('first token is not the range start');
    if (i > 0 && !(entries[i - 1]!.token < token)) throw bad('tokens not increasing');
    if (token >= end) throw bad('token outside the range');
    entries.push({ token, owner: readName(bytes, o + 4), version: view.getUint32(o + 10) });
    o += ENTRY_SIZE;
  }
  const statsCount = view.getUint32(o);
  o += 4;
  if (statsCount > MAX_RING_PEERS) throw bad('too many peers');
  if (o + statsCount * STATS_SIZE !== bytes.length) throw bad('length does not match counts');
  const stats = new Map<PeerName, PeerStats>();
  let previous = '';
  for (let i = 0; i < statsCount; i++) {
    const peer = readName(bytes, o);
    if (!(previous < peer)) throw bad('peer stats not sorted');
    previous = peer;
    stats.set(peer, { version: view.getUint32(o + 6), free: view.getUint32(o + 10), inUse: view.getUint32(o + 14) });
    o += STATS_SIZE;
  }
  return new Ring(range, seeds, entries, stats);
}
