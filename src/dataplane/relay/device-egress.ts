/**
 * Frames from the relay's TAP device to the peers that own their destination MACs (or, for group
 * and unknown destinations, once to every relayed peer), cut to each neighbour's path MTU:
 *
 * - a frame that fits goes as one `frame` datagram; a small one joins the turn's record datagram
 *   to that neighbour (`frame batch`), so a burst of ACKs is one seal and one datagram;
 * - a TCP frame that does not fit (a TSO super-frame, or a full-size segment on a narrow path) is
 *   split into segments that fit (tcp-segment.ts), each sealed on its own, laid out back to back
 *   so the send side hands the whole train to the kernel as one UDP GSO message;
 * - any other IPv4 packet without DF is fragmented (the relay is a router on the container's
 *   path); with DF its sender gets ICMP "fragmentation needed" with the path's inner MTU, written
 *   back into the device; anything else too big is dropped as `oversized`.
 *
 * The `frame` handed in is the device's read buffer: valid during the call only; everything kept
 * is copied into the send arena.
 */
import type { PeerName } from '../../core/ids.js';
import { parsePeerName, peerNameToBytes } from '../../core/ids.js';
import { FRAG_NEEDED_MAX_FRAME_BYTES, fragNeededFor, MIN_FRAG_NEEDED_MTU } from './icmp.js';
import { Ipv4Fragmenter } from './ipv4-fragment.js';
import type { NeighbourState } from './neighbour.js';
import type { RelayState } from './state.js';
import { TcpSegmenter } from './tcp-segment.js';
import { DEFAULT_TTL, ETHERNET_HEADER_BYTES, macKeyOf, MIN_TAP_FRAME_BYTES, PacketType, peerKeyFromBytes, peerKeyOf, VNET_GSO_ECN, VNET_GSO_NONE, VNET_HEADER_BYTES, vnetHeaderOk } from './wire.js';

/**
 * The local end of the TAP path: where frames for our containers are written (one frame per
 * call: virtio-net header + Ethernet frame). False when the device did not take it.
 */
export interface FrameDevice {
  write(frame: Uint8Array): boolean;
}

/** Frames up to this size share a record datagram; bigger ones go alone (and form GSO trains). */
const SMALL_FRAME_BYTES = 256;

/** Which relayed peer owns which MAC, and the peers a broadcast or unknown frame goes to. */
export interface RelayForwarding {
  macs: ReadonlyArray<{ mac: string; peer: PeerName }>;
  floodPeers: readonly PeerName[];
}

interface PeerEgress {
  peer: PeerName;
  key: number;
  nameBytes: Buffer;
}

export class DeviceEgress {
  private macTable = new Map<number, PeerEgress>();
  private floodPorts: PeerEgress[] = [];
  private readonly segmenter = new TcpSegmenter();
  private readonly fragmenter = new Ipv4Fragmenter();
  private readonly answer = Buffer.alloc(VNET_HEADER_BYTES + FRAG_NEEDED_MAX_FRAME_BYTES);
  device: FrameDevice | null = null;

  /** `maxFrameBytes`: the segment MTU + 14; no container frame should be bigger, whatever the path. */
  constructor(
    private readonly state: RelayState,
    private readonly maxFrameBytes: number,
  ) {}

  /** Replaces the forwarding table (idempotent). */
  setForwarding(table: RelayForwarding): void {
    const ports = new Map<PeerName, PeerEgress>();
    const portOf = (peer: PeerName): PeerEgress | null => {
      const name = parsePeerName(peer);
      if (name === this.state.self) return null;
      let port = ports.get(name);
      if (!port) ports.set(name, (port = { peer: name, key: peerKeyOf(name), nameBytes: Buffer.from(peerNameToBytes(name)) }));
      return port;
    };
    for (const peer of table.floodPeers) portOf(peer);
    const macs = new Map<number, PeerEgress>();
    for (const { mac, peer } of table.macs) {
      const port = portOf(peer);
      if (port) macs.set(macKeyOf(mac), port);
    }
    this.macTable = macs;
    this.floodPorts = [...ports.values()];
  }

  /** A frame read from the device: virtio-net header + Ethernet frame, up to a TSO super-frame. */
  readonly onFrame = (frame: Buffer): void => {
    const s = this.state;
    const c = s.counters;
    c.fromDevice++;
    c.bytesFromDevice += frame.length;
    if (frame.length < MIN_TAP_FRAME_BYTES) return s.drop('malformed');
    if ((frame[VNET_HEADER_BYTES]! & 1) === 0) {
      const port = this.macTable.get(peerKeyFromBytes(frame, VNET_HEADER_BYTES));
      if (port !== undefined) return this.sendTo(port, frame);
    }
    const ports = this.floodPorts;
    if (ports.length === 0) return s.drop('no-route');
    for (let i = 0; i < ports.length; i++) this.sendTo(ports[i]!, frame);
  };

  private sendTo(port: PeerEgress, frame: Buffer): void {
    const s = this.state;
    const n = s.route(port.key, port.nameBytes, 0);
    if (n === null) return s.drop('no-route');
    const pathBody = n.maxBodyBytes(s.encrypt);
    const frameLimit = VNET_HEADER_BYTES + this.maxFrameBytes;
    const t = s.transmitter;
    const gso = frame[1]! & ~VNET_GSO_ECN;
    if (gso === VNET_GSO_NONE && frame.length <= pathBody && frame.length <= frameLimit) {
      if (frame.length <= SMALL_FRAME_BYTES) return t.appendRecord(n, PacketType.frameBatch, s.selfBytes, port.nameBytes, frame, pathBody);
      const at = t.reserve(frame.length);
      t.arena.set(frame, at);
      return t.commit(n, PacketType.frame, DEFAULT_TTL, s.selfBytes, port.nameBytes, frame.length);
    }
    // A super-frame the kernel would not have handed out is not ours to cut.
    if (gso !== VNET_GSO_NONE && !vnetHeaderOk(frame, 0, frame.length)) return s.drop('bad-offload');
    // Datagrams as big as the path allows (several MSS each on a jumbo path), unless a single
    // segment would exceed the segment MTU: then segments of the segment MTU.
    const pathIp = pathBody - VNET_HEADER_BYTES - ETHERNET_HEADER_BYTES;
    const limitIp = this.maxFrameBytes - ETHERNET_HEADER_BYTES;
    const segmentIp = gso === VNET_GSO_NONE ? Infinity : (frame[2]! | (frame[3]! << 8)) - ETHERNET_HEADER_BYTES + (frame[4]! | (frame[5]! << 8));
    const maxIp = segmentIp <= limitIp ? pathIp : Math.min(pathIp, limitIp);
    if (this.sendSplit(this.segmenter, n, port, frame, maxIp)) return;
    if (gso === VNET_GSO_NONE && this.sendSplit(this.fragmenter, n, port, frame, maxIp)) return;
    this.tooBig(frame, maxIp);
  }

  /** Sends the pieces `splitter` cuts `frame` into; false when it cannot split this frame. */
  private sendSplit(splitter: TcpSegmenter | Ipv4Fragmenter, n: NeighbourState, port: PeerEgress, frame: Buffer, maxIp: number): boolean {
    const count = splitter.load(frame, maxIp);
    if (count < 0) return false;
    const s = this.state;
    const t = s.transmitter;
    for (let i = 0; i < count; i++) {
      const at = t.reserve(splitter.segmentBytes(i));
      const bytes = splitter.write(i, t.arena, at);
      t.commit(n, PacketType.frame, DEFAULT_TTL, s.selfBytes, port.nameBytes, bytes);
    }
    s.counters.segmentsSent += count;
    return true;
  }

  /**
   * Dropped as too big; an IPv4 DF packet's sender gets ICMP "fragmentation needed" with the
   * path's inner MTU, behind a zeroed virtio-net header, written back into the device.
   */
  private tooBig(frame: Buffer, maxIp: number): void {
    const s = this.state;
    s.drop('oversized');
    const device = this.device;
    if (device === null || maxIp < MIN_FRAG_NEEDED_MTU) return;
    const out = this.answer;
    out.fill(0, 0, VNET_HEADER_BYTES);
    const answer = fragNeededFor(frame.subarray(VNET_HEADER_BYTES), maxIp, out.subarray(VNET_HEADER_BYTES));
    if (answer !== null && device.write(out.subarray(0, VNET_HEADER_BYTES + answer.length))) s.counters.fragNeededSent++;
  }
}
