/**
 * IPv4 fragmentation of a TAP frame (RFC 791), for the relay's send path: an IPv4 packet with DF
 * clear that is bigger than the path (any L4 protocol) is cut into fragments, each sent as its own
 * UDP datagram, so the underlay never fragments ours. The receiving kernel reassembles them. Same
 * load / segmentBytes / write shape as TcpSegmenter, so the caller's send path is the same.
 *
 * Fragments are what Linux's ip_fragment would send: the IP header copied with total length, MF and
 * fragment offset set and the header checksum recomputed; the id unchanged; fragment data a multiple
 * of 8 bytes except in the last; options kept in the first fragment, and in later ones only those
 * with the copied flag, the others overwritten with NOPs so every header has the same length (as
 * ip_options_fragment does). A packet that is already a fragment is cut further (offsets continue
 * from its own; the last piece keeps its MF bit). The virtio-net header of every fragment is zero
 * (no offload): a fragment cannot carry a partial checksum, so when the frame asks for NEEDS_CSUM the
 * L4 checksum is completed first (as skb_checksum_help does: a result of 0 is sent as 0xffff) and
 * written into whichever fragment holds the checksum field.
 *
 * Refused (load returns -1): a GSO frame (TcpSegmenter's job), not IPv4 over untagged Ethernet,
 * truncated, lengths that disagree, a header checksum that does not verify, malformed options,
 * DF set (the caller answers with ICMP "fragmentation needed" instead), a checksum request outside
 * the L4 part or on a packet that is already a fragment, offsets past 65,535, and a path with room
 * for less than 8 data bytes after the header.
 *
 * Buffer ownership as in TcpSegmenter: load keeps a reference to `frame` and write reads it again,
 * so every write must happen before the caller reuses the frame's memory. Per fragment the only
 * allocation is the view the payload copy needs. Never throws.
 */
import { finishIpv4Header, foldSum, internetChecksum, sumWords } from './checksum.js';
import { FrameSplitter } from './frame-splitter.js';
import { ETHERTYPE_IPV4, IPV4_MIN_HEADER_BYTES, MAX_IP_PACKET_BYTES } from './tcp-segment.js';
import { ETHERNET_HEADER_BYTES, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_HEADER_BYTES, vnetHeaderOk } from './wire.js';

const IP_AT = VNET_HEADER_BYTES + ETHERNET_HEADER_BYTES;
const IPV4_MAX_HEADER_BYTES = 60;
const FLAG_RESERVED = 0x80;
const FLAG_DF = 0x40;
const FLAG_MF = 0x20;
const OFFSET_MASK = 0x1fff;
const OPTION_END = 0;
const OPTION_NOP = 1;
const OPTION_COPIED = 0x80;

export class Ipv4Fragmenter extends FrameSplitter {
  /** Ethernet + IP header of the first fragment: a view of the frame's. */
  private firstHeaders: Uint8Array = new Uint8Array(0);
  /** Ethernet + IP header of later fragments: the frame's, non-copied options replaced by NOPs. */
  private readonly laterHeaders = new Uint8Array(ETHERNET_HEADER_BYTES + IPV4_MAX_HEADER_BYTES);
  private laterHeadersView: Uint8Array = new Uint8Array(0);
  private ipHeaderBytes = 0;
  /** The packet's own fragment offset (8-byte units) and flag byte's reserved and MF bits. */
  private baseOffset = 0;
  private lastFlags = 0;
  /** Index in `frame` of a completed L4 checksum to write into the fragment that holds it; -1: none. */
  private checksumAt = -1;
  private checksum = 0;

  /**
   * Parses `frame` (valid only during the caller's turn; write reads it again) and plans
   * fragments of at most `maxIpBytes` (above 65,535 counts as 65,535). Returns the number of
   * fragments, 1 when the packet already fits (write(0) copies the frame unchanged), or -1 when it
   * cannot be fragmented (see the file header).
   */
  override load(frame: Uint8Array, maxIpBytes: number): number {
    this.count = 0;
    if (!Number.isInteger(maxIpBytes) || maxIpBytes <= 0) return -1;
    const length = frame.length;
    if (length < IP_AT + IPV4_MIN_HEADER_BYTES || !vnetHeaderOk(frame, 0, length) || frame[1] !== VNET_GSO_NONE) return -1;
    if (((frame[IP_AT - 2]! << 8) | frame[IP_AT - 1]!) !== ETHERTYPE_IPV4 || frame[IP_AT]! >> 4 !== 4) return -1;
    const ipHeaderBytes = (frame[IP_AT]! & 0x0f) * 4;
    if (ipHeaderBytes < IPV4_MIN_HEADER_BYTES || IP_AT + ipHeaderBytes > length) return -1;
    const ipBytes = (frame[IP_AT + 2]! << 8) | frame[IP_AT + 3]!;
    if (ipBytes < ipHeaderBytes || IP_AT + ipBytes > length) return -1;
    if (internetChecksum(frame, IP_AT, ipHeaderBytes) !== 0) return -1;
    const flagByte = frame[IP_AT + 6]!;
    if ((flagByte & FLAG_DF) !== 0) return -1;
    const baseOffset = ((flagByte << 8) | frame[IP_AT + 7]!) & OFFSET_MASK;
    const ipEnd = IP_AT + ipBytes;
    const payloadStart = IP_AT + ipHeaderBytes;
    let checksumAt = -1;
    if ((frame[0]! & VNET_F_NEEDS_CSUM) !== 0) {
      const csumStart = VNET_HEADER_BYTES + (frame[6]! | (frame[7]! << 8));
      checksumAt = csumStart + (frame[8]! | (frame[9]! << 8));
      if (csumStart < payloadStart || checksumAt + 2 > ipEnd) return -1;
      if (baseOffset !== 0 || (flagByte & FLAG_MF) !== 0) return -1;
    }
    this.frame = frame;
    this.ipEnd = ipEnd;
    const limit = Math.min(maxIpBytes, MAX_IP_PACKET_BYTES);
    if (ipBytes <= limit) {
      this.count = 1;
      return 1;
    }
    const dataPerFragment = (limit - ipHeaderBytes) & ~7;
    const payloadBytes = ipBytes - ipHeaderBytes;
    if (dataPerFragment < 8 || baseOffset * 8 + payloadBytes > MAX_IP_PACKET_BYTES) return -1;
    if (!this.buildLaterHeaders(frame, ipHeaderBytes)) return -1;
    if (checksumAt >= 0) {
      const csumStart = VNET_HEADER_BYTES + (frame[6]! | (frame[7]! << 8));
      const sum = ~foldSum(sumWords(frame, csumStart, ipEnd - csumStart, 0)) & 0xffff;
      this.checksum = sum === 0 ? 0xffff : sum;
    }

    this.firstHeaders = frame.subarray(VNET_HEADER_BYTES, payloadStart);
    this.ipHeaderBytes = ipHeaderBytes;
    this.payloadStart = payloadStart;
    this.perPiece = dataPerFragment;
    this.baseOffset = baseOffset;
    this.lastFlags = flagByte & (FLAG_RESERVED | FLAG_MF);
    this.checksumAt = checksumAt;
    this.count = Math.ceil(payloadBytes / dataPerFragment);
    return this.count;
  }

  protected override writePiece(i: number, out: Uint8Array, offset: number, start: number, bytes: number): void {
    const frame = this.frame;
    const data = bytes - this.payloadStart;
    out.fill(0, offset, offset + VNET_HEADER_BYTES);
    out.set(i === 0 ? this.firstHeaders : this.laterHeadersView, offset + VNET_HEADER_BYTES);
    out.set(frame.subarray(start, start + data), offset + this.payloadStart);
    const checksumAt = this.checksumAt;
    if (checksumAt >= 0) {
      // Byte by byte: the field may straddle two fragments when csum_start is odd.
      if (checksumAt >= start && checksumAt < start + data) out[offset + checksumAt - start + this.payloadStart] = this.checksum >>> 8;
      if (checksumAt + 1 >= start && checksumAt + 1 < start + data) out[offset + checksumAt + 1 - start + this.payloadStart] = this.checksum & 0xff;
    }
    const ip = offset + IP_AT;
    const fragmentOffset = this.baseOffset + (i * this.perPiece) / 8;
    const flags = i === this.count - 1 ? this.lastFlags : (this.lastFlags & FLAG_RESERVED) | FLAG_MF;
    out[ip + 6] = flags | (fragmentOffset >>> 8);
    out[ip + 7] = fragmentOffset & 0xff;
    finishIpv4Header(out, ip, this.ipHeaderBytes, bytes - IP_AT);
  }

  /** Ethernet + IP header for fragments after the first; false when the options are malformed. */
  private buildLaterHeaders(frame: Uint8Array, ipHeaderBytes: number): boolean {
    const headers = this.laterHeaders;
    const headerBytes = ETHERNET_HEADER_BYTES + ipHeaderBytes;
    headers.set(frame.subarray(VNET_HEADER_BYTES, VNET_HEADER_BYTES + headerBytes), 0);
    this.laterHeadersView = headers.subarray(0, headerBytes);
    let at = ETHERNET_HEADER_BYTES + IPV4_MIN_HEADER_BYTES;
    while (at < headerBytes) {
      const type = headers[at]!;
      if (type === OPTION_END) break;
      if (type === OPTION_NOP) {
        at++;
        continue;
      }
      if (at + 1 >= headerBytes) return false;
      const optionBytes = headers[at + 1]!;
      if (optionBytes < 2 || at + optionBytes > headerBytes) return false;
      if ((type & OPTION_COPIED) === 0) headers.fill(OPTION_NOP, at, at + optionBytes);
      at += optionBytes;
    }
    return true;
  }
}
