/**
 * The send side of a UdpEndpoint: queued trains of equal-size datagrams (the last may be shorter)
 * go to the kernel in as few sendmmsg calls as possible, each train one UDP GSO message
 * (UDP_SEGMENT cmsg) of at most MAX_GSO_SEGMENTS segments and MAX_GSO_BYTES, or one message per
 * datagram without GSO. The refusal rules (EIO, EINVAL, EMSGSIZE) are in udp-endpoint.ts's header.
 * Hot path: every mmsghdr, iovec, cmsg and sockaddr is preallocated; a queued buffer's address is
 * learned once per ArrayBuffer (WeakMap); no objects per datagram or train.
 */
import koffi from 'koffi';
import type { MmsgCalls } from './libc.js';
import { bufferAddress, carve } from './libc.js';
import { CMSG_HEADER_BYTES, IOVEC_BYTES, MMSGHDR_BYTES, MSG_CONTROL, MSG_CONTROLLEN, MSG_DONTWAIT, SOCKADDR_IN_BYTES, cmsgSpace, pointHeaders, writePointer } from './udp-batch.js';
import { SOL_UDP } from './udp-gro-receiver.js';

/** Segments per GSO message: UDP_MAX_SEGMENTS on kernels before 6.x raised it to 128. */
export const MAX_GSO_SEGMENTS = 64;
/** Payload per GSO message: 65,535 - 20 (IPv4 header) - 8 (UDP header). */
export const MAX_GSO_BYTES = 65_507;
export const UDP_SEGMENT = 103;
export const EINTR = 4;
export const EIO = 5;
export const EINVAL = 22;
/** sendmmsg messages prepared per call (and per flush round). */
const SEND_MESSAGES = 1024;
/** Trains held between flushes; queue() flushes early beyond this. */
const MAX_TRAINS = 256;
const AF_INET = 2;
/** A UDP_SEGMENT cmsg: cmsg_len is CMSG_LEN(2), the kernel insists on exactly that. */
const SEGMENT_CONTROL_BYTES = cmsgSpace(2);
const SEGMENT_CMSG_LEN = CMSG_HEADER_BYTES + 2;

export type SendErrorListener = (errno: number, ip: number, port: number, segmentBytes: number) => void;

export interface SendCounters {
  gsoFallbacks: number;
  sent: number;
  sendErrors: number;
}

export class GsoSender {
  /** Whether trains go as GSO messages; off for good once the kernel refused it. */
  gso: boolean;
  onSendError: SendErrorListener | null = null;
  /** Every region the kernel reads by address: kept alive here. */
  private readonly memory: Buffer[];
  private readonly headers: Buffer;
  private readonly iovecs: Buffer;
  private readonly names: Buffer;
  private readonly control: Buffer;
  private readonly controlAt: number;
  /** Per prepared message: its train, its first byte in the train, its datagram count. */
  private readonly messageTrain = new Int32Array(SEND_MESSAGES);
  private readonly messageStart = new Int32Array(SEND_MESSAGES);
  private readonly messageDatagrams = new Int32Array(SEND_MESSAGES);
  // Queued trains (struct of arrays). `trainOwners` keeps each train's memory alive until flush.
  private readonly trainAt = new Float64Array(MAX_TRAINS);
  private readonly trainLength = new Int32Array(MAX_TRAINS);
  private readonly trainSegment = new Int32Array(MAX_TRAINS);
  private readonly trainIp = new Uint32Array(MAX_TRAINS);
  private readonly trainPort = new Uint16Array(MAX_TRAINS);
  private readonly trainOwners: (ArrayBufferLike | null)[] = new Array<ArrayBufferLike | null>(MAX_TRAINS).fill(null);
  private trains = 0;
  /** Datagrams an early flush (from queue) could not send, reported by the next flush(). */
  private unsentCarried = 0;
  private readonly addresses = new WeakMap<ArrayBufferLike, number>();

  /** `fd()`: the socket now (-1 once closed), for the early flush inside queue(). */
  constructor(
    private readonly calls: MmsgCalls,
    private readonly fd: () => number,
    gso: boolean,
    private readonly counters: SendCounters,
  ) {
    this.gso = gso;
    const { views, at } = carve([SEND_MESSAGES * MMSGHDR_BYTES, SEND_MESSAGES * IOVEC_BYTES, SEND_MESSAGES * SOCKADDR_IN_BYTES, SEND_MESSAGES * SEGMENT_CONTROL_BYTES]);
    this.memory = views;
    const [headers, iovecs, names, control] = views as [Buffer, Buffer, Buffer, Buffer];
    const [, iovecsAt, namesAt, controlAt] = at as [number, number, number, number];
    pointHeaders(headers, SEND_MESSAGES, namesAt, SOCKADDR_IN_BYTES, SOCKADDR_IN_BYTES, iovecsAt);
    for (let k = 0; k < SEND_MESSAGES; k++) {
      names.writeUInt16LE(AF_INET, k * SOCKADDR_IN_BYTES);
      const cm = k * SEGMENT_CONTROL_BYTES;
      control.writeUInt32LE(SEGMENT_CMSG_LEN, cm);
      control.writeInt32LE(SOL_UDP, cm + 8);
      control.writeInt32LE(UDP_SEGMENT, cm + 12);
    }
    this.headers = headers;
    this.iovecs = iovecs;
    this.names = names;
    this.control = control;
    this.controlAt = controlAt;
  }

  /**
   * Queues one train: datagrams of `segmentBytes` back to back in buf[offset, offset + length)
   * (the last may be shorter), all to ip:port. The bytes must stay untouched until flush().
   */
  queue(buf: Uint8Array, offset: number, length: number, segmentBytes: number, ip: number, port: number): void {
    if (!(offset >= 0 && length > 0 && offset + length <= buf.length)) throw new RangeError(`train [${offset}, +${length}) outside a ${buf.length}-byte buffer`);
    if (!(segmentBytes >= 1 && segmentBytes <= MAX_GSO_BYTES)) throw new RangeError(`segment of ${segmentBytes} bytes`);
    if (this.trains === MAX_TRAINS) this.unsentCarried += this.flush(this.fd());
    const k = this.trains++;
    // Reading .buffer also moves an on-heap typed array's bytes off the heap for good.
    const owner = buf.buffer;
    let base = this.addresses.get(owner);
    if (base === undefined) {
      base = bufferAddress(new Uint8Array(owner));
      this.addresses.set(owner, base);
    }
    this.trainAt[k] = base + buf.byteOffset + offset;
    this.trainLength[k] = length;
    this.trainSegment[k] = segmentBytes;
    this.trainIp[k] = ip;
    this.trainPort[k] = port;
    this.trainOwners[k] = owner;
  }

  /**
   * Sends everything queued with as few sendmmsg calls as possible. Returns the number of
   * datagrams that could not be sent; errors go to onSendError once per train.
   */
  flush(fd: number): number {
    let unsent = this.unsentCarried;
    this.unsentCarried = 0;
    const trains = this.trains;
    if (trains === 0) return unsent;
    this.trains = 0;
    if (fd < 0) {
      for (let t = 0; t < trains; t++) unsent += Math.ceil(this.trainLength[t]! / this.trainSegment[t]!);
      this.trainOwners.fill(null, 0, trains);
      return unsent;
    }
    let train = 0;
    let start = 0;
    let reportedTrain = -1;
    while (train < trains) {
      // Prepare as many messages as fit, from (train, start) on.
      let count = 0;
      while (count < SEND_MESSAGES && train < trains) {
        const length = this.trainLength[train]!;
        const segment = this.trainSegment[train]!;
        const left = length - start;
        let take = left < segment ? left : segment;
        if (this.gso && left > segment) {
          const perMessage = Math.min(MAX_GSO_SEGMENTS, Math.floor(MAX_GSO_BYTES / segment)) * segment;
          take = left < perMessage ? left : perMessage;
        }
        this.prepare(count, this.trainAt[train]! + start, take, take > segment ? segment : 0, this.trainIp[train]!, this.trainPort[train]!);
        this.messageTrain[count] = train;
        this.messageStart[count] = start;
        this.messageDatagrams[count] = Math.ceil(take / segment);
        count++;
        start += take;
        if (start === length) {
          train++;
          start = 0;
        }
      }
      // Send them; a refused message is skipped (reported), a refused GSO message may turn GSO off.
      let at = 0;
      while (at < count) {
        const n = this.calls.sendmmsg(fd, at === 0 ? this.headers : this.headers.subarray(at * MMSGHDR_BYTES), count - at, MSG_DONTWAIT);
        if (n > 0) {
          for (let k = at; k < at + n; k++) this.counters.sent += this.messageDatagrams[k]!;
          at += n;
          continue;
        }
        let errno = koffi.errno();
        if (errno === EINTR) continue;
        const t = this.messageTrain[at]!;
        const segment = this.trainSegment[t]!;
        const isGso = this.messageDatagrams[at]! > 1 && this.gso;
        if (isGso && (errno === EIO || errno === EINVAL)) {
          const refused = errno === EIO || this.sendFirstAlone(fd, at) === 0;
          if (refused) {
            this.gso = false;
            this.counters.gsoFallbacks++;
            // Prepare again from this message (EINVAL: its first datagram went out alone).
            train = t;
            start = this.messageStart[at]! + (errno === EIO ? 0 : segment);
            if (errno === EINVAL) this.counters.sent++;
            if (start >= this.trainLength[t]!) {
              train++;
              start = 0;
            }
            break;
          }
          errno = koffi.errno();
        }
        this.counters.sendErrors++;
        unsent += this.messageDatagrams[at]!;
        if (t !== reportedTrain) {
          reportedTrain = t;
          this.onSendError?.(errno, this.trainIp[t]!, this.trainPort[t]!, segment);
        }
        at++;
      }
    }
    this.trainOwners.fill(null, 0, trains);
    return unsent;
  }

  /** Points message k at `length` bytes at address `at`, to ip:port, with a UDP_SEGMENT cmsg when segment > 0. */
  private prepare(k: number, at: number, length: number, segment: number, ip: number, port: number): void {
    const h = k * MMSGHDR_BYTES;
    writePointer(this.iovecs, k * IOVEC_BYTES, at);
    this.iovecs.writeUInt32LE(length, k * IOVEC_BYTES + 8);
    const name = k * SOCKADDR_IN_BYTES;
    this.names.writeUInt16BE(port, name + 2);
    this.names.writeUInt32BE(ip, name + 4);
    if (segment > 0) {
      this.control.writeUInt16LE(segment, k * SEGMENT_CONTROL_BYTES + CMSG_HEADER_BYTES);
      writePointer(this.headers, h + MSG_CONTROL, this.controlAt + k * SEGMENT_CONTROL_BYTES);
      this.headers.writeUInt32LE(SEGMENT_CONTROL_BYTES, h + MSG_CONTROLLEN);
    } else {
      writePointer(this.headers, h + MSG_CONTROL, 0);
      this.headers.writeUInt32LE(0, h + MSG_CONTROLLEN);
    }
  }

  /** Sends only the first datagram of prepared GSO message k, without the cmsg; 0 or -1 (errno set). */
  private sendFirstAlone(fd: number, k: number): number {
    const t = this.messageTrain[k]!;
    const segment = this.trainSegment[t]!;
    const h = k * MMSGHDR_BYTES;
    this.iovecs.writeUInt32LE(segment, k * IOVEC_BYTES + 8);
    writePointer(this.headers, h + MSG_CONTROL, 0);
    this.headers.writeUInt32LE(0, h + MSG_CONTROLLEN);
    return this.calls.sendmmsg(fd, this.headers.subarray(h), 1, MSG_DONTWAIT) === 1 ? 0 : -1;
  }
}
