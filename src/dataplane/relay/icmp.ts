/**
 * ICMP "fragmentation needed" for the relay path (RFC 792 type 3 code 4, next-hop MTU per
 * RFC 1191), so a container's TCP adapts its segment size instead of black-holing when a frame
 * with DF set is too big for the relay.
 *
 * The answer is built the way a router on the path would build it (and as Weave's sleeve did):
 * Ethernet addresses swapped, IP source = the original destination, IP destination = the
 * original source, TTL 64, TOS copied, ID 0, no flags; ICMP body = the original IP header with
 * options + the first 8 bytes of its payload (enough for TCP/UDP ports and the TCP sequence
 * number, which Linux checks before it lowers the path MTU).
 *
 * Pure and hot-path safe: reads at most the Ethernet header plus 68 bytes of the frame, writes
 * at most FRAG_NEEDED_MAX_FRAME_BYTES, allocates nothing when `out` is given, and never throws
 * on frame bytes: anything that should not (or cannot) be answered gives null.
 */
import { LoomError } from '../../core/errors.js';
import { internetChecksum } from './checksum.js';

const ETHERNET_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const IPV4_MIN_HEADER = 20;
const IPV4_MAX_HEADER = 60;
const IPPROTO_ICMP = 1;
const ICMP_HEADER = 8;
/** Bytes of the original payload quoted after its IP header (RFC 792). */
const QUOTED_PAYLOAD = 8;
const FLAG_DF = 0x40;
const FRAGMENT_OFFSET_MASK = 0x1fff;
const ICMP_DEST_UNREACHABLE = 3;
const ICMP_CODE_FRAG_NEEDED = 4;
const ANSWER_TTL = 64;

/** RFC 791: every host must accept 68-byte packets, so no next-hop MTU below it is meaningful. */
export const MIN_FRAG_NEEDED_MTU = 68;
export const MAX_FRAG_NEEDED_MTU = 0xffff;
/** Largest frame fragNeededFor writes: Ethernet 14 + IP 20 + ICMP 8 + quoted header 60 + 8. */
export const FRAG_NEEDED_MAX_FRAME_BYTES = ETHERNET_HEADER + IPV4_MIN_HEADER + ICMP_HEADER + IPV4_MAX_HEADER + QUOTED_PAYLOAD;

/**
 * For an Ethernet frame carrying an IPv4 packet with DF set that is longer than `mtu` (the
 * largest inner IP packet the path carries), the Ethernet frame of the ICMP "fragmentation
 * needed" answer to its sender; otherwise null.
 *
 * Null (no answer) for: not IPv4 (VLAN tags included), a malformed or truncated header, a bad
 * header checksum, DF clear, a non-first fragment, a packet that fits, an ICMP error (never
 * answer an error with an error, RFC 1122 3.2.2), and a sender or destination no ICMP error may
 * go to or come from (RFC 1812 4.3.2.7): link-layer broadcast or multicast, source 0/8, 127/8
 * or 224/3 (multicast, reserved, broadcast), destination 224/3.
 *
 * `out`: where to write (the caller's buffer, at least FRAG_NEEDED_MAX_FRAME_BYTES); the result
 * is then a view of its first bytes. Without it, one buffer of the exact size is allocated.
 * Throws ERR_INVALID_ARGUMENT only for caller mistakes: `mtu` not an integer in 68..65535, or
 * `out` too small.
 */
export function fragNeededFor(frame: Uint8Array, mtu: number, out?: Uint8Array): Uint8Array | null {
  if (!Number.isInteger(mtu) || mtu < MIN_FRAG_NEEDED_MTU || mtu > MAX_FRAG_NEEDED_MTU) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `fragmentation-needed MTU must be an integer in ${MIN_FRAG_NEEDED_MTU}..${MAX_FRAG_NEEDED_MTU}`);
  }
  if (out !== undefined && out.length < FRAG_NEEDED_MAX_FRAME_BYTES) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `output buffer must hold ${FRAG_NEEDED_MAX_FRAME_BYTES} bytes`);
  }
  const quoteBytes = answerableQuoteBytes(frame, mtu);
  if (quoteBytes === 0) return null;
  const length = ETHERNET_HEADER + IPV4_MIN_HEADER + ICMP_HEADER + quoteBytes;
  const answer = out === undefined ? new Uint8Array(length) : out.subarray(0, length);
  writeAnswer(frame, mtu, quoteBytes, answer);
  return answer;
}

/** How many bytes of the original IP packet the answer quotes, or 0 when it gets no answer. */
function answerableQuoteBytes(frame: Uint8Array, mtu: number): number {
  const ip = ETHERNET_HEADER;
  if (frame.length < ip + IPV4_MIN_HEADER) return 0;
  // Individual/group bit: a frame sent to (or claiming to come from) a group gets no answer.
  if ((frame[0]! & 1) !== 0 || (frame[6]! & 1) !== 0) return 0;
  if (((frame[12]! << 8) | frame[13]!) !== ETHERTYPE_IPV4) return 0;
  const versionIhl = frame[ip]!;
  if (versionIhl >> 4 !== 4) return 0;
  const headerBytes = (versionIhl & 0x0f) * 4;
  if (headerBytes < IPV4_MIN_HEADER) return 0;
  const totalLength = (frame[ip + 2]! << 8) | frame[ip + 3]!;
  if (totalLength <= mtu) return 0;
  // The whole packet must be in the frame: we answer what the sender really sent, not a claim.
  if (totalLength < headerBytes + QUOTED_PAYLOAD || ip + totalLength > frame.length) return 0;
  const flags = frame[ip + 6]!;
  if ((flags & FLAG_DF) === 0) return 0;
  if ((((flags << 8) | frame[ip + 7]!) & FRAGMENT_OFFSET_MASK) !== 0) return 0;
  if (internetChecksum(frame, ip, headerBytes) !== 0) return 0;
  const source = frame[ip + 12]!;
  if (source === 0 || source === 127 || source >= 224) return 0;
  if (frame[ip + 16]! >= 224) return 0;
  if (frame[ip + 9] === IPPROTO_ICMP && isIcmpError(frame[ip + headerBytes]!)) return 0;
  return headerBytes + QUOTED_PAYLOAD;
}

/** Destination unreachable, source quench, redirect, time exceeded, parameter problem. */
function isIcmpError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

function writeAnswer(frame: Uint8Array, mtu: number, quoteBytes: number, answer: Uint8Array): void {
  const ipIn = ETHERNET_HEADER;
  // Ethernet: back to the sender, from the MAC it sent to.
  answer.set(frame.subarray(6, 12), 0);
  answer.set(frame.subarray(0, 6), 6);
  answer[12] = ETHERTYPE_IPV4 >> 8;
  answer[13] = ETHERTYPE_IPV4 & 0xff;

  const ip = ETHERNET_HEADER;
  const icmp = ip + IPV4_MIN_HEADER;
  const ipTotal = IPV4_MIN_HEADER + ICMP_HEADER + quoteBytes;
  answer[ip] = 0x45;
  answer[ip + 1] = frame[ipIn + 1]!;
  answer[ip + 2] = ipTotal >> 8;
  answer[ip + 3] = ipTotal & 0xff;
  answer.fill(0, ip + 4, ip + 8); // ID 0, no flags, offset 0
  answer[ip + 8] = ANSWER_TTL;
  answer[ip + 9] = IPPROTO_ICMP;
  answer[ip + 10] = 0;
  answer[ip + 11] = 0;
  answer.set(frame.subarray(ipIn + 16, ipIn + 20), ip + 12); // source: the original destination
  answer.set(frame.subarray(ipIn + 12, ipIn + 16), ip + 16); // destination: the original source
  const ipSum = internetChecksum(answer, ip, IPV4_MIN_HEADER);
  answer[ip + 10] = ipSum >> 8;
  answer[ip + 11] = ipSum & 0xff;

  answer[icmp] = ICMP_DEST_UNREACHABLE;
  answer[icmp + 1] = ICMP_CODE_FRAG_NEEDED;
  answer[icmp + 2] = 0;
  answer[icmp + 3] = 0;
  answer[icmp + 4] = 0;
  answer[icmp + 5] = 0;
  answer[icmp + 6] = mtu >> 8;
  answer[icmp + 7] = mtu & 0xff;
  answer.set(frame.subarray(ipIn, ipIn + quoteBytes), icmp + ICMP_HEADER);
  const icmpSum = internetChecksum(answer, icmp, ICMP_HEADER + quoteBytes);
  answer[icmp + 2] = icmpSum >> 8;
  answer[icmp + 3] = icmpSum & 0xff;
}
