/**
 * The relay's receive side: drains an endpoint (recvmmsg; a GRO message holds several datagrams
 * of one sender back to back), checks every datagram in the order of docs/DATAPLANE.md, opens it
 * in place, and delivers: TAP frames to the coalescer (which writes super-frames to the device
 * once the drain is done), VXLAN datagrams to the kernel (VXLAN-port path), other peers' packets
 * to the next hop, probes to the prober. Every bad datagram is dropped and counted, never thrown.
 */
import type { Coalescer } from './coalesce.js';
import type { DatagramEndpoint } from './endpoint.js';
import type { NeighbourState } from './neighbour.js';
import type { Prober } from './probes.js';
import { openInPlace } from './seal.js';
import type { RelayState } from './state.js';
import { ReplayVerdict } from './replay-window.js';
import {
  BATCH_LENGTH_BYTES,
  checkHeader,
  countBatchFrames,
  FLAG_SEALED,
  isDataType,
  isTapType,
  MAX_BATCH_BYTES,
  MAX_BODY_BYTES,
  MAX_DATAGRAM_BYTES,
  MIN_TAP_FRAME_BYTES,
  OFFSET,
  PacketType,
  peerKeyFromBytes,
  readCounter,
  RELAY_HEADER_BYTES,
  RELAY_TAG_BYTES,
  vnetHeaderOk,
} from './wire.js';

/** recvmmsg calls per wake-up before yielding to the event loop (the watch calls again if more waits). */
const DRAINS_PER_WAKE = 8;

/** Where VXLAN datagrams for our own kernel go (the VXLAN-port path); it must copy what it keeps. */
export type KernelInjector = (datagram: Buffer) => void;

export class Receiver {
  /** Largest `data` body (one VXLAN datagram) accepted. */
  private readonly maxPayloadBytes: number;
  private readonly maxDatagramBytes: number;
  injectToKernel: KernelInjector | null = null;
  /** Where received TAP frames go (coalesced into super-frames), null when no device is attached. */
  coalescer: Coalescer | null = null;

  constructor(
    private readonly state: RelayState,
    private readonly prober: Prober,
    maxPayloadBytes: number,
  ) {
    this.maxPayloadBytes = maxPayloadBytes;
    this.maxDatagramBytes = RELAY_HEADER_BYTES + RELAY_TAG_BYTES + Math.max(maxPayloadBytes, MAX_BATCH_BYTES);
  }

  /** The endpoint is readable: drain it, then hand the coalesced frames to the device. Returns the messages read. */
  drain(endpoint: DatagramEndpoint): number {
    let messages = 0;
    for (let round = 0; round < DRAINS_PER_WAKE; round++) {
      const count = endpoint.receive();
      if (count === 0) break;
      messages += count;
      for (let i = 0; i < count; i++) {
        const message = endpoint.data(i);
        const segment = endpoint.segmentSize(i);
        const ip = endpoint.sourceIp(i);
        const port = endpoint.sourcePort(i);
        if (segment === 0 || segment >= message.length) {
          this.onDatagram(message, ip, port, endpoint);
          continue;
        }
        for (let at = 0; at < message.length; at += segment) {
          this.onDatagram(message.subarray(at, Math.min(at + segment, message.length)), ip, port, endpoint);
        }
      }
    }
    this.coalescer?.flush();
    return messages;
  }

  /** One datagram from ip:port; `msg` is a view of the endpoint's receive buffer (opened in place). */
  onDatagram(msg: Buffer, ip: number, port: number, endpoint: DatagramEndpoint): void {
    const s = this.state;
    const c = s.counters;
    const length = msg.length;
    c.fromNeighbours++;
    c.bytesFromNeighbours += length;
    if (length > (isTapType(msg[OFFSET.type]!) ? MAX_DATAGRAM_BYTES : this.maxDatagramBytes)) return s.drop('oversized');
    const bad = checkHeader(msg, length);
    if (bad !== null) return s.drop(bad);
    const n = s.neighboursByKey.get(peerKeyFromBytes(msg, OFFSET.hop));
    if (n === undefined) return s.drop('unknown-peer');
    const type = msg[OFFSET.type]!;
    const sealed = (msg[OFFSET.flags]! & FLAG_SEALED) !== 0;
    const fromKnownAddress = port === n.address.port && ip === n.ipNumber;
    const isData = isDataType(type);
    if (isData || n.dataKeys === null) {
      // Only authenticated probes may come from a new address (a NAT mapping we learn).
      if (!fromKnownAddress) return s.drop(s.neighbourAt(ip, port) !== undefined ? 'forged-source' : 'non-peer-address');
    }
    if (isData ? sealed !== s.encrypt : sealed !== (n.dataKeys !== null)) return s.drop('policy-mismatch');
    if (peerKeyFromBytes(msg, OFFSET.source) === s.selfKey) return s.drop('forged-source');
    const counter = readCounter(msg);
    const verdict = n.window.check(counter);
    if (verdict !== ReplayVerdict.fresh) return s.drop(verdict === ReplayVerdict.replayed ? 'replayed' : 'too-old');
    if (sealed && !openInPlace(n.dataKeys!.receive, msg, 0, length)) return s.drop('auth-failed');
    const body = msg.subarray(RELAY_HEADER_BYTES, sealed ? length - RELAY_TAG_BYTES : length);
    let frames = 1;
    if (type === PacketType.dataBatch) {
      frames = countBatchFrames(body, 0, body.length, this.maxPayloadBytes);
      if (frames < 0) return s.drop('malformed');
    } else if (type === PacketType.frameBatch) {
      frames = countBatchFrames(body, 0, body.length, MAX_BODY_BYTES, MIN_TAP_FRAME_BYTES);
      if (frames < 0) return s.drop('malformed');
    } else if (type === PacketType.data && body.length > this.maxPayloadBytes) {
      return s.drop('oversized');
    }
    n.window.accept(counter);
    n.bytesReceived += length;
    if (isData) return this.deliverOrForward(msg, body, type, frames);
    if (peerKeyFromBytes(msg, OFFSET.destination) !== s.selfKey) return s.drop('no-route');
    if (type === PacketType.probe) return this.prober.answer(n, body, ip, port, endpoint, sealed);
    this.prober.replied(n, body.readUInt32BE(0));
  }

  /** `frames` is 1 for a single-frame packet, the checked record count for a batch. */
  private deliverOrForward(msg: Buffer, body: Buffer, type: number, frames: number): void {
    const s = this.state;
    const destinationKey = peerKeyFromBytes(msg, OFFSET.destination);
    if (destinationKey === s.selfKey) {
      if (isTapType(type)) return this.deliverToDevice(body, type);
      return this.deliverToKernel(body, type, frames);
    }
    const ttl = msg[OFFSET.ttl]! - 1;
    if (ttl <= 0) return s.drop('ttl-expired');
    const next = s.route(destinationKey, msg, OFFSET.destination);
    if (next === null) return s.drop('no-route');
    this.forward(next, msg, body, type, ttl, frames);
  }

  /** Re-seals a packet for another peer under the next hop's key; it must fit that hop's path. */
  private forward(next: NeighbourState, msg: Buffer, body: Buffer, type: number, ttl: number, frames: number): void {
    const s = this.state;
    if (body.length > next.maxBodyBytes(s.encrypt)) return s.drop('oversized', frames);
    const t = s.transmitter;
    const at = t.reserve(body.length);
    t.arena.set(body, at);
    t.commit(next, type, ttl, msg.subarray(OFFSET.source, OFFSET.source + 6), msg.subarray(OFFSET.destination, OFFSET.destination + 6), body.length);
    s.counters.forwarded += frames;
  }

  /** Frames for our containers into the coalescer (then the TAP); each virtio-net header is checked first. */
  private deliverToDevice(body: Buffer, type: number): void {
    if (type === PacketType.frame) return this.toDevice(body);
    // The records were checked by countBatchFrames.
    for (let at = 0; at < body.length; ) {
      const start = at + BATCH_LENGTH_BYTES;
      const end = start + ((body[at]! << 8) | body[at + 1]!);
      this.toDevice(body.subarray(start, end));
      at = end;
    }
  }

  private toDevice(frame: Buffer): void {
    if (!vnetHeaderOk(frame, 0, frame.length)) return this.state.drop('bad-offload');
    const coalescer = this.coalescer;
    if (coalescer === null) return this.state.drop('device-refused');
    coalescer.push(frame);
  }

  private deliverToKernel(body: Buffer, type: number, frames: number): void {
    const inject = this.injectToKernel;
    if (inject === null) return this.state.drop('device-refused', frames);
    if (type === PacketType.data) {
      inject(body);
    } else {
      for (let at = 0; at < body.length; ) {
        const start = at + BATCH_LENGTH_BYTES;
        const end = start + ((body[at]! << 8) | body[at + 1]!);
        inject(body.subarray(start, end));
        at = end;
      }
    }
    this.state.counters.toKernel += frames;
  }
}
