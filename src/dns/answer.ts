/**
 * What this server answers itself, how an answer is fitted into a UDP datagram, and the cache
 * of encoded answers that serves repeated questions without decoding or encoding anything.
 * Pure apart from the cache's own map: the record source and the random order are passed in.
 */
import * as dnsPacket from 'dns-packet';
import { addressFromReverseName, isInDomain, isReverseName } from './names.js';
import { CLASSIC_UDP_PAYLOAD, HEADER_BYTES, MAX_UDP_PAYLOAD, QTYPE, RCODE, type DnsQuery, type QuestionPeek } from './query.js';

export { CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD } from './query.js';

export interface RecordSource {
  lookup(name: string): string[];
  reverseLookup(address: string): string[];
  /**
   * Optional: a number that changes whenever any lookup or reverse lookup may answer differently
   * (a write, a merge, a change of reachability); undefined when not tracked. The cache then
   * trusts an entry checked at the same count without reading the records again.
   */
  readonly changeCount?: number | undefined;
}

export interface AnswerPolicy {
  /** Canonical domain, e.g. "loom.local". */
  domain: string;
  ttlSeconds: number;
}

/** The store read an answer was built from; the answer stays right exactly while it reads the same. */
export interface AnswerBasis {
  readonly source: 'lookup' | 'reverseLookup';
  readonly key: string;
  readonly values: readonly string[];
}

/**
 * An answer in record order as the store gave it. `shuffle` marks A answers, whose order is
 * randomised per reply (round robin).
 */
export type Resolution = { kind: 'answer'; rcode: number; answers: dnsPacket.Answer[]; authorities: dnsPacket.Answer[]; shuffle: boolean; basis: AnswerBasis } | { kind: 'forward' };

/**
 * In our domain: A answers (all addresses, shuffled per reply), NODATA for other types of a
 * known name, NXDOMAIN for unknown ones. A single label is looked up in our domain and answered
 * under the name as asked. Reverse names of container addresses get PTR answers. Everything
 * else is forwarded.
 *
 * Negative answers (NXDOMAIN, NODATA) for names in the domain carry the domain's SOA in the
 * authority section (`negativeSoa`), so resolvers can cache them (RFC 2308). Not for a single
 * label or a reverse name: our domain's SOA is not an ancestor of those, and resolvers ignore it.
 */
export function resolveLocally(query: DnsQuery, source: RecordSource, policy: AnswerPolicy): Resolution {
  const name = query.name;
  if (isReverseName(name)) {
    const address = addressFromReverseName(name);
    const names = address === null ? [] : source.reverseLookup(address);
    if (address === null || names.length === 0) return { kind: 'forward' };
    const basis: AnswerBasis = { source: 'reverseLookup', key: address, values: names };
    if (query.qtype !== QTYPE.PTR && query.qtype !== QTYPE.ANY) return answer(RCODE.NOERROR, [], basis);
    return answer(RCODE.NOERROR, names.map((n) => ({ type: 'PTR', name: query.question.name, ttl: policy.ttlSeconds, class: 'IN', data: n })), basis);
  }
  const singleLabel = name !== '.' && !name.includes('.');
  if (!singleLabel && !isInDomain(name, policy.domain)) return { kind: 'forward' };
  const key = singleLabel ? `${name}.${policy.domain}` : name;
  const addresses = source.lookup(key);
  const basis: AnswerBasis = { source: 'lookup', key, values: addresses };
  if (addresses.length === 0) {
    if (singleLabel) return { kind: 'forward' };
    return answer(name === policy.domain ? RCODE.NOERROR : RCODE.NXDOMAIN, [], basis, false, negativeSoa(policy));
  }
  if (query.qtype !== QTYPE.A && query.qtype !== QTYPE.ANY) return answer(RCODE.NOERROR, [], basis, false, singleLabel ? [] : negativeSoa(policy));
  const records = addresses.map((a): dnsPacket.Answer => ({ type: 'A', name: query.question.name, ttl: policy.ttlSeconds, class: 'IN', data: a }));
  return answer(RCODE.NOERROR, records, basis, true);
}

function answer(rcode: number, answers: dnsPacket.Answer[], basis: AnswerBasis, shuffled = false, authorities: dnsPacket.Answer[] = []): Resolution {
  return { kind: 'answer', rcode, answers, authorities, shuffle: shuffled, basis };
}

/**
 * The domain's SOA for the authority section of a negative answer. RFC 2308: a resolver caches
 * the negative answer for min(SOA TTL, MINIMUM), both our `ttlSeconds`, so a name that appears
 * is seen as soon as a positive answer would be. There is no primary server or zone transfer:
 * MNAME/RNAME are names under the domain, SERIAL is fixed, REFRESH/RETRY/EXPIRE are nominal.
 */
export function negativeSoa(policy: AnswerPolicy): dnsPacket.Answer[] {
  return [
    {
      type: 'SOA',
      name: policy.domain,
      ttl: policy.ttlSeconds,
      class: 'IN',
      data: { mname: `ns.${policy.domain}`, rname: `hostmaster.${policy.domain}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: policy.ttlSeconds },
    },
  ];
}

/** The reply packet for a local answer, answers in the order given. */
export function replyPacket(query: DnsQuery, rcode: number, answers: dnsPacket.Answer[], authorities: dnsPacket.Answer[] = []): dnsPacket.Packet {
  const flags = dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | (query.recursionDesired ? dnsPacket.RECURSION_DESIRED : 0) | rcode;
  return {
    type: 'response',
    id: query.id,
    flags,
    questions: [query.question],
    answers,
    authorities,
    additionals: query.ednsUdpSize === null ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: MAX_UDP_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  };
}

/** The UDP size limit for a reply to `query`: the client's EDNS0 size within [512, 4096], else 512. */
export function udpLimitFor(query: DnsQuery): number {
  if (query.ednsUdpSize === null) return CLASSIC_UDP_PAYLOAD;
  return Math.min(MAX_UDP_PAYLOAD, Math.max(CLASSIC_UDP_PAYLOAD, query.ednsUdpSize));
}

/**
 * Encodes `packet` within `limit` bytes. When it does not fit, keeps as many answers as fit
 * (estimated from the average answer size, then checked), sets TC, and keeps the OPT record.
 */
export function encodeWithin(packet: dnsPacket.Packet, limit: number): Buffer {
  const full = dnsPacket.encodingLength(packet);
  if (full <= limit) return dnsPacket.encode(packet);
  const answers = packet.answers ?? [];
  const bare = { ...packet, answers: [] };
  const empty = dnsPacket.encodingLength(bare);
  const perAnswer = answers.length === 0 ? 0 : (full - empty) / answers.length;
  let fit = perAnswer === 0 ? 0 : Math.min(answers.length, Math.max(0, Math.floor((limit - empty) / perAnswer)));
  const truncated = (n: number): dnsPacket.Packet => ({ ...packet, flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: answers.slice(0, n) });
  // Answers of unequal size (PTR) can make the estimate too high; step down until it fits.
  while (fit > 0 && dnsPacket.encodingLength(truncated(fit)) > limit) fit--;
  return dnsPacket.encode(truncated(fit));
}

export function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}

// ----- the answer cache -------------------------------------------------------------------

/**
 * One encoded answer, with the places a reply to another query of the same key differs: the id,
 * the RD bit, the question (case, and the type for NODATA answers), the answer names (they echo
 * the question's case), and the order of A addresses.
 */
export interface CachedAnswer {
  readonly basis: AnswerBasis;
  readonly rcode: number;
  /** The full (never truncated) reply, answers in store order. Never sent itself: copied. */
  readonly template: Buffer;
  /** Where each answer's owner name starts (a copy of the question name). */
  readonly nameOffsets: readonly number[];
  /** Where each A answer's 4 address bytes start, when the order is shuffled per reply; else empty. */
  readonly addressOffsets: readonly number[];
  /** The source's changeCount when this entry was last found current (set by AnswerCache.get). */
  checkedAt?: number | undefined;
  /** The key and offsets as the native responder's table takes them, made on the first put. */
  nativeForm?: { readonly key: Buffer; readonly names: Uint16Array; readonly addresses: Uint16Array } | undefined;
}

/**
 * Builds the cache entry for the reply to `query` (which `peek` describes), or null when the
 * encoding is not laid out as expected (then the caller encodes the ordinary way).
 */
export function cacheEntryFor(query: DnsQuery, peek: QuestionPeek, resolution: Resolution & { kind: 'answer' }): CachedAnswer | null {
  const template = dnsPacket.encode(replyPacket(query, resolution.rcode, resolution.answers, resolution.authorities));
  const raw = query.raw;
  const nameLength = peek.nameEnd - HEADER_BYTES;
  if (template.length < peek.questionEnd || template.compare(raw, HEADER_BYTES, peek.questionEnd, HEADER_BYTES, peek.questionEnd) !== 0) return null;
  const nameOffsets: number[] = [];
  const addressOffsets: number[] = [];
  let o = peek.questionEnd;
  for (let i = 0; i < resolution.answers.length; i++) {
    if (o + nameLength + 10 > template.length || template.compare(raw, HEADER_BYTES, peek.nameEnd, o, o + nameLength) !== 0) return null;
    nameOffsets.push(o);
    o += nameLength;
    const type = template.readUInt16BE(o);
    const rdLength = template.readUInt16BE(o + 8);
    o += 10;
    if (resolution.shuffle) {
      if (type !== 1 || rdLength !== 4) return null;
      addressOffsets.push(o);
    }
    o += rdLength;
  }
  return { basis: resolution.basis, rcode: resolution.rcode, template, nameOffsets, addressOffsets };
}

/** The reply to the query in `raw` (described by `peek`) from a cached answer: one allocation, no decoding. */
export function replyFromCache(entry: CachedAnswer, raw: Buffer, peek: QuestionPeek, random: () => number): Buffer {
  const out = Buffer.allocUnsafe(entry.template.length);
  replyFromCacheInto(entry, raw, peek, random, out);
  return out;
}

/**
 * `replyFromCache` written into the caller's `out` (at offset 0, which must hold the template);
 * returns the reply's length. For replies staged straight in a send buffer (no allocation).
 */
export function replyFromCacheInto(entry: CachedAnswer, raw: Buffer, peek: QuestionPeek, random: () => number, out: Buffer): number {
  const template = entry.template;
  if (out.length < template.length) throw new RangeError('reply buffer smaller than the cached answer');
  template.copy(out);
  out[0] = raw[0]!;
  out[1] = raw[1]!;
  out[2] = (template[2]! & 0xfe) | (raw[2]! & 0x01);
  // Byte loops: for a few dozen bytes they beat Buffer#copy, which goes through subarray + set.
  for (let i = HEADER_BYTES; i < peek.questionEnd; i++) out[i] = raw[i]!;
  const names = entry.nameOffsets;
  for (let n = 0; n < names.length; n++) {
    const at = names[n]! - HEADER_BYTES;
    for (let i = HEADER_BYTES; i < peek.nameEnd; i++) out[at + i] = raw[i]!;
  }
  // Fisher-Yates over the address slots: the same permutation `shuffle` makes of the records.
  const slots = entry.addressOffsets;
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const a = slots[i]!;
    const b = slots[j]!;
    const t = out.readUInt32BE(a);
    out.writeUInt32BE(out.readUInt32BE(b), a);
    out.writeUInt32BE(t, b);
  }
  return template.length;
}

/** True while `source` still reads what `entry` was built from. */
export function isCurrent(entry: CachedAnswer, source: RecordSource): boolean {
  const now = entry.basis.source === 'lookup' ? source.lookup(entry.basis.key) : source.reverseLookup(entry.basis.key);
  const then = entry.basis.values;
  if (now.length !== then.length) return false;
  for (let i = 0; i < now.length; i++) if (now[i] !== then[i]) return false;
  return true;
}

/**
 * Encoded answers by question key (`peekQuestion`), at most `capacity`; the oldest insert goes
 * first when full. Entries are checked against the store on every hit (`isCurrent`), so a record
 * change, a removal or a peer becoming unreachable shows in the very next reply.
 */
export class AnswerCache {
  private readonly entries = new Map<string, CachedAnswer>();
  hits = 0;
  misses = 0;

  constructor(private readonly capacity = 8192) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The entry for `key` if it is still current; a stale one is dropped. An entry already found
   * current at the source's present changeCount is not read again (one number per hit).
   */
  get(key: string, source: RecordSource): CachedAnswer | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      const count = source.changeCount;
      if (count !== undefined && entry.checkedAt === count) {
        this.hits++;
        return entry;
      }
      if (isCurrent(entry, source)) {
        entry.checkedAt = count;
        this.hits++;
        return entry;
      }
    }
    if (entry !== undefined) this.entries.delete(key);
    this.misses++;
    return undefined;
  }

  set(key: string, entry: CachedAnswer): void {
    if (this.entries.size >= this.capacity && !this.entries.has(key)) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, entry);
  }

  clear(): void {
    this.entries.clear();
  }
}
