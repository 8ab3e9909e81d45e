/**
 * Gossip channel "dataplane": per peer, the MAC addresses of its local containers. Each entry is
 * written only by the peer it describes (its owner); copies merge per peer by greatest version.
 *
 * Merge is a join on a total order per peer: (version, then MAC list compared as text), so it is
 * commutative, associative and idempotent even if a restarted owner reuses a version number with
 * different content (see the property tests).
 *
 * Wire format (big endian), version 1:
 *
 *   u8 format=1 | u16 count | count x entry
 *   entry: 6 bytes peer name | u64 version (<= 2^53-1) | u16 macCount | macCount x 6 bytes MAC
 *
 * Bounds: at most MAX_PEERS entries and MAX_MACS_PER_PEER MACs per entry; the MACs of an entry are
 * unique, sorted and unicast. Anything else is ERR_PROTOCOL.
 */
import { LoomError } from '../../core/errors.js';
import { peerNameFromBytes, peerNameToBytes, type PeerName } from '../../core/ids.js';
import type { GossipData } from '../../mesh/types.js';

export const DATAPLANE_CHANNEL = 'dataplane';
export const DATAPLANE_FORMAT = 1;
export const MAX_PEERS = 1024;
export const MAX_MACS_PER_PEER = 4096;

export interface DataplaneEntry {
  peer: PeerName;
  /** Grows with every change by the owner; a safe integer. */
  version: number;
  /** Lower-case unicast MACs of the owner's containers, sorted, unique. */
  macs: readonly string[];
}

function macKey(e: DataplaneEntry): string {
  return e.macs.join(',');
}

/** True if `a` supersedes `b` in the per-peer total order. */
export function supersedes(a: DataplaneEntry, b: DataplaneEntry): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return macKey(a) > macKey(b);
}

/** Sorted, unique, lower-case copy of `macs`; throws ERR_INVALID_ARGUMENT on a bad one. */
export function normaliseMacs(macs: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const m of macs) {
    const mac = m.toLowerCase();
    if (!isUnicastMac(mac)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid unicast MAC ${JSON.stringify(m).slice(0, 40)}`);
    out.add(mac);
  }
  if (out.size > MAX_MACS_PER_PEER) throw new LoomError('ERR_INVALID_ARGUMENT', `more than ${MAX_MACS_PER_PEER} MACs on one peer`);
  return [...out].sort();
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
function isUnicastMac(mac: string): boolean {
  return MAC_RE.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00';
}

/** A set of entries, at most one per peer. Owns its map: callers hand over copies. */
export class DataplaneGossipData implements GossipData {
  readonly entries: Map<PeerName, DataplaneEntry>;

  constructor(entries: Iterable<DataplaneEntry> = []) {
    this.entries = new Map();
    for (const e of entries) this.offer(e);
  }

  /** Keeps `e` if it supersedes what we hold for its peer. Returns true if it did. */
  offer(e: DataplaneEntry): boolean {
    const have = this.entries.get(e.peer);
    if (have && !supersedes(e, have)) return false;
    this.entries.set(e.peer, e);
    return true;
  }

  /** Folds `other` in (mutating this) and returns this. Entries are immutable, so sharing them is safe. */
  merge(other: GossipData): GossipData {
    if (other instanceof DataplaneGossipData) for (const e of other.entries.values()) this.offer(e);
    return this;
  }

  encode(): Uint8Array {
    const list = [...this.entries.values()].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
    if (list.length > MAX_PEERS) throw new LoomError('ERR_INTERNAL', `dataplane gossip over ${MAX_PEERS} peers`);
    let size = 3;
    for (const e of list) size += 16 + 6 * e.macs.length;
    const buf = Buffer.alloc(size);
    buf.writeUInt8(DATAPLANE_FORMAT, 0);
    buf.writeUInt16BE(list.length, 1);
    let at = 3;
    for (const e of list) {
      peerNameToBytes(e.peer, buf, at);
      buf.writeBigUInt64BE(BigInt(e.version), at + 6);
      buf.writeUInt16BE(e.macs.length, at + 14);
      at += 16;
      for (const mac of e.macs) {
        for (let i = 0; i < 6; i++) buf[at + i] = parseInt(mac.slice(i * 3, i * 3 + 2), 16);
        at += 6;
      }
    }
    return buf;
  }
}

function protocolError(message: string): LoomError {
  return new LoomError('ERR_PROTOCOL', `dataplane gossip: ${message}`);
}

function macFromBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Parses bytes from the network. Throws ERR_PROTOCOL on anything malformed; never reads past the end. */
export function decodeDataplaneGossip(bytes: Uint8Array): DataplaneGossipData {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 3) throw protocolError('truncated header');
  if (buf.readUInt8(0) !== DATAPLANE_FORMAT) throw protocolError(`unknown format ${buf.readUInt8(0)}`);
  const count = buf.readUInt16BE(1);
  if (count > MAX_PEERS) throw protocolError(`${count} entries (max ${MAX_PEERS})`);
  const out = new DataplaneGossipData();
  let at = 3;
  for (let n = 0; n < count; n++) {
    if (at + 16 > buf.length) throw protocolError('truncated entry');
    const peer = peerNameFromBytes(buf.subarray(at, at + 6));
    const version = buf.readBigUInt64BE(at + 6);
    if (version > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError('version out of range');
    const macCount = buf.readUInt16BE(at + 14);
    if (macCount > MAX_MACS_PER_PEER) throw protocolError(`${macCount} MACs for one peer (max ${MAX_MACS_PER_PEER})`);
    at += 16;
    if (at + 6 * macCount > buf.length) throw protocolError('truncated MAC list');
    const macs: string[] = [];
    for (let i = 0; i < macCount; i++, at += 6) {
      const mac = macFromBytes(buf.subarray(at, at + 6));
      if (!isUnicastMac(mac)) throw protocolError(`MAC ${mac} is not unicast`);
      if (macs.length > 0 && mac <= macs[macs.length - 1]!) throw protocolError('MACs not sorted and unique');
      macs.push(mac);
    }
    if (out.entries.has(peer)) throw protocolError(`peer ${peer} listed twice`);
    out.entries.set(peer, { peer, version: Number(version), macs });
  }
  if (at !== buf.length) throw protocolError(`${buf.length - at} trailing bytes`);
  return out;
}
