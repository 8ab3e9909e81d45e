/**
 * The receive side of a UdpEndpoint: `batch` preallocated slots for one non-blocking recvmmsg,
 * with room for a UDP_GRO control message each. A message is one datagram, or with GRO several
 * of `segmentSize(i)` bytes back to back (the last may be shorter). Views from `data(i)` are valid
 * until the next receive(). Hot path: no allocation but the views.
 */
import type { MmsgCalls } from './libc.js';
import { carve } from './libc.js';
import {
  CMSG_HEADER_BYTES,
  IOVEC_BYTES,
  MMSG_LEN,
  MMSGHDR_BYTES,
  MSG_CONTROL,
  MSG_CONTROLLEN,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_FLAGS,
  MSG_NAMELEN,
  SOCKADDR_IN_BYTES,
  cmsgSpace,
  pointHeaders,
  pointIovecs,
  writePointer,
} from './udp-batch.js';

/** Bytes per receive slot: a GRO message is at most a 64 KiB skb. */
export const RECEIVE_SLOT_BYTES = 65_536;
export const SOL_UDP = 17;
export const UDP_GRO = 104;
const AF_INET = 2;
/** Control bytes per receive slot: room for the UDP_GRO int and one more message besides. */
const RECEIVE_CONTROL_BYTES = 2 * cmsgSpace(4);

export interface ReceiveCounters {
  received: number;
  groMessages: number;
  oddCmsgs: number;
}

export class GroReceiver {
  /** Every region the kernel writes by address: kept alive here. */
  private readonly memory: Buffer[];
  private readonly headers: Buffer;
  private readonly names: Buffer;
  private readonly control: Buffer;
  private readonly data_: Buffer;
  private readonly segmentSizes: Int32Array;
  private received = 0;

  constructor(
    private readonly calls: MmsgCalls,
    private readonly batch: number,
    private readonly counters: ReceiveCounters,
  ) {
    const { views, at } = carve([batch * MMSGHDR_BYTES, batch * IOVEC_BYTES, batch * SOCKADDR_IN_BYTES, batch * RECEIVE_CONTROL_BYTES, batch * RECEIVE_SLOT_BYTES]);
    this.memory = views;
    const [headers, iovecs, names, control, data] = views as [Buffer, Buffer, Buffer, Buffer, Buffer];
    const [, iovecsAt, namesAt, controlAt, dataAt] = at as [number, number, number, number, number];
    pointHeaders(headers, batch, namesAt, SOCKADDR_IN_BYTES, SOCKADDR_IN_BYTES, iovecsAt);
    pointIovecs(iovecs, batch, dataAt, RECEIVE_SLOT_BYTES);
    for (let i = 0; i < batch; i++) {
      const h = i * MMSGHDR_BYTES;
      writePointer(headers, h + MSG_CONTROL, controlAt + i * RECEIVE_CONTROL_BYTES);
      headers.writeUInt32LE(RECEIVE_CONTROL_BYTES, h + MSG_CONTROLLEN);
    }
    this.headers = headers;
    this.names = names;
    this.control = control;
    this.data_ = data;
    this.segmentSizes = new Int32Array(batch);
  }

  /** The views of the last batch are gone (the socket closed). */
  reset(): void {
    this.received = 0;
  }

  /** Drains up to `batch` messages from `fd` with one non-blocking recvmmsg; returns how many (0: none or an error). */
  receive(fd: number): number {
    const headers = this.headers;
    // The kernel wrote the actual lengths over the last batch's; give back the room.
    for (let i = 0; i < this.received; i++) {
      headers.writeUInt32LE(SOCKADDR_IN_BYTES, i * MMSGHDR_BYTES + MSG_NAMELEN);
      headers.writeUInt32LE(RECEIVE_CONTROL_BYTES, i * MMSGHDR_BYTES + MSG_CONTROLLEN);
    }
    const n = this.calls.recvmmsg(fd, headers, this.batch, MSG_DONTWAIT, null);
    this.received = n > 0 ? n : 0;
    for (let i = 0; i < this.received; i++) {
      const segment = this.parseControl(i);
      this.segmentSizes[i] = segment;
      const length = headers.readUInt32LE(i * MMSGHDR_BYTES + MMSG_LEN);
      if (segment > 0) {
        this.counters.groMessages++;
        this.counters.received += Math.ceil(length / segment);
      } else this.counters.received++;
    }
    return this.received;
  }

  /** Message i's bytes (a GRO message holds several datagrams back to back); valid until the next receive(). */
  data(i: number): Buffer {
    const length = this.headers.readUInt32LE(i * MMSGHDR_BYTES + MMSG_LEN);
    return this.data_.subarray(i * RECEIVE_SLOT_BYTES, i * RECEIVE_SLOT_BYTES + length);
  }

  /** The UDP_GRO gso_size of message i, or 0 when it is one datagram (or its cmsg was odd). */
  segmentSize(i: number): number {
    return this.segmentSizes[i] ?? 0;
  }

  /** Source IPv4 of message i as a u32 (0 if not IPv4). */
  sourceIp(i: number): number {
    const at = i * SOCKADDR_IN_BYTES;
    return this.names.readUInt16LE(at) === AF_INET ? this.names.readUInt32BE(at + 4) : 0;
  }

  sourcePort(i: number): number {
    return this.names.readUInt16BE(i * SOCKADDR_IN_BYTES + 2);
  }

  /** Message i's UDP_GRO gso_size from its control data; 0 when none, counting odd ones. */
  private parseControl(i: number): number {
    const headers = this.headers;
    const h = i * MMSGHDR_BYTES;
    const controlLength = headers.readUInt32LE(h + MSG_CONTROLLEN);
    const flags = headers.readInt32LE(h + MSG_FLAGS);
    if ((flags & MSG_CTRUNC) !== 0 || controlLength > RECEIVE_CONTROL_BYTES) {
      this.counters.oddCmsgs++;
      return 0;
    }
    const control = this.control;
    const base = i * RECEIVE_CONTROL_BYTES;
    let off = 0;
    let segment = 0;
    while (off + CMSG_HEADER_BYTES <= controlLength) {
      const length = control.readUInt32LE(base + off);
      if (length < CMSG_HEADER_BYTES || off + length > controlLength) {
        this.counters.oddCmsgs++;
        return 0;
      }
      if (control.readInt32LE(base + off + 8) === SOL_UDP && control.readInt32LE(base + off + 12) === UDP_GRO) {
        // The kernel sends an int (quinn-udp reads c_int); wireguard-go reads its low 16 bits.
        if (length >= CMSG_HEADER_BYTES + 4) segment = control.readInt32LE(base + off + CMSG_HEADER_BYTES);
        else if (length >= CMSG_HEADER_BYTES + 2) segment = control.readUInt16LE(base + off + CMSG_HEADER_BYTES);
        if (segment <= 0 || segment > RECEIVE_SLOT_BYTES) {
          this.counters.oddCmsgs++;
          return 0;
        }
      }
      off += (length + 7) & ~7;
    }
    return segment;
  }
}
