/**
 * What this server answers itself, and how an answer is fitted into a UDP datagram.
 * Pure: the record source and the random order are passed in.
 */
import * as dnsPacket from 'dns-packet';
import { addressFromReverseName, isInDomain, isReverseName } from './names.js';
import { QTYPE, RCODE, type DnsQuery } from './query.js';

export interface RecordSource {
  lookup(name: string): string[];
  reverseLookup(address: string): string[];
}

export interface AnswerPolicy {
  /** Canonical domain, e.g. "loom.local". */
  domain: string;
  ttlSeconds: number;
}

export type Resolution = { kind: 'answer'; packet: dnsPacket.Packet; rcode: number } | { kind: 'forward' };

/** Largest UDP payload we ever send, whatever the client advertises. */
export const MAX_UDP_PAYLOAD = 4096;
/** Without an OPT record a client can take 512 bytes (RFC 1035). */
export const CLASSIC_UDP_PAYLOAD = 512;

/**
 * In our domain: A answers (all addresses, shuffled), NODATA for other types of a known name,
 * NXDOMAIN for unknown ones. A single label is looked up in our domain and answered under the name
 * as asked. Reverse names of container addresses get PTR answers. Everything else is forwarded.
 */
export function resolveLocally(query: DnsQuery, source: RecordSource, policy: AnswerPolicy, random: () => number = Math.random): Resolution {
  const name = query.name;
  if (isReverseName(name)) {
    const address = addressFromReverseName(name);
    const names = address === null ? [] : source.reverseLookup(address);
    if (names.length === 0) return { kind: 'forward' };
    if (query.qtype !== QTYPE.PTR && query.qtype !== QTYPE.ANY) return respond(query, RCODE.NOERROR, []);
    return respond(query, RCODE.NOERROR, names.map((n) => ({ type: 'PTR', name: query.question.name, ttl: policy.ttlSeconds, class: 'IN', data: n })));
  }
  const singleLabel = name !== '.' && !name.includes('.');
  if (!singleLabel && !isInDomain(name, policy.domain)) return { kind: 'forward' };
  const addresses = source.lookup(singleLabel ? `${name}.${policy.domain}` : name);
  if (addresses.length === 0) {
    if (singleLabel) return { kind: 'forward' };
    return respond(query, name === policy.domain ? RCODE.NOERROR : RCODE.NXDOMAIN, []);
  }
  if (query.qtype !== QTYPE.A && query.qtype !== QTYPE.ANY) return respond(query, RCODE.NOERROR, []);
  shuffle(addresses, random);
  return respond(query, RCODE.NOERROR, addresses.map((a) => ({ type: 'A', name: query.question.name, ttl: policy.ttlSeconds, class: 'IN', data: a })));
}

function respond(query: DnsQuery, rcode: number, answers: dnsPacket.Answer[]): Resolution {
  const flags = dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | (query.recursionDesired ? dnsPacket.RECURSION_DESIRED : 0) | rcode;
  const packet: dnsPacket.Packet = {
    type: 'response',
    id: query.id,
    flags,
    questions: [query.question],
    answers,
    authorities: [],
    additionals: query.ednsUdpSize === null ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: MAX_UDP_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  };
  return { kind: 'answer', packet, rcode };
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

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}
