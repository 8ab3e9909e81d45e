/**
 * A UDP (IPv4) socket owned through koffi, for the relay's data port: trains of equal-size
 * datagrams go to the kernel in one sendmmsg with UDP GSO (UDP_SEGMENT), and arrive with UDP GRO
 * (the UDP_GRO socket option) through recvmmsg. Node's dgram can do neither.
 *
 * Send contract (as in wireguard-go conn/bind_std.go and quinn-udp src/unix.rs):
 * - `queue()` records a train: datagrams of `segmentBytes` back to back (the last may be
 *   shorter), to one destination. `flush()` builds one sendmmsg message per train, split so that
 *   no message has more than MAX_GSO_SEGMENTS segments (the kernel's UDP_MAX_SEGMENTS is 64 on
 *   older kernels) or more than MAX_GSO_BYTES of payload (the IPv4 UDP limit). Without GSO, one
 *   message per datagram.
 * - The kernel refuses a GSO message with EIO when the route's device cannot checksum, and with
 *   EINVAL for several reasons, among them a segment that does not fit the path MTU (with DF).
 *   So: EIO turns GSO off for good. EINVAL sends the message's first datagram alone: if that
 *   works, GSO itself was refused and is turned off for good; if it fails too (EMSGSIZE: the
 *   path MTU shrank), that error is reported and the message dropped, GSO stays on. Either way
 *   the datagrams that follow go out one by one. Each turn-off is counted in `gsoFallbacks`.
 * - Errors are reported once per train to `onSendError` (EMSGSIZE: the path MTU is below the
 *   segment; EAGAIN: the socket buffer is full, the train is dropped); `flush()` returns how
 *   many datagrams were not sent. Nothing is retried later: UDP is lossy anyway.
 *
 * Receive contract: `onReadable` runs on the main thread when datagrams wait (fd-watch.ts); the
 * owner calls `receive()` until it returns 0, or until it has done a fair share of work (the
 * watch is level-triggered and calls again). Each message is one datagram, or with GRO several
 * of `segmentSize(i)` bytes back to back (the last may be shorter).
 *
 * Ownership: the views from `data(i)` are valid until the next `receive()`. Bytes passed to
 * `queue()` must stay untouched until `flush()` returns (queue() may flush early when its tables
 * are full). Not thread-safe; all calls from the main thread.
 *
 * Hot path: every mmsghdr, iovec, cmsg and sockaddr is preallocated; a queued buffer's address is
 * learned once per ArrayBuffer (WeakMap); no objects per datagram or train.
 */
import koffi from 'koffi';
import { LoomError } from '../core/errors.js';
import { watchReadable, type FdWatch, type FdWatchKind } from './fd-watch.js';
import { bufferAddress, libc, mmsgCalls, type MmsgCalls } from './libc.js';
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
  MSG_IOV,
  MSG_IOVLEN,
  MSG_NAME,
  MSG_NAMELEN,
  SOCKADDR_IN_BYTES,
  cmsgSpace,
  isLp64Linux,
  writePointer,
} from './udp-batch.js';

export interface UdpEndpointOptions {
  /** IPv4 literal to bind, e.g. '0.0.0.0' or '127.0.0.1'. */
  address: string;
  /** 0 = any. */
  port: number;
  /** Runs when datagrams wait; the owner calls receive() until it returns 0. */
  onReadable: () => void;
  /** setsockopt UDP_GRO (default true). */
  gro?: boolean;
  /** UDP_SEGMENT on sends (default true; off for good once the kernel refuses it). */
  gso?: boolean;
  /** IP_MTU_DISCOVER = IP_PMTUDISC_DO (default true): DF on every datagram, EMSGSIZE instead of fragments. */
  pmtuDiscovery?: boolean;
  /** SO_RCVBUF / SO_SNDBUF (default 4 MiB; SO_*BUFFORCE first, which needs CAP_NET_ADMIN). */
  bufferBytes?: number;
  /** Messages per recvmmsg (default 16, 1..1024); each receive slot is 65,536 bytes. */
  batch?: number;
  /** How to watch the fd (fd-watch.ts); default: the best available. */
  watch?: FdWatchKind;
}

export interface UdpEndpointStats {
  gso: boolean;
  gro: boolean;
  /** Times GSO was turned off because the kernel refused it (0 or 1). */
  gsoFallbacks: number;
  /** Datagrams the kernel accepted. */
  sent: number;
  /** Failed sendmmsg messages (a GSO message counts once). */
  sendErrors: number;
  /** Datagrams received (a GRO message counts as its segments). */
  received: number;
  /** Received messages that carried a UDP_GRO gso_size. */
  groMessages: number;
  /** Received messages whose control data was truncated or malformed (treated as one datagram). */
  oddCmsgs: number;
}

export type SendErrorListener = (errno: number, ip: number, port: number, segmentBytes: number) => void;

export const DEFAULT_BUFFER_BYTES = 4 << 20;
export const DEFAULT_RECEIVE_BATCH = 16;
/** Bytes per receive slot: a GRO message is at most a 64 KiB skb. */
export const RECEIVE_SLOT_BYTES = 65_536;
/** Segments per GSO message: UDP_MAX_SEGMENTS on kernels before 6.x raised it to 128. */
export const MAX_GSO_SEGMENTS = 64;
/** Payload per GSO message: 65,535 - 20 (IPv4 header) - 8 (UDP header). */
export const MAX_GSO_BYTES = 65_507;
/** sendmmsg messages prepared per call (and per flush round). */
const SEND_MESSAGES = 1024;
/** Trains held between flushes; queue() flushes early beyond this. */
const MAX_TRAINS = 256;

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const IPPROTO_IP = 0;
const IP_MTU_DISCOVER = 10;
const IP_PMTUDISC_DO = 2;
const SOL_UDP = 17;
const UDP_SEGMENT = 103;
const UDP_GRO = 104;

export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const EADDRINUSE = 98;

/** Control bytes per receive slot: room for the UDP_GRO int and one more message besides. */
const RECEIVE_CONTROL_BYTES = 2 * cmsgSpace(4);
/** A UDP_SEGMENT cmsg: cmsg_len is CMSG_LEN(2), the kernel insists on exactly that. */
const SEGMENT_CONTROL_BYTES = cmsgSpace(2);
const SEGMENT_CMSG_LEN = CMSG_HEADER_BYTES + 2;

interface EndpointLibc extends MmsgCalls {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  getsockname(fd: number, address: Buffer, length: number[]): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: number[]): number;
  sendto(fd: number, data: Uint8Array, length: number, flags: number, address: Buffer, addressLength: number): number;
}

let endpointLibc: EndpointLibc | null = null;
function loadLibc(): EndpointLibc {
  if (endpointLibc) return endpointLibc;
  const lib = libc();
  endpointLibc = {
    ...mmsgCalls(),
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, void *, uint32_t)'),
    getsockname: lib.func('int getsockname(int, void *, _Inout_ uint32_t *)'),
    setsockopt: lib.func('int setsockopt(int, int, int, void *, uint32_t)'),
    getsockopt: lib.func('int getsockopt(int, int, int, void *, _Inout_ uint32_t *)'),
    sendto: lib.func('long sendto(int, void *, size_t, int, void *, uint32_t)'),
  } as EndpointLibc;
  return endpointLibc;
}

/** "a.b.c.d" as a u32 (a << 24 | ...); throws ERR_INVALID_ARGUMENT for anything else. */
export function ipv4ToU32(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new LoomError('ERR_INVALID_ARGUMENT', `not an IPv4 address: "${ip.slice(0, 40)}"`);
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) throw new LoomError('ERR_INVALID_ARGUMENT', `not an IPv4 address: "${ip.slice(0, 40)}"`);
    value = value * 256 + Number(part);
  }
  return value;
}

export function u32ToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * Carves the regions the kernel reads by address out of one Buffer of its own (never from the
 * pool, so its bytes never move). The views keep that Buffer alive: every region must be kept
 * by the endpoint, or the kernel would write into freed memory.
 */
function carve(sizes: number[]): { views: Buffer[]; at: number[] } {
  const memory = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
  const base = bufferAddress(memory);
  // Pointers and size_t fields need 8-byte alignment (malloc gives 16; every size is a multiple of 8).
  if (base % 8 !== 0) throw new RangeError(`unaligned buffer address ${base}`);
  const views: Buffer[] = [];
  const at: number[] = [];
  let offset = 0;
  for (const size of sizes) {
    views.push(memory.subarray(offset, offset + size));
    at.push(base + offset);
    offset += size;
  }
  return { views, at };
}

interface Region {
  view: Buffer;
  at: number;
}

export class UdpEndpoint {
  readonly address: string;
  readonly port: number;
  onSendError: SendErrorListener | null = null;

  private fd: number;
  private watch: FdWatch | null = null;
  private gso: boolean;
  private readonly gro: boolean;
  private readonly batch: number;
  private readonly c: EndpointLibc;
  private readonly counters = { gsoFallbacks: 0, sent: 0, sendErrors: 0, received: 0, groMessages: 0, oddCmsgs: 0 };

  /** Every region the kernel reads by address (headers, iovecs, names, control, data): kept alive here. */
  private readonly memory: Buffer[];

  // Receive side: `batch` slots of RECEIVE_SLOT_BYTES.
  private readonly recvHeaders: Buffer;
  private readonly recvNames: Buffer;
  private readonly recvControl: Buffer;
  private readonly recvData: Buffer;
  private readonly segmentSizes: Int32Array;
  private received = 0;

  // Send side: SEND_MESSAGES headers, each with its iovec, sockaddr_in and UDP_SEGMENT cmsg.
  private readonly sendHeaders: Buffer;
  private readonly sendIovecs: Buffer;
  private readonly sendNames: Buffer;
  private readonly sendControl: Buffer;
  private readonly sendControlAt: number;
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

  private readonly probeName = Buffer.alloc(SOCKADDR_IN_BYTES);

  /**
   * Opens, configures and binds the socket and starts watching it. ERR_CONFLICT when the port is
   * taken, ERR_INVALID_ARGUMENT for bad options, ERR_UNAVAILABLE otherwise.
   */
  static open(options: UdpEndpointOptions): UdpEndpoint {
    const ip = ipv4ToU32(options.address);
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 0xffff) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid UDP port ${options.port}`);
    const batch = options.batch ?? DEFAULT_RECEIVE_BATCH;
    if (!Number.isInteger(batch) || batch < 1 || batch > 1024) throw new LoomError('ERR_INVALID_ARGUMENT', 'receive batch must be 1..1024');
    const bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
    if (!Number.isInteger(bufferBytes) || bufferBytes < 4096 || bufferBytes > 1 << 30) throw new LoomError('ERR_INVALID_ARGUMENT', 'socket buffer must be 4 KiB..1 GiB');
    if (!isLp64Linux()) throw new LoomError('ERR_UNAVAILABLE', `UDP endpoint needs 64-bit Linux, not ${process.platform}/${process.arch}`);
    let c: EndpointLibc;
    try {
      c = loadLibc();
    } catch (err) {
      throw new LoomError('ERR_UNAVAILABLE', `koffi/libc unavailable: ${(err as Error).message}`, { cause: err });
    }
    const where = `UDP ${options.address}:${options.port}`;
    const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new LoomError('ERR_UNAVAILABLE', `cannot open ${where} (errno ${koffi.errno()})`);
    let endpoint: UdpEndpoint | null = null;
    try {
      const int = Buffer.alloc(4);
      const setInt = (level: number, name: number, value: number): boolean => {
        int.writeInt32LE(value, 0);
        return c.setsockopt(fd, level, name, int, 4) === 0;
      };
      if (!setInt(SOL_SOCKET, SO_RCVBUFFORCE, bufferBytes)) setInt(SOL_SOCKET, SO_RCVBUF, bufferBytes);
      if (!setInt(SOL_SOCKET, SO_SNDBUFFORCE, bufferBytes)) setInt(SOL_SOCKET, SO_SNDBUF, bufferBytes);
      if ((options.pmtuDiscovery ?? true) && !setInt(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)) {
        throw new LoomError('ERR_UNAVAILABLE', `cannot set IP_MTU_DISCOVER on ${where} (errno ${koffi.errno()})`);
      }
      // Kernels with UDP_SEGMENT (4.18+) answer getsockopt for it (wireguard-go's probe).
      const gso = (options.gso ?? true) && c.getsockopt(fd, SOL_UDP, UDP_SEGMENT, int, [4]) === 0;
      const gro = (options.gro ?? true) && setInt(SOL_UDP, UDP_GRO, 1);
      const name = Buffer.alloc(SOCKADDR_IN_BYTES);
      writeSockaddrIn(name, 0, ip, options.port);
      if (c.bind(fd, name, SOCKADDR_IN_BYTES) !== 0) {
        const errno = koffi.errno();
        throw new LoomError(errno === EADDRINUSE ? 'ERR_CONFLICT' : 'ERR_UNAVAILABLE', `cannot bind ${where} (errno ${errno})`, { detail: { errno } });
      }
      const length = [SOCKADDR_IN_BYTES];
      if (c.getsockname(fd, name, length) !== 0) throw new LoomError('ERR_UNAVAILABLE', `getsockname on ${where} failed (errno ${koffi.errno()})`);
      endpoint = new UdpEndpoint(c, fd, options.address, name.readUInt16BE(2), batch, gso, gro);
      endpoint.watch = watchReadable(fd, options.onReadable, options.watch ? { prefer: options.watch } : {});
      return endpoint;
    } catch (err) {
      if (endpoint) endpoint.close();
      else c.close(fd);
      if (err instanceof LoomError) throw err;
      throw new LoomError('ERR_UNAVAILABLE', `cannot open ${where}: ${(err as Error).message}`, { cause: err });
    }
  }

  private constructor(c: EndpointLibc, fd: number, address: string, port: number, batch: number, gso: boolean, gro: boolean) {
    this.c = c;
    this.fd = fd;
    this.address = address;
    this.port = port;
    this.batch = batch;
    this.gso = gso;
    this.gro = gro;

    const { views, at } = carve([
      batch * MMSGHDR_BYTES,
      batch * IOVEC_BYTES,
      batch * SOCKADDR_IN_BYTES,
      batch * RECEIVE_CONTROL_BYTES,
      batch * RECEIVE_SLOT_BYTES,
      SEND_MESSAGES * MMSGHDR_BYTES,
      SEND_MESSAGES * IOVEC_BYTES,
      SEND_MESSAGES * SOCKADDR_IN_BYTES,
      SEND_MESSAGES * SEGMENT_CONTROL_BYTES,
    ]);
    this.memory = views;
    const [rh, riov, rn, rc, rd, sh, siov, sn, sc] = views.map((view, k) => ({ view, at: at[k]! })) as [Region, Region, Region, Region, Region, Region, Region, Region, Region];
    for (let i = 0; i < batch; i++) {
      const h = i * MMSGHDR_BYTES;
      writePointer(rh.view, h + MSG_NAME, rn.at + i * SOCKADDR_IN_BYTES);
      rh.view.writeUInt32LE(SOCKADDR_IN_BYTES, h + MSG_NAMELEN);
      writePointer(rh.view, h + MSG_IOV, riov.at + i * IOVEC_BYTES);
      rh.view.writeUInt32LE(1, h + MSG_IOVLEN);
      writePointer(rh.view, h + MSG_CONTROL, rc.at + i * RECEIVE_CONTROL_BYTES);
      rh.view.writeUInt32LE(RECEIVE_CONTROL_BYTES, h + MSG_CONTROLLEN);
      writePointer(riov.view, i * IOVEC_BYTES, rd.at + i * RECEIVE_SLOT_BYTES);
      riov.view.writeUInt32LE(RECEIVE_SLOT_BYTES, i * IOVEC_BYTES + 8);
    }
    this.recvHeaders = rh.view;
    this.recvNames = rn.view;
    this.recvControl = rc.view;
    this.recvData = rd.view;
    this.segmentSizes = new Int32Array(batch);

    for (let k = 0; k < SEND_MESSAGES; k++) {
      const h = k * MMSGHDR_BYTES;
      writePointer(sh.view, h + MSG_NAME, sn.at + k * SOCKADDR_IN_BYTES);
      sh.view.writeUInt32LE(SOCKADDR_IN_BYTES, h + MSG_NAMELEN);
      writePointer(sh.view, h + MSG_IOV, siov.at + k * IOVEC_BYTES);
      sh.view.writeUInt32LE(1, h + MSG_IOVLEN);
      sn.view.writeUInt16LE(AF_INET, k * SOCKADDR_IN_BYTES);
      const cm = k * SEGMENT_CONTROL_BYTES;
      sc.view.writeUInt32LE(SEGMENT_CMSG_LEN, cm);
      sc.view.writeInt32LE(SOL_UDP, cm + 8);
      sc.view.writeInt32LE(UDP_SEGMENT, cm + 12);
    }
    this.sendHeaders = sh.view;
    this.sendIovecs = siov.view;
    this.sendNames = sn.view;
    this.sendControl = sc.view;
    this.sendControlAt = sc.at;
    this.probeName.writeUInt16LE(AF_INET, 0);
  }

  /** Drains up to `batch` messages with one non-blocking recvmmsg; returns how many (0: none, closed, or an error). */
  receive(): number {
    if (this.fd < 0) return 0;
    const headers = this.recvHeaders;
    // The kernel wrote the actual lengths over the last batch's; give back the room.
    for (let i = 0; i < this.received; i++) {
      headers.writeUInt32LE(SOCKADDR_IN_BYTES, i * MMSGHDR_BYTES + MSG_NAMELEN);
      headers.writeUInt32LE(RECEIVE_CONTROL_BYTES, i * MMSGHDR_BYTES + MSG_CONTROLLEN);
    }
    const n = this.c.recvmmsg(this.fd, headers, this.batch, MSG_DONTWAIT, null);
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
    const length = this.recvHeaders.readUInt32LE(i * MMSGHDR_BYTES + MMSG_LEN);
    return this.recvData.subarray(i * RECEIVE_SLOT_BYTES, i * RECEIVE_SLOT_BYTES + length);
  }

  /** The UDP_GRO gso_size of message i, or 0 when it is one datagram (or its cmsg was odd). */
  segmentSize(i: number): number {
    return this.segmentSizes[i] ?? 0;
  }

  /** Source IPv4 of message i as a u32 (0 if not IPv4). */
  sourceIp(i: number): number {
    const at = i * SOCKADDR_IN_BYTES;
    return this.recvNames.readUInt16LE(at) === AF_INET ? this.recvNames.readUInt32BE(at + 4) : 0;
  }

  sourcePort(i: number): number {
    return this.recvNames.readUInt16BE(i * SOCKADDR_IN_BYTES + 2);
  }

  /**
   * Queues one train: datagrams of `segmentBytes` back to back in buf[offset, offset + length)
   * (the last may be shorter), all to ip:port. The bytes must stay untouched until flush().
   */
  queue(buf: Uint8Array, offset: number, length: number, segmentBytes: number, ip: number, port: number): void {
    if (!(offset >= 0 && length > 0 && offset + length <= buf.length)) throw new RangeError(`train [${offset}, +${length}) outside a ${buf.length}-byte buffer`);
    if (!(segmentBytes >= 1 && segmentBytes <= MAX_GSO_BYTES)) throw new RangeError(`segment of ${segmentBytes} bytes`);
    if (this.trains === MAX_TRAINS) this.unsentCarried += this.flush();
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
  flush(): number {
    let unsent = this.unsentCarried;
    this.unsentCarried = 0;
    const trains = this.trains;
    if (trains === 0) return unsent;
    this.trains = 0;
    if (this.fd < 0) {
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
        const n = this.c.sendmmsg(this.fd, at === 0 ? this.sendHeaders : this.sendHeaders.subarray(at * MMSGHDR_BYTES), count - at, MSG_DONTWAIT);
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
          const refused = errno === EIO || this.sendFirstAlone(at) === 0;
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

  /** One datagram now (probes): 0, or a negative errno (-EMSGSIZE: over the path MTU with DF). */
  sendNow(buf: Uint8Array, ip: number, port: number): number {
    if (this.fd < 0) return -EBADF;
    writeSockaddrIn(this.probeName, 0, ip, port);
    const n = this.c.sendto(this.fd, buf, buf.length, MSG_DONTWAIT, this.probeName, SOCKADDR_IN_BYTES);
    if (n >= 0) {
      this.counters.sent++;
      return 0;
    }
    this.counters.sendErrors++;
    return -koffi.errno();
  }

  stats(): UdpEndpointStats {
    return { gso: this.gso, gro: this.gro, ...this.counters };
  }

  /** Which fd-watch kind delivers onReadable (null once closed). */
  get watchKind(): FdWatchKind | null {
    return this.watch?.kind ?? null;
  }

  /** Stops the watch and closes the socket. Idempotent; later sends fail with EBADF, receive() returns 0. */
  close(): void {
    this.watch?.close();
    this.watch = null;
    if (this.fd >= 0) {
      this.c.close(this.fd);
      this.fd = -1;
    }
    this.received = 0;
  }

  /** Points message k at `length` bytes at address `at`, to ip:port, with a UDP_SEGMENT cmsg when segment > 0. */
  private prepare(k: number, at: number, length: number, segment: number, ip: number, port: number): void {
    const h = k * MMSGHDR_BYTES;
    writePointer(this.sendIovecs, k * IOVEC_BYTES, at);
    this.sendIovecs.writeUInt32LE(length, k * IOVEC_BYTES + 8);
    const name = k * SOCKADDR_IN_BYTES;
    this.sendNames.writeUInt16BE(port, name + 2);
    this.sendNames.writeUInt32BE(ip, name + 4);
    if (segment > 0) {
      this.sendControl.writeUInt16LE(segment, k * SEGMENT_CONTROL_BYTES + CMSG_HEADER_BYTES);
      writePointer(this.sendHeaders, h + MSG_CONTROL, this.sendControlAt + k * SEGMENT_CONTROL_BYTES);
      this.sendHeaders.writeUInt32LE(SEGMENT_CONTROL_BYTES, h + MSG_CONTROLLEN);
    } else {
      writePointer(this.sendHeaders, h + MSG_CONTROL, 0);
      this.sendHeaders.writeUInt32LE(0, h + MSG_CONTROLLEN);
    }
  }

  /** Sends only the first datagram of prepared GSO message k, without the cmsg; 0 or -1 (errno set). */
  private sendFirstAlone(k: number): number {
    const t = this.messageTrain[k]!;
    const segment = this.trainSegment[t]!;
    const h = k * MMSGHDR_BYTES;
    this.sendIovecs.writeUInt32LE(segment, k * IOVEC_BYTES + 8);
    writePointer(this.sendHeaders, h + MSG_CONTROL, 0);
    this.sendHeaders.writeUInt32LE(0, h + MSG_CONTROLLEN);
    return this.c.sendmmsg(this.fd, this.sendHeaders.subarray(h), 1, MSG_DONTWAIT) === 1 ? 0 : -1;
  }

  /** Message i's UDP_GRO gso_size from its control data; 0 when none, counting odd ones. */
  private parseControl(i: number): number {
    const headers = this.recvHeaders;
    const h = i * MMSGHDR_BYTES;
    const controlLength = headers.readUInt32LE(h + MSG_CONTROLLEN);
    const flags = headers.readInt32LE(h + MSG_FLAGS);
    if ((flags & MSG_CTRUNC) !== 0 || controlLength > RECEIVE_CONTROL_BYTES) {
      this.counters.oddCmsgs++;
      return 0;
    }
    const control = this.recvControl;
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

/** sockaddr_in for a u32 address; the family is written too. */
function writeSockaddrIn(out: Buffer, offset: number, ip: number, port: number): void {
  out.writeUInt16LE(AF_INET, offset);
  out.writeUInt16BE(port, offset + 2);
  out.writeUInt32BE(ip >>> 0, offset + 4);
  out.fill(0, offset + 8, offset + 16);
}
