/**
 * TCP receive coalescing for the relay's receive path: the segments a peer's TcpSegmenter cut from
 * one super-frame arrive as separate datagrams; adjacent segments of a flow are joined back into one
 * GSO super-frame before it is written to the TAP, so the kernel sees one big frame instead of 45
 * (the kernel's tcp_gro_receive and wireguard-go's tcpGRO do the same job).
 *
 * A pending run (one per flow, at most maxFlows) is a copy of its first segment with later payloads
 * appended. A segment joins the run of its flow when all of these hold (anything else flushes that
 * flow's run first, so one flow's bytes stay in order, and then starts a new run or goes out alone):
 *
 *   - same MAC pair, IP version, addresses and ports (the flow), found by comparing bytes, no keys;
 *   - IPv4 without options (IHL 5) and not a fragment, same TOS, TTL and flag bits (DF); the IP id
 *     is not compared (the written super-frame keeps the first one, as GRO does);
 *   - IPv6 with TCP as next header (no extension headers), same traffic class, flow label, hop limit;
 *   - same TCP header length and identical option bytes, same ACK number and same window (the
 *     kernel does not compare windows; we do, so a window update is never hidden inside a merge);
 *   - sequence number = the run's next expected one;
 *   - TCP flags exactly ACK, or ACK|PSH: PSH joins as the last segment and the run is written at
 *     once. SYN, FIN, RST, URG, CWR and ECE never join (a CWR never joins, so no written super-frame
 *     needs the ECN GSO bit);
 *   - every segment but the last of a run carries exactly the run's MSS (the first segment's
 *     payload, or its gso_size when it is itself a GSO frame): a shorter one joins as the last; a
 *     GSO segment joins when its gso_size is the run's MSS, and ends the run unless its payload is a
 *     whole multiple of it; a longer one never joins;
 *   - the result stays within maxFrameBytes and 65,535 bytes of IP packet;
 *   - the checksum is trusted: NEEDS_CSUM at the TCP checksum (what the segmenter sends), or
 *     DATA_VALID, or a full TCP checksum that verifies (wireguard-go verifies too: a bad checksum
 *     must not become a partial one the receiving kernel trusts).
 *
 * A run that can take no more (short last segment, PSH) is written at once; the others wait for a
 * frame of their flow that cannot join, or for flush(), which the caller runs at the end of every
 * receive batch, so nothing waits longer than one batch. When a new flow needs a slot and all
 * maxFlows are busy, the run that started first is written. A run of one segment is written exactly as it came; a longer one as:
 * virtio-net NEEDS_CSUM, gso_type TCPV4/TCPV6, gso_size = MSS, hdr_len = Ethernet + IP + TCP
 * headers, csum_start at the TCP header, csum_offset 16; IPv4 total length and header checksum,
 * IPv6 payload length; the TCP checksum field = the pseudo-header sum for the new length; PSH when
 * the last segment had it.
 *
 * Buffers: `frame` in push is read only during the call; what is kept is copied into the run's own
 * buffer of maxFrameBytes, allocated once when its slot is first used and reused. The view handed
 * to the writer is valid only during that call. Per pushed frame the only allocation is the view a
 * payload copy needs; per written frame, the view of it. Never throws on frame bytes.
 */
import { LoomError } from '../../core/errors.js';
import { finishIpv4Header, foldSum, pseudoHeaderSum, sumWords } from './checksum.js';
import {
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_TCP,
  IPV4_MIN_HEADER_BYTES,
  IPV6_HEADER_BYTES,
  MAX_IP_PACKET_BYTES,
  TCP_ACK,
  TCP_CHECKSUM_OFFSET,
  TCP_MIN_HEADER_BYTES,
  TCP_PSH,
  writeVnetHeader,
} from './tcp-segment.js';
import { ETHERNET_HEADER_BYTES, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_HEADER_BYTES } from './wire.js';

/** Writes one TAP frame (virtio-net header + Ethernet); the bytes are the caller's only during the call. */
export type FrameWriter = (frame: Uint8Array) => boolean;

export interface CoalescerInit {
  /** Flows with a pending run at once (default 8). */
  maxFlows?: number;
  /** Largest frame written, virtio-net header included (default 65,000). */
  maxFrameBytes?: number;
}

export interface CoalescerStats {
  framesIn: number;
  framesOut: number;
  /** Segments that joined a run (a run of n segments counts n - 1). */
  merged: number;
  writeFailures: number;
}

export const DEFAULT_MAX_FLOWS = 8;
export const DEFAULT_MAX_FRAME_BYTES = 65_000;
const MAX_FLOWS_LIMIT = 1024;
const IP_AT = VNET_HEADER_BYTES + ETHERNET_HEADER_BYTES;
/** The smallest frame that can join: IPv4 + TCP headers and one payload byte. */
const MIN_JOINABLE_FRAME_BYTES = IP_AT + IPV4_MIN_HEADER_BYTES + TCP_MIN_HEADER_BYTES + 1;
const MAX_FRAME_BYTES_LIMIT = IP_AT + MAX_IP_PACKET_BYTES;

/** What push learnt of a frame: whether it can be part of a run, and its layout. Reused, one per Coalescer. */
interface Parsed {
  /** 0: not TCP over IPv4/IPv6 (no flow); 1: TCP, but cannot join; 2: may join a run. */
  kind: 0 | 1 | 2;
  isV6: boolean;
  ipHeaderBytes: number;
  tcpHeaderBytes: number;
  payloadBytes: number;
  sequence: number;
  flags: number;
  /** gso_size of a GSO segment, 0 for a plain one. */
  gsoSize: number;
}

/** One flow's pending run. Allocated at construction; the buffer when first used. */
interface Run {
  active: boolean;
  buffer: Uint8Array;
  /** Bytes of the run in `buffer`. */
  length: number;
  isV6: boolean;
  ipHeaderBytes: number;
  tcpHeaderBytes: number;
  mss: number;
  nextSequence: number;
  segments: number;
  /** When the run started, in runs started by this coalescer: the lowest is the oldest. */
  startedAt: number;
}

export class Coalescer {
  private readonly write: FrameWriter;
  private readonly maxFrameBytes: number;
  private readonly runs: Run[] = [];
  private readonly parsed: Parsed = { kind: 0, isV6: false, ipHeaderBytes: 0, tcpHeaderBytes: 0, payloadBytes: 0, sequence: 0, flags: 0, gsoSize: 0 };
  private runsStarted = 0;
  private framesIn = 0;
  private framesOut = 0;
  private merged = 0;
  private writeFailures = 0;

  /** Throws ERR_INVALID_ARGUMENT for maxFlows outside 1..1024 or maxFrameBytes outside 65..65,559. */
  constructor(write: FrameWriter, init: CoalescerInit = {}) {
    const maxFlows = init.maxFlows ?? DEFAULT_MAX_FLOWS;
    const maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(maxFlows) || maxFlows < 1 || maxFlows > MAX_FLOWS_LIMIT) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `maxFlows must be an integer in 1..${MAX_FLOWS_LIMIT}`);
    }
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < MIN_JOINABLE_FRAME_BYTES || maxFrameBytes > MAX_FRAME_BYTES_LIMIT) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `maxFrameBytes must be an integer in ${MIN_JOINABLE_FRAME_BYTES}..${MAX_FRAME_BYTES_LIMIT}`);
    }
    this.write = write;
    this.maxFrameBytes = maxFrameBytes;
    for (let i = 0; i < maxFlows; i++) {
      this.runs.push({ active: false, buffer: new Uint8Array(0), length: 0, isV6: false, ipHeaderBytes: 0, tcpHeaderBytes: 0, mss: 0, nextSequence: 0, segments: 0, startedAt: 0 });
    }
  }

  /**
   * Offers one received, authenticated TAP frame whose virtio-net header passed vnetHeaderOk. It is
   * read only during the call. It joins its flow's run, starts one, or is written at once (after
   * that flow's run).
   */
  push(frame: Uint8Array): void {
    this.framesIn++;
    const parsed = this.parse(frame);
    if (parsed.kind === 0) {
      this.emit(frame);
      return;
    }
    const run = this.findRun(frame, parsed.isV6);
    if (run !== null) {
      if (parsed.kind === 2 && this.canJoin(run, frame, parsed)) {
        this.join(run, frame, parsed);
        return;
      }
      this.flushRun(run);
    }
    if (parsed.kind === 2) this.start(frame, parsed);
    else this.emit(frame);
  }

  /** Writes every pending run. The caller runs it at the end of each receive batch. */
  flush(): void {
    for (const run of this.runs) if (run.active) this.flushRun(run);
  }

  stats(): CoalescerStats {
    return { framesIn: this.framesIn, framesOut: this.framesOut, merged: this.merged, writeFailures: this.writeFailures };
  }

  /** Fills this.parsed; every read bounded by the frame's length. */
  private parse(frame: Uint8Array): Parsed {
    const parsed = this.parsed;
    parsed.kind = 0;
    const length = frame.length;
    if (length < IP_AT + IPV4_MIN_HEADER_BYTES) return parsed;
    const etherType = (frame[IP_AT - 2]! << 8) | frame[IP_AT - 1]!;
    let ipHeaderBytes: number;
    let ipBytes: number;
    let joinable = true;
    if (etherType === ETHERTYPE_IPV4) {
      if (frame[IP_AT]! >> 4 !== 4 || frame[IP_AT + 9] !== IPPROTO_TCP) return parsed;
      ipHeaderBytes = (frame[IP_AT]! & 0x0f) * 4;
      if (ipHeaderBytes < IPV4_MIN_HEADER_BYTES) return parsed;
      // A fragment has no TCP header of its own to key on (only the first has ports): no flow.
      if ((((frame[IP_AT + 6]! << 8) | frame[IP_AT + 7]!) & 0x3fff) !== 0) return parsed;
      if (ipHeaderBytes !== IPV4_MIN_HEADER_BYTES) joinable = false;
      ipBytes = (frame[IP_AT + 2]! << 8) | frame[IP_AT + 3]!;
      parsed.isV6 = false;
    } else if (etherType === ETHERTYPE_IPV6) {
      if (length < IP_AT + IPV6_HEADER_BYTES || frame[IP_AT]! >> 4 !== 6 || frame[IP_AT + 6] !== IPPROTO_TCP) return parsed;
      ipHeaderBytes = IPV6_HEADER_BYTES;
      ipBytes = IPV6_HEADER_BYTES + ((frame[IP_AT + 4]! << 8) | frame[IP_AT + 5]!);
      parsed.isV6 = true;
    } else {
      return parsed;
    }
    const tcp = IP_AT + ipHeaderBytes;
    if (tcp + TCP_MIN_HEADER_BYTES > length) return parsed;
    // From here the ports can be read: the frame belongs to a flow.
    parsed.kind = 1;
    parsed.ipHeaderBytes = ipHeaderBytes;
    const tcpHeaderBytes = (frame[tcp + 12]! >> 4) * 4;
    // Exact lengths only: no Ethernet padding, nothing truncated.
    if (!joinable || IP_AT + ipBytes !== length || tcpHeaderBytes < TCP_MIN_HEADER_BYTES || ipHeaderBytes + tcpHeaderBytes >= ipBytes) return parsed;
    const flags = frame[tcp + 13]!;
    if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) return parsed;
    const vnetFlags = frame[0]!;
    const gso = frame[1]!;
    let gsoSize = 0;
    if (gso !== VNET_GSO_NONE) {
      if (gso !== (parsed.isV6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4)) return parsed; // the ECN bit included
      gsoSize = frame[4]! | (frame[5]! << 8);
      if (gsoSize === 0) return parsed;
    }
    if ((vnetFlags & VNET_F_NEEDS_CSUM) !== 0) {
      if ((frame[6]! | (frame[7]! << 8)) !== ETHERNET_HEADER_BYTES + ipHeaderBytes || (frame[8]! | (frame[9]! << 8)) !== TCP_CHECKSUM_OFFSET) return parsed;
    } else if ((vnetFlags & VNET_F_DATA_VALID) === 0) {
      const tcpBytes = ipBytes - ipHeaderBytes;
      const pseudo = parsed.isV6 ? pseudoHeaderSum(frame, IP_AT + 8, 16, IPPROTO_TCP, tcpBytes) : pseudoHeaderSum(frame, IP_AT + 12, 4, IPPROTO_TCP, tcpBytes);
      if (foldSum(sumWords(frame, tcp, tcpBytes, pseudo)) !== 0xffff) return parsed;
    }
    parsed.kind = 2;
    parsed.tcpHeaderBytes = tcpHeaderBytes;
    parsed.payloadBytes = ipBytes - ipHeaderBytes - tcpHeaderBytes;
    parsed.sequence = ((frame[tcp + 4]! << 24) | (frame[tcp + 5]! << 16) | (frame[tcp + 6]! << 8) | frame[tcp + 7]!) >>> 0;
    parsed.flags = flags;
    parsed.gsoSize = gsoSize;
    return parsed;
  }

  /** The active run of the frame's flow (MACs, addresses, ports), or null. */
  private findRun(frame: Uint8Array, isV6: boolean): Run | null {
    const tcp = IP_AT + this.parsed.ipHeaderBytes;
    for (const run of this.runs) {
      if (!run.active || run.isV6 !== isV6) continue;
      const buffer = run.buffer;
      const runTcp = IP_AT + run.ipHeaderBytes;
      if (!rangeEqual(frame, tcp, buffer, runTcp, 4)) continue; // ports
      if (isV6 ? !rangeEqual(frame, IP_AT + 8, buffer, IP_AT + 8, 32) : !rangeEqual(frame, IP_AT + 12, buffer, IP_AT + 12, 8)) continue;
      if (!rangeEqual(frame, VNET_HEADER_BYTES, buffer, VNET_HEADER_BYTES, 12)) continue; // MACs
      return run;
    }
    return null;
  }

  private canJoin(run: Run, frame: Uint8Array, parsed: Parsed): boolean {
    const buffer = run.buffer;
    // Closed runs were written already, so `run` ends in whole MSS and has no PSH.
    if (parsed.sequence !== run.nextSequence || parsed.tcpHeaderBytes !== run.tcpHeaderBytes) return false;
    const payload = parsed.payloadBytes;
    if (parsed.gsoSize !== 0 ? parsed.gsoSize !== run.mss : payload > run.mss) return false;
    if (run.length + payload > this.maxFrameBytes || run.length - IP_AT + payload > MAX_IP_PACKET_BYTES) return false;
    if (parsed.isV6) {
      // Version, traffic class, flow label; hop limit.
      if (!rangeEqual(frame, IP_AT, buffer, IP_AT, 4) || frame[IP_AT + 7] !== buffer[IP_AT + 7]) return false;
    } else {
      // TOS; flag bits (DF, reserved); TTL.
      if (frame[IP_AT + 1] !== buffer[IP_AT + 1] || frame[IP_AT + 6] !== buffer[IP_AT + 6] || frame[IP_AT + 8] !== buffer[IP_AT + 8]) return false;
    }
    const tcp = IP_AT + parsed.ipHeaderBytes;
    // ACK number (8..12), window (14..16), options (20..header end).
    if (!rangeEqual(frame, tcp + 8, buffer, tcp + 8, 4) || !rangeEqual(frame, tcp + 14, buffer, tcp + 14, 2)) return false;
    return rangeEqual(frame, tcp + TCP_MIN_HEADER_BYTES, buffer, tcp + TCP_MIN_HEADER_BYTES, parsed.tcpHeaderBytes - TCP_MIN_HEADER_BYTES);
  }

  private join(run: Run, frame: Uint8Array, parsed: Parsed): void {
    const headersEnd = IP_AT + parsed.ipHeaderBytes + parsed.tcpHeaderBytes;
    const payload = parsed.payloadBytes;
    run.buffer.set(frame.subarray(headersEnd, headersEnd + payload), run.length);
    run.length += payload;
    run.nextSequence = (run.nextSequence + payload) >>> 0;
    run.segments++;
    this.merged++;
    if ((parsed.flags & TCP_PSH) !== 0) run.buffer[IP_AT + run.ipHeaderBytes + 13] = TCP_ACK | TCP_PSH;
    if ((parsed.flags & TCP_PSH) !== 0 || payload % run.mss !== 0) this.flushRun(run);
  }

  /** Starts a run with the frame, or writes it at once when nothing could join it. */
  private start(frame: Uint8Array, parsed: Parsed): void {
    const mss = parsed.gsoSize !== 0 ? parsed.gsoSize : parsed.payloadBytes;
    if ((parsed.flags & TCP_PSH) !== 0 || parsed.payloadBytes % mss !== 0 || frame.length >= this.maxFrameBytes || frame.length - IP_AT >= MAX_IP_PACKET_BYTES) {
      this.emit(frame);
      return;
    }
    let run: Run | null = null;
    let oldest: Run | null = null;
    for (const candidate of this.runs) {
      if (!candidate.active) {
        run = candidate;
        break;
      }
      if (oldest === null || candidate.startedAt < oldest.startedAt) oldest = candidate;
    }
    if (run === null) {
      run = oldest!;
      this.flushRun(run);
    }
    if (run.buffer.length < this.maxFrameBytes) run.buffer = new Uint8Array(this.maxFrameBytes);
    run.buffer.set(frame, 0);
    run.active = true;
    run.length = frame.length;
    run.isV6 = parsed.isV6;
    run.ipHeaderBytes = parsed.ipHeaderBytes;
    run.tcpHeaderBytes = parsed.tcpHeaderBytes;
    run.mss = mss;
    run.nextSequence = (parsed.sequence + parsed.payloadBytes) >>> 0;
    run.segments = 1;
    run.startedAt = this.runsStarted++;
  }

  /** Writes the run (as it came when it holds one segment) and frees its slot. */
  private flushRun(run: Run): void {
    run.active = false;
    const buffer = run.buffer;
    if (run.segments > 1) {
      const ipHeaderBytes = run.ipHeaderBytes;
      const ipBytes = run.length - IP_AT;
      const tcpBytes = ipBytes - ipHeaderBytes;
      const ip = IP_AT;
      const tcp = ip + ipHeaderBytes;
      writeVnetHeader(
        buffer,
        0,
        VNET_F_NEEDS_CSUM,
        run.isV6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4,
        ETHERNET_HEADER_BYTES + ipHeaderBytes + run.tcpHeaderBytes,
        run.mss,
        ETHERNET_HEADER_BYTES + ipHeaderBytes,
        TCP_CHECKSUM_OFFSET,
      );
      let addressSum: number;
      if (run.isV6) {
        buffer[ip + 4] = tcpBytes >>> 8;
        buffer[ip + 5] = tcpBytes & 0xff;
        addressSum = sumWords(buffer, ip + 8, 32, 0);
      } else {
        finishIpv4Header(buffer, ip, ipHeaderBytes, ipBytes);
        addressSum = sumWords(buffer, ip + 12, 8, 0);
      }
      const partial = foldSum(addressSum + IPPROTO_TCP + tcpBytes);
      buffer[tcp + TCP_CHECKSUM_OFFSET] = partial >>> 8;
      buffer[tcp + TCP_CHECKSUM_OFFSET + 1] = partial & 0xff;
    }
    this.emit(buffer.subarray(0, run.length));
  }

  private emit(frame: Uint8Array): void {
    if (this.write(frame)) this.framesOut++;
    else this.writeFailures++;
  }
}

function rangeEqual(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}
