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
 * The two sides live in udp-gso-sender.ts (queue, flush, the refusal rules above) and
 * udp-gro-receiver.ts (recvmmsg slots, the UDP_GRO control message); this file opens, configures
 * and closes the socket and sends single datagrams (probes).
 */
import koffi from 'koffi';
import { LoomError } from '../core/errors.js';
import { watchReadable, type FdWatch, type FdWatchKind } from './fd-watch.js';
import { libc, mmsgCalls, type MmsgCalls } from './libc.js';
import { MSG_DONTWAIT, SOCKADDR_IN_BYTES, isLp64Linux } from './udp-batch.js';
import { GroReceiver, SOL_UDP, UDP_GRO } from './udp-gro-receiver.js';
import { GsoSender, UDP_SEGMENT, type SendErrorListener } from './udp-gso-sender.js';

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

export type { SendErrorListener } from './udp-gso-sender.js';
export { MAX_GSO_BYTES, MAX_GSO_SEGMENTS } from './udp-gso-sender.js';
export { RECEIVE_SLOT_BYTES } from './udp-gro-receiver.js';

export const DEFAULT_BUFFER_BYTES = 4 << 20;
export const DEFAULT_RECEIVE_BATCH = 16;

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
export { EINTR, EIO, EINVAL } from './udp-gso-sender.js';
export const EBADF = 9;
export const EAGAIN = 11;
export const EMSGSIZE = 90;
export const EADDRINUSE = 98;

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
  };
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

export class UdpEndpoint {
  readonly address: string;
  readonly port: number;

  private fd: number;
  private watch: FdWatch | null = null;
  private readonly gro: boolean;
  private readonly c: EndpointLibc;
  private readonly counters = { gsoFallbacks: 0, sent: 0, sendErrors: 0, received: 0, groMessages: 0, oddCmsgs: 0 };
  private readonly receiver: GroReceiver;
  private readonly sender: GsoSender;
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
    this.gro = gro;
    this.receiver = new GroReceiver(c, batch, this.counters);
    this.sender = new GsoSender(c, () => this.fd, gso, this.counters);
    this.probeName.writeUInt16LE(AF_INET, 0);
  }

  /** Drains up to `batch` messages with one non-blocking recvmmsg; returns how many (0: none, closed, or an error). */
  receive(): number {
    return this.fd < 0 ? 0 : this.receiver.receive(this.fd);
  }

  /** Message i's bytes (a GRO message holds several datagrams back to back); valid until the next receive(). */
  data(i: number): Buffer {
    return this.receiver.data(i);
  }

  /** The UDP_GRO gso_size of message i, or 0 when it is one datagram (or its cmsg was odd). */
  segmentSize(i: number): number {
    return this.receiver.segmentSize(i);
  }

  /** Source IPv4 of message i as a u32 (0 if not IPv4). */
  sourceIp(i: number): number {
    return this.receiver.sourceIp(i);
  }

  sourcePort(i: number): number {
    return this.receiver.sourcePort(i);
  }

  /**
   * Queues one train: datagrams of `segmentBytes` back to back in buf[offset, offset + length)
   * (the last may be shorter), all to ip:port. The bytes must stay untouched until flush().
   */
  queue(buf: Uint8Array, offset: number, length: number, segmentBytes: number, ip: number, port: number): void {
    this.sender.queue(buf, offset, length, segmentBytes, ip, port);
  }

  /**
   * Sends everything queued with as few sendmmsg calls as possible. Returns the number of
   * datagrams that could not be sent; errors go to onSendError once per train.
   */
  flush(): number {
    return this.sender.flush(this.fd);
  }

  /** Per-train send errors (EMSGSIZE: the path MTU shrank; EAGAIN: the socket buffer was full). */
  get onSendError(): SendErrorListener | null {
    return this.sender.onSendError;
  }

  set onSendError(listener: SendErrorListener | null) {
    this.sender.onSendError = listener;
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
    return { gso: this.sender.gso, gro: this.gro, ...this.counters };
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
    this.receiver.reset();
  }


}

/** sockaddr_in for a u32 address; the family is written too. */
function writeSockaddrIn(out: Buffer, offset: number, ip: number, port: number): void {
  out.writeUInt16LE(AF_INET, offset);
  out.writeUInt16BE(port, offset + 2);
  out.writeUInt32BE(ip >>> 0, offset + 4);
  out.fill(0, offset + 8, offset + 16);
}
