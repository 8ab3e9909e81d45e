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
