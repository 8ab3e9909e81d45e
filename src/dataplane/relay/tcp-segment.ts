/**
 * TCP segmentation of TAP frames, for the relay's send path: a TSO super-frame from the TAP (up to
 * ~64 KB, virtio-net header + Ethernet + IPv4/IPv6 + TCP) becomes segments whose IP packets fit the
 * path, each sent as its own UDP datagram, so the underlay never fragments ours. The segments are
 * what the kernel's tcp_gso_segment would have put on the wire (wireguard-go's gsoSplit does the
 * same job):
 *
 *   - headers copied (Ethernet, IP with its options, TCP with its options); sequence numbers
 *     advanced; FIN and PSH only on the last segment, CWR only on the first; ECE, ACK number,
 *     window and options on every one;
 *   - IPv4: total length, id = original id + segment index (mod 2^16), header checksum recomputed;
 *     IPv6: payload length;
 *   - the TCP checksum left to the receiving kernel: virtio-net header NEEDS_CSUM with csum_start at
 *     the TCP header, csum_offset 16, and the checksum field holding this segment's pseudo-header
 *     sum, folded and not complemented (Linux CHECKSUM_PARTIAL). The kernel that reads the frame
 *     from its TAP completes it, or never needs to for local delivery.
 *
 * Segment size: the largest multiple of the frame's MSS (gso_size) that fits; a segment of several
 * MSS is itself a GSO frame (same gso_type, gso_size = MSS), so a jumbo underlay carries fewer,
 * bigger datagrams and the receiving kernel finishes the split. A plain (GSO none) TCP frame too big
 * for the path is cut at the largest payload that fits. When the path is smaller than the MSS
 * (a container MTU set above the path), segments shrink below the MSS: at least 8 payload bytes
 * (the kernel's TCP_MIN_GSO_SIZE), or the frame is refused.
 *
 * Refused (load returns -1), so the caller drops it or takes another path: anything but IPv4
 * (options allowed: copied to every segment, as inet_gso_segment does) or IPv6 without extension
 * headers, over untagged Ethernet, carrying TCP; truncated; lengths that disagree; an IPv4 fragment;
 * an IPv4 header checksum that does not verify; a virtio-net header the kernel would refuse or whose
 * checksum request is not the TCP checksum; a GSO type of the other IP version; SYN, RST or URG on a
 * frame that needs splitting; a plain frame with a full TCP checksum that does not verify (a split
 * would replace it with one the receiving kernel trusts); a path too small for the headers.
 *
 * Buffer ownership: load keeps a reference to `frame` (and one view of its headers) and reads it
 * again in write, so every write must happen before the caller reuses the frame's memory. Output
 * goes to the caller's buffer. Per segment, write allocates only the typed-array view the payload
 * copy needs (JS has no memcpy between two arrays without one); nothing else, no closures. Never
 * throws: bad arguments return -1 too.
 */
import { FrameSplitter } from './frame-splitter.js';
import { finishIpv4Header, foldSum, internetChecksum, pseudoHeaderSum, sumWords } from './checksum.js';
import {
  ETHERNET_HEADER_BYTES,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_HEADER_BYTES,
  vnetHeaderOk,
} from './wire.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
export const IPPROTO_TCP = 6;
export const IPV4_MIN_HEADER_BYTES = 20;
export const IPV6_HEADER_BYTES = 40;
export const TCP_MIN_HEADER_BYTES = 20;
/** Where the TCP checksum sits in the TCP header (the virtio-net csum_offset of every TCP frame here). */
export const TCP_CHECKSUM_OFFSET = 16;
/** The largest IP packet either version describes without jumbo options. */
export const MAX_IP_PACKET_BYTES = 0xffff;
/** Smallest payload of a segment cut from a GSO frame: the kernel's TCP_MIN_GSO_SIZE. */
export const MIN_GSO_SEGMENT_PAYLOAD = 8;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

/** Where the IP header starts in a TAP frame: after the virtio-net and Ethernet headers. */
const IP_AT = VNET_HEADER_BYTES + ETHERNET_HEADER_BYTES;

/** Writes a virtio-net header (little-endian fields) at out[at..at+10). */
export function writeVnetHeader(
  out: Uint8Array,
  at: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  out[at] = flags;
  out[at + 1] = gsoType;
  out[at + 2] = hdrLen & 0xff;
  out[at + 3] = hdrLen >>> 8;
  out[at + 4] = gsoSize & 0xff;
  out[at + 5] = gsoSize >>> 8;
  out[at + 6] = csumStart & 0xff;
  out[at + 7] = csumStart >>> 8;
  out[at + 8] = csumOffset & 0xff;
  out[at + 9] = csumOffset >>> 8;
}

export class TcpSegmenter extends FrameSplitter {
  /** frame[VNET_HEADER_BYTES..payloadStart): Ethernet, IP and TCP headers, copied into every segment. */
  private headers: Uint8Array = new Uint8Array(0);
  private isV6 = false;
  private ipHeaderBytes = 0;
  private tcpHeaderBytes = 0;
  private mss = 0;
  private gsoBase = VNET_GSO_NONE;
  private ipId = 0;
  private sequence = 0;
  private tcpFlags = 0;
  /** Unfolded sum of the source and destination addresses (the pseudo-header's address part). */
  private addressSum = 0;

  /**
   * Parses `frame` (valid only during the caller's turn; write reads it again) and plans its
   * split into IP packets of at most `maxIpBytes` (values above 65,535 count as 65,535). Returns
   * the number of segments, 1 when the frame already fits (write(0) then copies it unchanged, so
   * the caller may as well send `frame` itself), or -1 when it cannot be split (see the file
   * header). A segment count is at most ceil(65,495 / payload per segment).
   */
  override load(frame: Uint8Array, maxIpBytes: number): number {
    this.count = 0;
    if (!Number.isInteger(maxIpBytes) || maxIpBytes <= 0) return -1;
    const length = frame.length;
    if (length < IP_AT + IPV4_MIN_HEADER_BYTES || !vnetHeaderOk(frame, 0, length)) return -1;
    const vnetFlags = frame[0]!;
    const gsoType = frame[1]! & ~VNET_GSO_ECN;
    const etherType = (frame[IP_AT - 2]! << 8) | frame[IP_AT - 1]!;
    let ipHeaderBytes: number;
    let ipBytes: number;
    let addressAt: number;
    let addressBytes: number;
    if (etherType === ETHERTYPE_IPV4) {
      if (gsoType === VNET_GSO_TCPV6 || frame[IP_AT]! >> 4 !== 4) return -1;
      ipHeaderBytes = (frame[IP_AT]! & 0x0f) * 4;
      if (ipHeaderBytes < IPV4_MIN_HEADER_BYTES || IP_AT + ipHeaderBytes > length) return -1;
      ipBytes = (frame[IP_AT + 2]! << 8) | frame[IP_AT + 3]!;
      if ((((frame[IP_AT + 6]! << 8) | frame[IP_AT + 7]!) & 0x3fff) !== 0) return -1; // MF or an offset: a fragment
      if (frame[IP_AT + 9] !== IPPROTO_TCP) return -1;
      if (internetChecksum(frame, IP_AT, ipHeaderBytes) !== 0) return -1;
      addressAt = IP_AT + 12;
      addressBytes = 4;
    } else if (etherType === ETHERTYPE_IPV6) {
      if (gsoType === VNET_GSO_TCPV4 || length < IP_AT + IPV6_HEADER_BYTES || frame[IP_AT]! >> 4 !== 6) return -1;
      if (frame[IP_AT + 6] !== IPPROTO_TCP) return -1; // extension headers are not split
      ipHeaderBytes = IPV6_HEADER_BYTES;
      ipBytes = IPV6_HEADER_BYTES + ((frame[IP_AT + 4]! << 8) | frame[IP_AT + 5]!);
      addressAt = IP_AT + 8;
      addressBytes = 16;
    } else {
      return -1;
    }
    const tcp = IP_AT + ipHeaderBytes;
    if (ipBytes < ipHeaderBytes + TCP_MIN_HEADER_BYTES || IP_AT + ipBytes > length) return -1;
    const tcpHeaderBytes = (frame[tcp + 12]! >> 4) * 4;
    if (tcpHeaderBytes < TCP_MIN_HEADER_BYTES || ipHeaderBytes + tcpHeaderBytes > ipBytes) return -1;
    if ((vnetFlags & VNET_F_NEEDS_CSUM) !== 0) {
      const csumStart = frame[6]! | (frame[7]! << 8);
      const csumOffset = frame[8]! | (frame[9]! << 8);
      if (csumStart !== ETHERNET_HEADER_BYTES + ipHeaderBytes || csumOffset !== TCP_CHECKSUM_OFFSET) return -1;
    }
    const limit = Math.min(maxIpBytes, MAX_IP_PACKET_BYTES);
    this.frame = frame;
    this.ipEnd = IP_AT + ipBytes;
    if (ipBytes <= limit) {
      this.count = 1;
      return 1;
    }

    const tcpFlags = frame[tcp + 13]!;
    if ((tcpFlags & (TCP_SYN | TCP_RST | TCP_URG)) !== 0) return -1;
    const headerBytes = ipHeaderBytes + tcpHeaderBytes;
    const room = limit - headerBytes;
    const payloadBytes = ipBytes - headerBytes;
    let mss: number;
    let segmentPayload: number;
    if (gsoType !== VNET_GSO_NONE) {
      if (room < MIN_GSO_SEGMENT_PAYLOAD) return -1;
      mss = frame[4]! | (frame[5]! << 8);
      segmentPayload = room >= mss ? room - (room % mss) : room;
    } else {
      if (room < 1) return -1;
      if ((vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) === 0) {
        // A full checksum the frame carries is replaced by partial ones the receiver will trust.
        const tcpBytes = ipBytes - ipHeaderBytes;
        const sum = sumWords(frame, tcp, tcpBytes, pseudoHeaderSum(frame, addressAt, addressBytes, IPPROTO_TCP, tcpBytes));
        if (foldSum(sum) !== 0xffff) return -1;
      }
      mss = room;
      segmentPayload = room;
    }

    this.headers = frame.subarray(VNET_HEADER_BYTES, tcp + tcpHeaderBytes);
    this.isV6 = etherType === ETHERTYPE_IPV6;
    this.ipHeaderBytes = ipHeaderBytes;
    this.tcpHeaderBytes = tcpHeaderBytes;
    this.payloadStart = tcp + tcpHeaderBytes;
    this.perPiece = segmentPayload;
    this.mss = mss;
    this.gsoBase = this.isV6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4;
    this.ipId = this.isV6 ? 0 : (frame[IP_AT + 4]! << 8) | frame[IP_AT + 5]!;
    this.sequence = ((frame[tcp + 4]! << 24) | (frame[tcp + 5]! << 16) | (frame[tcp + 6]! << 8) | frame[tcp + 7]!) >>> 0;
    this.tcpFlags = tcpFlags;
    this.addressSum = sumWords(frame, addressAt, 2 * addressBytes, 0);
    this.count = Math.ceil(payloadBytes / segmentPayload);
    return this.count;
  }

  protected override writePiece(i: number, out: Uint8Array, offset: number, start: number, bytes: number): void {
    const frame = this.frame;
    const payload = bytes - this.payloadStart;
    const ipHeaderBytes = this.ipHeaderBytes;
    const tcpBytes = this.tcpHeaderBytes + payload;
    const ipBytes = ipHeaderBytes + tcpBytes;
    const isGso = payload > this.mss;
    let flags = this.tcpFlags;
    if (i !== this.count - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i !== 0) flags &= ~TCP_CWR;
    const gsoType = isGso ? this.gsoBase | ((flags & TCP_CWR) !== 0 ? VNET_GSO_ECN : 0) : VNET_GSO_NONE;
    writeVnetHeader(out, offset, VNET_F_NEEDS_CSUM, gsoType, ETHERNET_HEADER_BYTES + ipHeaderBytes + this.tcpHeaderBytes, isGso ? this.mss : 0, ETHERNET_HEADER_BYTES + ipHeaderBytes, TCP_CHECKSUM_OFFSET);
    out.set(this.headers, offset + VNET_HEADER_BYTES);
    out.set(frame.subarray(start, start + payload), offset + this.payloadStart);

    const ip = offset + IP_AT;
    if (this.isV6) {
      out[ip + 4] = tcpBytes >>> 8;
      out[ip + 5] = tcpBytes & 0xff;
    } else {
      const id = (this.ipId + i) & 0xffff;
      out[ip + 4] = id >>> 8;
      out[ip + 5] = id & 0xff;
      finishIpv4Header(out, ip, ipHeaderBytes, ipBytes);
    }
    const tcp = ip + ipHeaderBytes;
    const sequence = (this.sequence + i * this.perPiece) >>> 0;
    out[tcp + 4] = sequence >>> 24;
    out[tcp + 5] = (sequence >>> 16) & 0xff;
    out[tcp + 6] = (sequence >>> 8) & 0xff;
    out[tcp + 7] = sequence & 0xff;
    out[tcp + 13] = flags;
    const partial = foldSum(this.addressSum + IPPROTO_TCP + tcpBytes);
    out[tcp + TCP_CHECKSUM_OFFSET] = partial >>> 8;
    out[tcp + TCP_CHECKSUM_OFFSET + 1] = partial & 0xff;
  }
}
