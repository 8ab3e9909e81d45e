/**
 * Batched UDP I/O for a bound Node dgram socket: recvmmsg to read every datagram waiting in the
 * socket's queue with one syscall, sendmmsg to send the replies with one more. Node 20's dgram
 * has neither (one libuv callback, `rinfo` object and send request per datagram).
 *
 * How it is driven (why no thread): the dgram socket stays the owner of the fd and of its
 * readiness; libuv reads the first datagram and emits 'message' as usual. The handler then
 * calls `receive()`, which drains the rest of the queue *without blocking* (MSG_DONTWAIT) on
 * the same fd, on the main thread. A lone query is therefore answered at once (the drain finds
 * nothing and costs one syscall), there is no worker thread to wake or hand results back from
 * (a blocking recvmmsg on koffi's thread pool costs two thread hand-offs per batch, which on a
 * loaded 2-vCPU machine showed in p99), and stop() is just closing the dgram socket: nothing is
 * ever blocked in the kernel.
 *
 * Ownership: one UdpBatch per socket, used only synchronously from that socket's 'message'
 * handler. Datagram views from `datagram(i)` and source addresses are valid until the next
 * `receive()`. Replies are copied into fixed send slots (`replySlot`) and go out at `flush()`,
 * which must run before the next `receive()` (it reuses the source addresses).
 *
 * Needs koffi and glibc (Linux, 64-bit: the struct layouts below are LP64). `openUdpBatch`
 * returns a reason instead of a batch when anything is missing; callers fall back to dgram.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import type { MmsgCalls } from './libc.js';

/** Datagrams per recvmmsg / sendmmsg. */
export const DEFAULT_BATCH_CAPACITY = 64;
/** Bytes kept per received datagram; a longer one is reported `truncated`. */
export const DEFAULT_SLOT_BYTES = 4096;

// Struct layouts for recvmmsg / sendmmsg, shared with udp-endpoint.ts (here rather than in libc.ts
// so that this module still loads, and reports a reason, without koffi). LP64 glibc (x86_64,
// arm64): pointers and size_t are 8 bytes.
// struct msghdr: name ptr @0, namelen u32 @8, iov ptr @16, iovlen u64 @24, control ptr @32,
// controllen u64 @40, flags i32 @48 (56 bytes); struct mmsghdr adds msg_len u32 @56 (64 bytes).
// struct iovec: base ptr @0, len u64 @8. struct cmsghdr: len u64 @0, level i32 @8, type i32 @12,
// data @16 (CMSG_ALIGN is 8).

export const MMSGHDR_BYTES = 64;
export const MSG_NAME = 0;
export const MSG_NAMELEN = 8;
export const MSG_IOV = 16;
export const MSG_IOVLEN = 24;
export const MSG_CONTROL = 32;
export const MSG_CONTROLLEN = 40;
export const MSG_FLAGS = 48;
export const MMSG_LEN = 56;
export const IOVEC_BYTES = 16;
export const CMSG_HEADER_BYTES = 16;
export const SOCKADDR_IN_BYTES = 16;

export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_CTRUNC = 0x08;

/** CMSG_SPACE(n): a control message of n data bytes with its padding. */
export function cmsgSpace(dataBytes: number): number {
  return CMSG_HEADER_BYTES + ((dataBytes + 7) & ~7);
}

/** Writes a 64-bit pointer (an address below 2^53, as addresses are in user space). */
export function writePointer(buffer: Buffer, offset: number, address: number): void {
  buffer.writeUInt32LE(address % 0x1_0000_0000, offset);
  buffer.writeUInt32LE(Math.floor(address / 0x1_0000_0000), offset + 4);
}

export function isLp64Linux(): boolean {
  return process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64');
}

/** Datagram views kept per receive slot, one per length seen (see UdpBatch.datagram). */
const VIEWS_PER_SLOT = 16;
const AF_INET = 2;
const AF_INET6 = 10;
const MMSG = MMSGHDR_BYTES;
const IOVEC = IOVEC_BYTES;
const MSG_LEN = MMSG_LEN;
/** sockaddr_in6 is 28 bytes; a slot of 32 holds either family. */
const NAME_BYTES = 28;
const NAME_SLOT = 32;

type BatchLibc = Pick<MmsgCalls, 'recvmmsg' | 'sendmmsg' | 'addressOf'>;

/**
 * Where a reply's time in the server went, for benchmarks (bench/dns): the replies each `flush()`
 * sent for datagrams read by `receive()`, in microseconds. `waitUs[k]`: from the kernel's receive
 * timestamp (SO_TIMESTAMPNS, taken when the datagram reached the socket) to the recvmmsg call
 * that read it: the wake-up, and any queueing behind other work of the thread. `serviceUs[k]`:
 * from that call to the return of the sendmmsg that sent the reply. Called synchronously inside
 * `flush()` with `count` entries; the arrays belong to the batch and are reused (no numbers are
 * boxed per reply: that would be garbage, and garbage collections are the tail this measures).
 */
export interface UdpTimingSink {
  record(waitUs: Float64Array, serviceUs: Float64Array, count: number): void;
}

export interface UdpBatchOptions {
  /** Off by default: costs a setsockopt once, then two clock reads per receive/flush and 32 bytes of control data per datagram. */
  timing?: UdpTimingSink;
}

const SOL_SOCKET = 1;
/** SO_TIMESTAMPNS_OLD: timespec in the control data, struct timespec of 64-bit fields on LP64. */
const SO_TIMESTAMPNS = 35;
const SCM_TIMESTAMPNS = SO_TIMESTAMPNS;
const CLOCK_REALTIME = 0;
/** cmsgSpace(16): one cmsghdr with a 16-byte timespec. */
const TIMESTAMP_CONTROL = 32;

interface TimingCalls {
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  clockGettime(clock: number, out: Buffer): number;
}

/** The receive timestamps and clock of a timed batch (see UdpTimingSink). */
class BatchTiming {
  /** Whole seconds subtracted from every time, so microseconds stay exact in a double. */
  private readonly baseSeconds: number;
  private readonly now = Buffer.alloc(16);
  /** Kernel receive time of datagram i of the last receive, µs since baseSeconds (NaN: none). */
  readonly receivedUs: Float64Array;
  /** When the last receive() call started. */
  readUs = 0;
  /** Per queued reply: its datagram's receive time and the read time of the call that read it. */
  readonly replyReceivedUs: Float64Array;
  readonly replyReadUs: Float64Array;
  /** What the sink is handed per flush. */
  readonly waitUs: Float64Array;
  readonly serviceUs: Float64Array;

  constructor(
    private readonly calls: TimingCalls,
    readonly sink: UdpTimingSink,
    capacity: number,
    sendCapacity: number,
  ) {
    calls.clockGettime(CLOCK_REALTIME, this.now);
    this.baseSeconds = this.now.readUInt32LE(0);
    this.receivedUs = new Float64Array(capacity).fill(NaN);
    this.replyReceivedUs = new Float64Array(sendCapacity).fill(NaN);
    this.replyReadUs = new Float64Array(sendCapacity).fill(NaN);
    this.waitUs = new Float64Array(sendCapacity);
    this.serviceUs = new Float64Array(sendCapacity);
  }

  /** The realtime clock now, µs since baseSeconds. */
  clockUs(): number {
    this.calls.clockGettime(CLOCK_REALTIME, this.now);
    return this.timespecUs(this.now, 0);
  }

  /** A struct timespec (LP64) at `offset`, µs since baseSeconds (seconds below 2^32: until 2106). */
  timespecUs(buffer: Buffer, offset: number): number {
    return (buffer.readUInt32LE(offset) - this.baseSeconds) * 1e6 + buffer.readUInt32LE(offset + 8) / 1e3;
  }
}

let timingCalls: TimingCalls | null = null;
async function loadTimingCalls(): Promise<TimingCalls> {
  if (timingCalls) return timingCalls;
  const { libc } = await import('./libc.js');
  const lib = libc();
  timingCalls = { setsockopt: lib.func('int setsockopt(int, int, int, void *, unsigned int)'), clockGettime: lib.func('int clock_gettime(int, void *)') };
  return timingCalls;
}

let libcPromise: Promise<BatchLibc | string> | null = null;

/** libc's recvmmsg/sendmmsg through koffi, loaded once; a reason string when unavailable. */
function loadLibc(): Promise<BatchLibc | string> {
  libcPromise ??= (async () => {
    if (!isLp64Linux()) return `unsupported platform ${process.platform}/${process.arch}`;
    try {
      return (await import('./libc.js')).mmsgCalls();
    } catch (err) {
      return `koffi/libc unavailable: ${(err as Error).message}`;
    }
  })();
  return libcPromise;
}

/**
 * The fd of a bound dgram socket. Node 20 keeps its handle under a private "state symbol" (the
 * public `_handle` getter is deprecated and warns); null if that ever changes.
 */
export function dgramSocketFd(socket: UdpSocket): number | null {
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    if (symbol.description !== 'state symbol') continue;
    const state = (socket as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[symbol];
    const fd = state?.handle?.fd;
    return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
  }
  return null;
}

/** The handle behind a dgram socket (Node 20's private state), or null if that ever changes. */
function dgramHandle(socket: UdpSocket): { fd?: unknown; recvStop?: unknown } | null {
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    if (symbol.description !== 'state symbol') continue;
    const state = (socket as unknown as Record<symbol, { handle?: { fd?: unknown; recvStop?: unknown } } | undefined>)[symbol];
    return state?.handle ?? null;
  }
  return null;
}

/**
 * Takes reading over from libuv: stops the dgram socket's own reads (no more 'message' events,
 * so no Buffer, `rinfo` and receive allocation per datagram) and calls `onReadable` on the main
 * thread whenever datagrams wait (os/fd-watch.ts, level-triggered: it must drain with
 * `UdpBatch.receive` until fewer than `capacity` come back). The socket still sends and closes
 * as usual; close the returned watch before the socket. A reason string when it cannot (the
 * caller keeps libuv's reads and the 'message' path).
 */
export async function watchInsteadOfDgram(socket: UdpSocket, onReadable: () => void): Promise<{ watch: { close(): void } } | { unavailable: string }> {
  const handle = dgramHandle(socket);
  const fd = handle?.fd;
  if (handle === null || typeof fd !== 'number' || typeof handle.recvStop !== 'function') return { unavailable: 'no handle on the dgram socket (Node internals changed?)' };
  let watch: { close(): void };
  try {
    const { watchReadable } = await import('./fd-watch.js');
    watch = watchReadable(fd, onReadable);
  } catch (err) {
    return { unavailable: `cannot watch the socket: ${(err as Error).message}` };
  }
  // Only now: if the watch could not be made, libuv keeps reading.
  const stopped = (handle.recvStop as () => number).call(handle);
  if (stopped !== 0) {
    watch.close();
    return { unavailable: `recvStop failed (libuv error ${stopped})` };
  }
  return { watch };
}

export interface UdpSource {
  address: string;
  port: number;
}

export interface UdpBatchStats {
  /** recvmmsg calls that returned at least one datagram. */
  receives: number;
  /** Datagrams read by recvmmsg (not counting the ones libuv read). */
  received: number;
  /** sendmmsg calls. */
  flushes: number;
  /** Replies sent by sendmmsg. */
  sent: number;
  /** Replies the kernel refused (dropped, as a failed dgram send would be). */
  sendErrors: number;
}

export class UdpBatch {
  readonly capacity: number;
  readonly slotBytes: number;
  readonly stats: UdpBatchStats = { receives: 0, received: 0, flushes: 0, sent: 0, sendErrors: 0 };
  private readonly recvHeaders: Buffer;
  private readonly recvNames: Buffer;
  private readonly recvData: Buffer;
  private readonly sendHeaders: Buffer;
  private readonly sendNames: Buffer;
  private readonly sendIovecs: Buffer;
  /** One view per send slot, fixed: `replySlot()` hands out the next free one. */
  private readonly sendSlots: Buffer[];
  private received = 0;
  private queued = 0;
  /** Datagram views by slot and length (see `datagram`). */
  private readonly views: Array<Map<number, Buffer>>;
  /** Control data (receive timestamps) per receive slot; empty unless timed. */
  private readonly recvControl: Buffer;
  private readonly timing: BatchTiming | null;

  /** Use `openUdpBatch`. */
  constructor(
    private readonly libc: BatchLibc,
    private readonly fd: number,
    capacity: number,
    slotBytes: number,
    timing: { calls: TimingCalls; sink: UdpTimingSink } | null = null,
  ) {
    this.capacity = capacity;
    this.slotBytes = slotBytes;
    // Send side has one extra slot: room for the datagram libuv read beside a full round.
    const sendCapacity = capacity + 1;
    const controlBytes = timing === null ? 0 : TIMESTAMP_CONTROL;
    const sizes = [capacity * MMSG, capacity * IOVEC, capacity * NAME_SLOT, capacity * slotBytes, sendCapacity * MMSG, sendCapacity * IOVEC, sendCapacity * NAME_SLOT, sendCapacity * slotBytes, capacity * controlBytes];
    // One allocation of its own (never from Buffer's pool): its bytes never move while referenced.
    const memory = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
    const base = Number(libc.addressOf(memory, 0, 0));
    // Pointers and size_t fields in the headers need 8-byte alignment (malloc gives 16).
    if (!Number.isSafeInteger(base) || base === 0 || base % 8 !== 0) throw new RangeError(`unusable buffer address ${base}`);
    let offset = 0;
    const region = (size: number): { view: Buffer; at: number } => {
      const r = { view: memory.subarray(offset, offset + size), at: base + offset };
      offset += size;
      return r;
    };
    const rh = region(sizes[0]!);
    const riov = region(sizes[1]!);
    const rn = region(sizes[2]!);
    const rd = region(sizes[3]!);
    const sh = region(sizes[4]!);
    const siov = region(sizes[5]!);
    const sn = region(sizes[6]!);
    const sd = region(sizes[7]!);
    const rc = region(sizes[8]!);
    layout(rh.view, riov.view, riov.at, rn.at, rd.at, capacity, slotBytes);
    for (let i = 0; i < capacity && controlBytes > 0; i++) {
      writePointer(rh.view, i * MMSG + MSG_CONTROL, rc.at + i * controlBytes);
      rh.view.writeUInt32LE(controlBytes, i * MMSG + MSG_CONTROLLEN);
    }
    layout(sh.view, siov.view, siov.at, sn.at, sd.at, sendCapacity, slotBytes);
    for (let i = 0; i < capacity; i++) rh.view.writeUInt32LE(NAME_BYTES, i * MMSG + MSG_NAMELEN);
    this.recvHeaders = rh.view;
    this.recvNames = rn.view;
    this.recvData = rd.view;
    this.sendHeaders = sh.view;
    this.sendNames = sn.view;
    this.sendIovecs = siov.view;
    this.sendSlots = Array.from({ length: sendCapacity }, (_, k) => sd.view.subarray(k * slotBytes, (k + 1) * slotBytes));
    this.views = Array.from({ length: capacity }, () => new Map<number, Buffer>());
    this.recvControl = rc.view;
    this.timing = timing === null ? null : new BatchTiming(timing.calls, timing.sink, capacity, sendCapacity);
  }

  /**
   * Reads up to `capacity` waiting datagrams without blocking; returns how many (0 when none or
   * on error). Invalidates the previous datagrams' views and sources. Call `flush()` first.
   */
  receive(): number {
    const headers = this.recvHeaders;
    // The kernel wrote the actual address lengths over the last batch's; restore the room.
    for (let i = 0; i < this.received; i++) headers.writeUInt32LE(NAME_BYTES, i * MMSG + MSG_NAMELEN);
    const timing = this.timing;
    if (timing !== null) {
      // ... and the control room, which the kernel also shrinks to what it wrote.
      for (let i = 0; i < this.received; i++) headers.writeUInt32LE(TIMESTAMP_CONTROL, i * MMSG + MSG_CONTROLLEN);
      timing.readUs = timing.clockUs();
    }
    const n = this.libc.recvmmsg(this.fd, headers, this.capacity, MSG_DONTWAIT, null);
    this.received = n > 0 ? n : 0;
    if (n > 0) {
      this.stats.receives++;
      this.stats.received += n;
      if (timing !== null) for (let i = 0; i < n; i++) timing.receivedUs[i] = this.receiveStamp(timing, i);
    }
    return this.received;
  }

  /** Datagram i's SO_TIMESTAMPNS time (µs since the timing base), NaN when the kernel gave none. */
  private receiveStamp(timing: BatchTiming, i: number): number {
    const control = this.recvControl;
    const at = i * TIMESTAMP_CONTROL;
    if (this.recvHeaders.readUInt32LE(i * MMSG + MSG_CONTROLLEN) < TIMESTAMP_CONTROL) return NaN;
    if (control.readInt32LE(at + 8) !== SOL_SOCKET || control.readInt32LE(at + 12) !== SCM_TIMESTAMPNS) return NaN;
    return timing.timespecUs(control, at + CMSG_HEADER_BYTES);
  }

  /** A view of datagram `i` of the last receive (at most `slotBytes` long). */
  datagram(i: number): Buffer {
    const length = Math.min(this.recvHeaders.readUInt32LE(i * MMSG + MSG_LEN), this.slotBytes);
    // A view per slot and length, made once: repeated questions have a handful of lengths, and a
    // fresh subarray per datagram was a third of the garbage at 10,000 q/s (young-generation
    // collections pause every query: the tail). Bounded per slot; past that, a fresh view.
    const views = this.views[i]!;
    let view = views.get(length);
    if (view === undefined) {
      view = this.recvData.subarray(i * this.slotBytes, i * this.slotBytes + length);
      if (views.size < VIEWS_PER_SLOT) views.set(length, view);
    }
    return view;
  }

  /** True when datagram `i` was longer than `slotBytes` and its tail was cut off. */
  truncated(i: number): boolean {
    return (this.recvHeaders.readInt32LE(i * MMSG + MSG_FLAGS) & MSG_TRUNC) !== 0;
  }

  /** Where datagram `i` came from, as dgram would say it (for replies sent later). */
  source(i: number): UdpSource | null {
    return decodeSockaddr(this.recvNames, i * NAME_SLOT);
  }

  /** True while another reply can be queued before `flush()`. */
  get full(): boolean {
    return this.queued >= this.sendSlots.length;
  }

  /** The bytes the next queued reply is written into (`slotBytes` long). Check `full` first. */
  replySlot(): Buffer {
    return this.sendSlots[this.queued]!;
  }

  /** Queues the reply written into `replySlot()` (its first `length` bytes) to datagram `i`'s source. */
  queueReply(length: number, i: number): void {
    const k = this.queued++;
    // A byte loop: Buffer#copy makes a subarray per call (garbage per reply).
    const names = this.recvNames;
    const out = this.sendNames;
    for (let b = 0, from = i * NAME_SLOT, to = k * NAME_SLOT; b < NAME_SLOT; b++) out[to + b] = names[from + b]!;
    this.sendHeaders.writeUInt32LE(this.recvHeaders.readUInt32LE(i * MMSG + MSG_NAMELEN), k * MMSG + MSG_NAMELEN);
    this.setLength(k, length);
    const timing = this.timing;
    if (timing !== null) {
      timing.replyReceivedUs[k] = timing.receivedUs[i]!;
      timing.replyReadUs[k] = timing.readUs;
    }
  }

  /**
   * Queues the reply written into `replySlot()` to an IPv4 source given as dgram gives it
   * (`rinfo`). Returns false, queuing nothing, for other address forms (the caller sends it).
   */
  queueReplyTo(length: number, address: string, port: number): boolean {
    const k = this.queued;
    if (!encodeSockaddrIn(this.sendNames, k * NAME_SLOT, address, port)) return false;
    this.queued++;
    this.sendHeaders.writeUInt32LE(16, k * MMSG + MSG_NAMELEN);
    this.setLength(k, length);
    // Read by libuv: no receive timestamp of ours.
    if (this.timing !== null) this.timing.replyReceivedUs[k] = NaN;
    return true;
  }

  /** Sends every queued reply (sendmmsg, MSG_DONTWAIT); a reply the kernel refuses is dropped. */
  flush(): void {
    const count = this.queued;
    this.queued = 0;
    if (count === 0) return;
    this.stats.flushes++;
    let at = 0;
    // Each call sends from `at` until the first failure; skip that one and go on (bounded: at
    // least one reply is sent or dropped per call).
    while (at < count) {
      const n = this.libc.sendmmsg(this.fd, at === 0 ? this.sendHeaders : this.sendHeaders.subarray(at * MMSG), count - at, MSG_DONTWAIT);
      if (n > 0) {
        this.stats.sent += n;
        at += n;
      } else {
        this.stats.sendErrors++;
        at++;
      }
    }
    if (this.timing !== null) this.recordTimes(this.timing, count);
  }

  /** Hands the sink each of the `count` replies just sent (a refused one too: it was served). */
  private recordTimes(timing: BatchTiming, count: number): void {
    const sentUs = timing.clockUs();
    let n = 0;
    for (let k = 0; k < count; k++) {
      const received = timing.replyReceivedUs[k]!;
      if (Number.isNaN(received)) continue;
      const read = timing.replyReadUs[k]!;
      timing.waitUs[n] = read - received;
      timing.serviceUs[n++] = sentUs - read;
    }
    if (n > 0) timing.sink.record(timing.waitUs, timing.serviceUs, n);
  }

  private setLength(k: number, length: number): void {
    if (length > this.slotBytes) throw new RangeError(`reply of ${length} bytes exceeds the ${this.slotBytes}-byte slot`);
    this.sendIovecs.writeUInt32LE(length, k * IOVEC + 8);
  }
}

/** Points header i at iovec i, name slot i and data slot i (addresses, not offsets: the kernel reads them). */
function layout(headers: Buffer, iovecs: Buffer, iovAt: number, namesAt: number, dataAt: number, count: number, slotBytes: number): void {
  pointHeaders(headers, count, namesAt, NAME_SLOT, NAME_BYTES, iovAt);
  pointIovecs(iovecs, count, dataAt, slotBytes);
}

/**
 * The fixed part of `count` mmsghdrs: message i's name is the `nameSlot`-byte slot i at `namesAt`
 * (`nameBytes` long) and its one iovec is iovec i at `iovecsAt` (addresses: the kernel reads them).
 */
export function pointHeaders(headers: Buffer, count: number, namesAt: number, nameSlot: number, nameBytes: number, iovecsAt: number): void {
  for (let i = 0; i < count; i++) {
    const h = i * MMSG;
    writePointer(headers, h + MSG_NAME, namesAt + i * nameSlot);
    headers.writeUInt32LE(nameBytes, h + MSG_NAMELEN);
    writePointer(headers, h + MSG_IOV, iovecsAt + i * IOVEC);
    headers.writeUInt32LE(1, h + MSG_IOVLEN);
  }
}

/** Points iovec i at the `slotBytes`-byte data slot i at `dataAt`, with that length. */
export function pointIovecs(iovecs: Buffer, count: number, dataAt: number, slotBytes: number): void {
  for (let i = 0; i < count; i++) {
    writePointer(iovecs, i * IOVEC, dataAt + i * slotBytes);
    iovecs.writeUInt32LE(slotBytes, i * IOVEC + 8);
  }
}

/** Writes sockaddr_in for a dotted-quad `address`; false for anything else. */
export function encodeSockaddrIn(out: Buffer, offset: number, address: string, port: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= address.length; i++) {
    const c = i < address.length ? address.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || value > 255 || part > 3) return false;
      out[offset + 4 + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      value = value * 10 + (c - 0x30);
      digits++;
    } else return false;
  }
  if (part !== 4 || !Number.isInteger(port) || port < 0 || port > 0xffff) return false;
  out.writeUInt16LE(AF_INET, offset);
  out.writeUInt16BE(port, offset + 2);
  out.fill(0, offset + 8, offset + 16);
  return true;
}

/** A sockaddr_in / sockaddr_in6 as dgram's rinfo would give it; null for other families. */
export function decodeSockaddr(buffer: Buffer, offset: number): UdpSource | null {
  const family = buffer.readUInt16LE(offset);
  const port = buffer.readUInt16BE(offset + 2);
  if (family === AF_INET) return { address: `${buffer[offset + 4]}.${buffer[offset + 5]}.${buffer[offset + 6]}.${buffer[offset + 7]}`, port };
  if (family !== AF_INET6) return null;
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) groups.push(buffer.readUInt16BE(offset + 8 + 2 * g).toString(16));
  // Long form is valid for dgram's send; a v4-mapped address keeps its dotted tail.
  const mapped = groups.slice(0, 5).every((x) => x === '0') && groups[5] === 'ffff';
  const text = mapped ? `::ffff:${buffer[offset + 20]}.${buffer[offset + 21]}.${buffer[offset + 22]}.${buffer[offset + 23]}` : groups.join(':');
  const scope = buffer.readUInt32LE(offset + 24);
  return { address: scope === 0 || mapped ? text : `${text}%${scope}`, port };
}

export type UdpBatchOpening = { batch: UdpBatch } | { unavailable: string };

/** A UdpBatch on a *bound* dgram socket, or why there cannot be one (then use dgram alone). */
export async function openUdpBatch(socket: UdpSocket, capacity = DEFAULT_BATCH_CAPACITY, slotBytes = DEFAULT_SLOT_BYTES, options: UdpBatchOptions = {}): Promise<UdpBatchOpening> {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1024) throw new RangeError('batch capacity must be 1..1024');
  if (!Number.isInteger(slotBytes) || slotBytes < 512 || slotBytes > 65536) throw new RangeError('slot size must be 512..65536');
  const libc = await loadLibc();
  if (typeof libc === 'string') return { unavailable: libc };
  const fd = dgramSocketFd(socket);
  if (fd === null) return { unavailable: 'no fd on the dgram socket (Node internals changed?)' };
  try {
    let timing: { calls: TimingCalls; sink: UdpTimingSink } | null = null;
    if (options.timing !== undefined) {
      const calls = await loadTimingCalls();
      const one = Buffer.alloc(4);
      one.writeInt32LE(1, 0);
      if (calls.setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, one, 4) !== 0) return { unavailable: 'setsockopt SO_TIMESTAMPNS failed' };
      timing = { calls, sink: options.timing };
    }
    return { batch: new UdpBatch(libc, fd, capacity, slotBytes, timing) };
  } catch (err) {
    return { unavailable: (err as Error).message };
  }
}
