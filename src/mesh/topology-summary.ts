/**
 * Topology summary: what a router holds, as (name, uid, version) per entry, without the
 * connections (18 bytes per peer instead of ~250). Exchanged when a connection starts and when
 * fingerprints differ (topology-digest.ts); each side then sends only the entries the other
 * lacks or holds older (`entriesNewerThan`), so a repair costs O(n x 18 B) + O(difference),
 * not a full state.
 *
 *   u8 format (3)   u8 flags (bit0: reply)   u32 count
 *   per entry: 6B peer name   8B uid   u32 version
 *
 * A `request` asks the receiver to answer with its own summary (flag reply) when the sender has
 * something the receiver lacks; a reply is never answered with a summary, so an exchange ends
 * after at most two summaries and two deltas.
 */
import { LoomError } from '../core/errors.js';
import { peerNameFromBytes, peerNameToBytes, type PeerName, type PeerUid } from '../core/ids.js';
import { MAX_ENTRIES } from './topology-codec.js';
import { TopologyDigest } from './topology-digest.js';
import type { PeerEntry } from './topology-entry.js';
import type { GossipData } from './types.js';

export const SUMMARY_FORMAT = 3;
const HEADER = 1 + 1 + 4;
const ROW = 6 + 8 + 4;

export interface SummaryRow {
  uid: PeerUid;
  version: number;
}

export function isSummary(payload: Uint8Array): boolean {
  return payload[0] === SUMMARY_FORMAT;
}

/** Pending summary for one neighbour: the newest content wins; a request stays a request. */
export class TopologySummary implements GossipData {
  constructor(
    readonly rows: ReadonlyMap<PeerName, SummaryRow>,
    readonly reply: boolean,
  ) {}

  static of(entries: Iterable<PeerEntry>, reply: boolean): TopologySummary {
    const rows = new Map<PeerName, SummaryRow>();
    for (const e of entries) rows.set(e.name, { uid: e.uid, version: e.version });
    return new TopologySummary(rows, reply);
  }

  /** Throws ERR_PROTOCOL on anything malformed. */
  static decode(payload: Uint8Array): TopologySummary {
    if (payload.length < HEADER || payload[0] !== SUMMARY_FORMAT) throw new LoomError('ERR_PROTOCOL', 'malformed topology summary');
    const flags = payload[1]!;
    if (flags > 1) throw new LoomError('ERR_PROTOCOL', 'topology summary has unknown flags');
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const count = view.getUint32(2);
    if (count > MAX_ENTRIES || payload.length !== HEADER + count * ROW) throw new LoomError('ERR_PROTOCOL', 'topology summary length does not match its count');
    const rows = new Map<PeerName, SummaryRow>();
    for (let i = 0, at = HEADER; i < count; i++, at += ROW) {
      const name = peerNameFromBytes(payload.subarray(at, at + 6));
      if (rows.has(name)) throw new LoomError('ERR_PROTOCOL', 'topology summary names a peer twice');
      rows.set(name, { uid: Buffer.from(payload.subarray(at + 6, at + 14)).toString('hex') as PeerUid, version: view.getUint32(at + 14) });
    }
    return new TopologySummary(rows, (flags & 1) !== 0);
  }

  encode(): Uint8Array {
    const out = new Uint8Array(HEADER + this.rows.size * ROW);
    const view = new DataView(out.buffer);
    out[0] = SUMMARY_FORMAT;
    out[1] = this.reply ? 1 : 0;
    view.setUint32(2, this.rows.size);
    let at = HEADER;
    for (const [name, row] of this.rows) {
      peerNameToBytes(name, out, at);
      out.set(Buffer.from(row.uid, 'hex').subarray(0, 8), at + 6);
      view.setUint32(at + 14, row.version);
      at += ROW;
    }
    return out;
  }

  /** Shares the 'repair' slot with digests: a summary says more than a digest, so it wins. */
  merge(other: GossipData): GossipData {
    if (other instanceof TopologyDigest) return this;
    if (!(other instanceof TopologySummary)) throw new LoomError('ERR_INTERNAL', 'topology summary can only merge with topology repair data');
    return new TopologySummary(other.rows, this.reply && other.reply);
  }
}

/** Our entries that the summary's owner lacks or holds in an older (version, uid). */
export function entriesNewerThan(ours: Iterable<PeerEntry>, theirs: TopologySummary): PeerEntry[] {
  const out: PeerEntry[] = [];
  for (const e of ours) {
    const row = theirs.rows.get(e.name);
    if (!row || isNewer(e, row)) out.push(e);
  }
  return out;
}

/** True when the summary holds an entry we lack or one newer than ours. */
export function summaryHasNews(ours: ReadonlyMap<PeerName, PeerEntry>, theirs: TopologySummary): boolean {
  for (const [name, row] of theirs.rows) {
    const e = ours.get(name);
    if (!e || isNewer(row, e)) return true;
  }
  return false;
}

function isNewer(a: SummaryRow, b: SummaryRow): boolean {
  return a.version > b.version || (a.version === b.version && a.uid > b.uid);
}
