/**
 * Checks an incoming DNS message before anything else looks at it. Never throws: every byte
 * sequence yields "drop", an error reply (header only), or a parsed query.
 *
 * Dropped: shorter than a header, or QR=1 (a response: answering it could start a loop).
 * NOTIMP: opcode other than QUERY. FORMERR: not exactly one question, records in the answer or
 * authority sections, more than a few additionals, a malformed question (compression pointers in
 * it, overruns), anything dns-packet cannot decode, or more than one OPT.
 * REFUSED: a class other than IN or ANY.
 */
import * as dnsPacket from 'dns-packet';
import { canonicalName } from './names.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const QTYPE = { A: 1, PTR: 12, ANY: 255 } as const;
const CLASS_IN = 1;
const CLASS_ANY = 255;
const MAX_ADDITIONALS = 4;
const MAX_LABELS = 128;

export interface DnsQuery {
  readonly id: number;
  readonly recursionDesired: boolean;
  /** The question as dns-packet decoded it (original case), echoed in replies. */
  readonly question: dnsPacket.Question;
  /** Canonical form of the question name (lower case, no trailing dot; "." for the root). */
  readonly name: string;
  readonly qtype: number;
  /** The client's EDNS0 UDP payload size, or null when it sent no OPT record. */
  readonly ednsUdpSize: number | null;
  /** Offset just past the question section in `raw`. */
  readonly questionEnd: number;
  readonly raw: Buffer;
}

export type Inspection = { kind: 'drop' } | { kind: 'reply'; rcode: number; response: Buffer } | { kind: 'query'; query: DnsQuery };

export const HEADER_BYTES = 12;
/** Largest UDP payload we ever send, whatever the client advertises. */
export const MAX_UDP_PAYLOAD = 4096;
/** Without an OPT record a client can take 512 bytes (RFC 1035). */
export const CLASSIC_UDP_PAYLOAD = 512;

export function inspectQuery(raw: Buffer): Inspection {
  if (raw.length < HEADER_BYTES) return { kind: 'drop' };
  const flags = raw.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return { kind: 'drop' };
  if (((flags >> 11) & 0x0f) !== 0) return errorReply(raw, RCODE.NOTIMP);
  const qdcount = raw.readUInt16BE(4);
  if (qdcount !== 1 || raw.readUInt16BE(6) !== 0 || raw.readUInt16BE(8) !== 0 || raw.readUInt16BE(10) > MAX_ADDITIONALS) {
    return errorReply(raw, RCODE.FORMERR);
  }
  const questionEnd = questionEndOffset(raw);
  if (questionEnd === null) return errorReply(raw, RCODE.FORMERR);
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(raw);
  } catch {
    return errorReply(raw, RCODE.FORMERR);
  }
  const question = packet.questions?.[0];
  if (!question) return errorReply(raw, RCODE.FORMERR);
  const opts = (packet.additionals ?? []).filter((a) => a.type === 'OPT');
  if (opts.length > 1) return errorReply(raw, RCODE.FORMERR);
  const qclass = raw.readUInt16BE(questionEnd - 2);
  if (qclass !== CLASS_IN && qclass !== CLASS_ANY) return errorReply(raw, RCODE.REFUSED);
  const opt = opts[0];
  return {
    kind: 'query',
    query: {
      id: raw.readUInt16BE(0),
      recursionDesired: (flags & 0x0100) !== 0,
      question,
      name: canonicalName(question.name),
      qtype: raw.readUInt16BE(questionEnd - 4),
      ednsUdpSize: opt && 'udpPayloadSize' in opt ? opt.udpPayloadSize : null,
      questionEnd,
      raw,
    },
  };
}

/** End of the single question, or null if its name is malformed or uses compression. */
function questionEndOffset(raw: Buffer): number | null {
  let o = HEADER_BYTES;
  for (let labels = 0; labels <= MAX_LABELS; labels++) {
    if (o >= raw.length) return null;
    const length = raw[o]!;
    if (length === 0) {
      o += 1;
      return o + 4 <= raw.length ? o + 4 : null;
    }
    if ((length & 0xc0) !== 0) return null;
    o += length + 1;
  }
  return null;
}

/** A header-only reply with `rcode`, keeping the query's id, opcode and RD bit. */
export function errorReply(raw: Buffer, rcode: number): Inspection {
  return { kind: 'reply', rcode, response: headerOnlyReply(raw, rcode) };
}

export function headerOnlyReply(raw: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  out[0] = raw[0]!;
  out[1] = raw[1]!;
  out[2] = 0x80 | (raw[2]! & 0x79);
  out[3] = 0x80 | (rcode & 0x0f);
  return out;
}

/**
 * What the answer cache needs from a query, read straight from the bytes (no decoding). Filled
 * by `peekQuestion` into a caller-owned object that is reused for every query.
 */
export interface QuestionPeek {
  /** Cache key: the lower-cased wire-format name plus one byte for (question kind, EDNS). */
  key: string;
  /** Offset just past the name's terminating zero; the name is raw[12, nameEnd). */
  nameEnd: number;
  /** nameEnd + 4 (type and class). */
  questionEnd: number;
  /** The client's UDP payload limit, clamped like `udpLimitFor`. */
  udpLimit: number;
}

export function newQuestionPeek(): QuestionPeek {
  return { key: '', nameEnd: 0, questionEnd: 0, udpLimit: 0 };
}

const OPT_TYPE = 41;
const MAX_WIRE_NAME = 255;
/** Lower-cased name bytes plus the kind byte; one per process, the hot path is synchronous. */
const keyScratch = Buffer.allocUnsafe(MAX_WIRE_NAME + 1);

/**
 * Key strings already made, by a hash of their bytes, so a repeated question reuses its string
 * instead of allocating one: it was the last garbage per cached answer at 10,000 q/s (young-
 * generation collections pause every query: the tail). A hit is checked byte for byte; a
 * colliding or new key is made the ordinary way. Bounded: cleared when full (then refilled by
 * the questions that keep coming).
 */
const KEY_INTERN_LIMIT = 8192;
const internedKeys = new Map<number, string>();

/** The key for keyScratch[0, k): the interned string when its bytes are the same, else a new one. */
function keyFor(k: number): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < k; i++) h = Math.imul(h ^ keyScratch[i]!, 0x01000193);
  const known = internedKeys.get(h);
  if (known !== undefined && known.length === k) {
    let same = true;
    for (let i = 0; i < k; i++) {
      if (known.charCodeAt(i) !== keyScratch[i]) {
        same = false;
        break;
      }
    }
    if (same) return known;
  }
  const key = keyScratch.toString('latin1', 0, k);
  if (known === undefined) {
    if (internedKeys.size >= KEY_INTERN_LIMIT) internedKeys.clear();
    internedKeys.set(h, key);
  }
  return key;
}

/** Question kinds the answers depend on; every other type gets the same (NODATA) answer. */
function kindOf(qtype: number): number {
  return qtype === QTYPE.A ? 0 : qtype === QTYPE.ANY ? 1 : qtype === QTYPE.PTR ? 2 : 3;
}

/**
 * Fills `out` and returns true only for the plain common case, for which `inspectQuery` is
 * certain to return a query with the same name, type and EDNS size: QUERY opcode, QR=0, one
 * question of class IN whose name has only letters, digits, '-' and '_' (no compression), and
 * either nothing after it or exactly one OPT record with no options, ending the message.
 * Anything else returns false and takes the full path. Bounded: at most 255 name bytes are read.
 */
export function peekQuestion(raw: Buffer, out: QuestionPeek): boolean {
  const length = raw.length;
  if (length < HEADER_BYTES + 5 || (raw[2]! & 0xf8) !== 0) return false;
  if (raw[4] !== 0 || raw[5] !== 1 || raw[6] !== 0 || raw[7] !== 0 || raw[8] !== 0 || raw[9] !== 0 || raw[10] !== 0) return false;
  const additionals = raw[11]!;
  if (additionals > 1) return false;
  let o = HEADER_BYTES;
  let k = 0;
  for (;;) {
    if (o >= length) return false;
    const label = raw[o]!;
    if (label === 0) break;
    if (label > 63 || o + label + 1 > length || o + label + 1 - HEADER_BYTES >= MAX_WIRE_NAME) return false;
    keyScratch[k++] = label;
    for (let end = o + 1 + label, i = o + 1; i < end; i++) {
      let c = raw[i]!;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return false;
      keyScratch[k++] = c;
    }
    o += label + 1;
  }
  if (k === 0) return false;
  const nameEnd = o + 1;
  const questionEnd = nameEnd + 4;
  if (questionEnd > length || raw.readUInt16BE(nameEnd + 2) !== CLASS_IN) return false;
  let udpLimit = CLASSIC_UDP_PAYLOAD;
  if (additionals === 0) {
    if (questionEnd !== length) return false;
  } else {
    // OPT: root name, type 41, class = UDP size, TTL (ext. rcode, version, flags), RDLENGTH 0.
    if (length !== questionEnd + 11 || raw[questionEnd] !== 0 || raw.readUInt16BE(questionEnd + 1) !== OPT_TYPE || raw.readUInt16BE(questionEnd + 9) !== 0) return false;
    udpLimit = Math.min(MAX_UDP_PAYLOAD, Math.max(CLASSIC_UDP_PAYLOAD, raw.readUInt16BE(questionEnd + 3)));
  }
  keyScratch[k++] = kindOf(raw.readUInt16BE(nameEnd)) * 2 + additionals;
  out.key = keyFor(k);
  out.nameEnd = nameEnd;
  out.questionEnd = questionEnd;
  out.udpLimit = udpLimit;
  return true;
}
