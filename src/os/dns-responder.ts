/**
 * The DNS server's native responder (native/loom-dns.c, built by scripts/build-native.mjs into
 * dist/bin/libloom-dns.so) through koffi: a thread blocked in recvmmsg on the DNS UDP socket
 * that answers what the JS answer cache would answer from a current entry, and passes every
 * other datagram to the main thread through a ring and an eventfd (docs/DNS.md).
 *
 * Two objects:
 * - `NativeAnswerTable`: the table of encoded answers the thread answers from. JS fills it
 *   (`put`) and empties it (`clear`) under the library's mutex; both are short and synchronous.
 *   Usable without a thread (`answer`, for tests: the same code the thread runs).
 * - `NativeDnsResponder`: the thread on a bound dgram socket. It stops libuv's reads on the
 *   socket (the thread reads it, blocking) and makes the socket blocking; replies from JS go out
 *   through `send` (non-blocking sendto), never through dgram's send. `takePassed` moves what
 *   the thread passed on into fixed buffers; views are valid until the next `takePassed`.
 *   `close` stops and joins the thread (within ms: shutdown(SHUT_RD) wakes it) before the socket
 *   is closed by its owner; idempotent.
 *
 * Loading never throws: `nativeDnsLibrary()` gives a reason string when the library or koffi is
 * missing, and the server stays on its JS path.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLp64Linux } from './udp-batch.js';

const LIBRARY = 'libloom-dns.so';

/** Counters of the native side, cumulative since the table was made (C: enum ST_*). */
export interface NativeResponderStats {
  /** Replies the thread sent from the table. */
  answered: number;
  nxdomain: number;
  /** Datagrams passed to JS. */
  passed: number;
  /** Datagrams dropped because the ring to JS was full when the thread was told to stop. */
  ringDrops: number;
  /** recvmmsg calls that returned datagrams, and the datagrams. */
  receives: number;
  received: number;
  /** sendmmsg calls, replies sent, replies refused by the kernel. */
  flushes: number;
  sent: number;
  sendErrors: number;
  puts: number;
  /** Puts that found the table full and emptied it first. */
  tableResets: number;
  recvErrors: number;
  /** Times the thread found the ring to JS full and waited for JS to take (reading nothing meanwhile). */
  ringWaits: number;
  /** Answered per question type: index = type number for 0..255, 256 for any larger. */
  answeredByType: Float64Array;
}

const STAT_NAMES = ['answered', 'nxdomain', 'passed', 'ringDrops', 'receives', 'received', 'flushes', 'sent', 'sendErrors', 'puts', 'tableResets', 'recvErrors', 'ringWaits'] as const;
const QTYPE_BUCKETS = 257;

/** An opaque pointer (koffi external) to the native state. */
type Handle = object;
interface Library {
  create(maxEntries: number, arenaBytes: number): Handle | null;
  seed(h: Handle, hi: number, lo: number): void;
  clear(h: Handle, generation: number): void;
  put(h: Handle, generation: number, key: Buffer, keyLength: number, template: Buffer, templateLength: number, names: Uint16Array, nameCount: number, addresses: Uint16Array, addressCount: number, rcode: number): number;
  answer(h: Handle, raw: Uint8Array, length: number, out: Uint8Array, capacity: number): number;
  start(h: Handle, fd: number): number;
  eventFd(h: Handle): number;
  recordBytes(): number;
  take(h: Handle, out: Buffer, max: number): number;
  send(h: Handle, reply: Uint8Array, length: number, name: Uint8Array, nameLength: number): number;
  stats(h: Handle, out: Buffer, n: number): number;
  stop(h: Handle): number;
  destroy(h: Handle): void;
}

let library: Promise<Library | string> | null = null;

/**
 * Where the library is: the first `bin/` or `dist/bin/` holding it, walking up from this module
 * (dist/src/os when compiled, src/os under tsx, dist/src/daemon inside the daemon bundle).
 */
function libraryPath(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    for (const candidate of [join(dir, 'bin', LIBRARY), join(dir, 'dist', 'bin', LIBRARY)]) if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return null;
}

/** The library, loaded once; a reason string when it cannot be (no build, no koffi, another platform). */
export function nativeDnsLibrary(): Promise<Library | string> {
  library ??= (async (): Promise<Library | string> => {
    if (!isLp64Linux()) return `unsupported platform ${process.platform}/${process.arch}`;
    const path = libraryPath();
    if (path === null) return `${LIBRARY} not built (scripts/build-native.mjs needs gcc)`;
    try {
      const koffi = (await import('koffi')).default;
      const lib = koffi.load(path);
      const loaded: Library = {
        create: lib.func('void *loom_dns_create(uint32_t, uint32_t)'),
        seed: lib.func('void loom_dns_seed(void *, uint32_t, uint32_t)'),
        clear: lib.func('void loom_dns_clear(void *, uint32_t)'),
        put: lib.func('int loom_dns_put(void *, uint32_t, void *, uint32_t, void *, uint32_t, void *, uint32_t, void *, uint32_t, uint32_t)'),
        answer: lib.func('int loom_dns_answer(void *, void *, uint32_t, void *, uint32_t)'),
        start: lib.func('int loom_dns_start(void *, int)'),
        eventFd: lib.func('int loom_dns_event_fd(void *)'),
        recordBytes: lib.func('int loom_dns_record_bytes()'),
        take: lib.func('int loom_dns_take(void *, void *, uint32_t)'),
        send: lib.func('int loom_dns_send(void *, void *, uint32_t, void *, uint32_t)'),
        stats: lib.func('int loom_dns_stats(void *, void *, uint32_t)'),
        stop: lib.func('int loom_dns_stop(void *)'),
        destroy: lib.func('void loom_dns_destroy(void *)'),
      };
      return loaded;
    } catch (err) {
      return `cannot load ${path}: ${(err as Error).message}`;
    }
  })();
  return library;
}

export interface NativeTableOptions {
  /** Entries before the table empties itself to take a new one. Default 8192. */
  maxEntries?: number;
  /** Bytes for keys, templates and offsets. Default 4 MiB. */
  arenaBytes?: number;
}

/** put's outcome (C: loom_dns_put). */
export type PutOutcome = 'stored' | 'present' | 'refused';

/** The table of encoded answers; see the module header. Owns native memory until `destroy`. */
export class NativeAnswerTable {
  protected handle: Handle | null;
  private readonly statsBuffer = Buffer.alloc(8 * (STAT_NAMES.length + QTYPE_BUCKETS));

  protected constructor(
    protected readonly lib: Library,
    handle: Handle,
  ) {
    this.handle = handle;
  }

  /** A table of its own, or a reason string. */
  static async create(options: NativeTableOptions = {}): Promise<NativeAnswerTable | string> {
    const lib = await nativeDnsLibrary();
    if (typeof lib === 'string') return lib;
    const handle = lib.create(options.maxEntries ?? 8192, options.arenaBytes ?? 4 * 1024 * 1024);
    return handle === null ? 'loom_dns_create failed (out of memory or bad sizes)' : new NativeAnswerTable(lib, handle);
  }

  /** Empties the table; puts must carry `generation` from now on. */
  clear(generation: number): void {
    if (this.handle !== null) this.lib.clear(this.handle, generation >>> 0);
  }

  /**
   * Stores an answer: `key` as peekQuestion makes it (latin1 bytes), the full template, where each
   * answer's owner name and each shuffled A address starts, its rcode. Refused for another
   * generation than the last clear's, or offsets outside the template.
   */
  put(generation: number, key: Buffer, template: Buffer, nameOffsets: Uint16Array, addressOffsets: Uint16Array, rcode: number): PutOutcome {
    if (this.handle === null) return 'refused';
    const r = this.lib.put(this.handle, generation >>> 0, key, key.length, template, template.length, nameOffsets, nameOffsets.length, addressOffsets, addressOffsets.length, rcode);
    return r === 1 ? 'stored' : r === 2 ? 'present' : 'refused';
  }

  /** The reply the thread would send to `raw`, written into `out`; 0 when it would pass it to JS. Not while a thread runs. */
  answer(raw: Uint8Array, out: Uint8Array): number {
    return this.handle === null ? 0 : this.lib.answer(this.handle, raw, raw.length, out, out.length);
  }

  /** Sets the round-robin order's state (splitmix64), for tests comparing orders. Not while a thread runs. */
  seed(hi: number, lo: number): void {
    if (this.handle !== null) this.lib.seed(this.handle, hi >>> 0, lo >>> 0);
  }

  stats(): NativeResponderStats {
    const out = { answeredByType: new Float64Array(QTYPE_BUCKETS) } as NativeResponderStats;
    for (const name of STAT_NAMES) out[name] = 0;
    if (this.handle === null) return out;
    this.lib.stats(this.handle, this.statsBuffer, STAT_NAMES.length + QTYPE_BUCKETS);
    STAT_NAMES.forEach((name, i) => (out[name] = Number(this.statsBuffer.readBigUInt64LE(8 * i))));
    for (let t = 0; t < QTYPE_BUCKETS; t++) out.answeredByType[t] = Number(this.statsBuffer.readBigUInt64LE(8 * (STAT_NAMES.length + t)));
    return out;
  }

  /** Frees the native side (stops a thread first). Idempotent; every call after it does nothing. */
  destroy(): void {
    const handle = this.handle;
    this.handle = null;
    if (handle !== null) this.lib.destroy(handle);
  }
}

/** Records moved per `takePassed`. */
const TAKE_BATCH = 64;
const REC_LENGTH = 0;
const REC_TRUNCATED = 4;
const REC_NAME_LENGTH = 5;
const REC_NAME = 8;
const REC_DATA = 36;

/** The thread on a socket; see the module header. */
export class NativeDnsResponder extends NativeAnswerTable {
  private readonly records: Buffer;
  private readonly stride: number;
  private watch: { close(): void } | null = null;
  private running = false;

  private constructor(lib: Library, handle: Handle) {
    super(lib, handle);
    this.stride = lib.recordBytes();
    this.records = Buffer.alloc(this.stride * TAKE_BATCH);
  }

  /**
   * Starts the thread on `socket` (bound; its reading is taken from libuv) and calls `onPassed`
   * on the main thread whenever it passed datagrams on (drain them with `takePassed` until it
   * returns fewer than `TAKE_BATCH`... or 0). A reason string when it cannot: then the socket
   * is as it was (libuv reading), nothing is left running.
   */
  static async start(socket: UdpSocket, onPassed: () => void, options: NativeTableOptions = {}): Promise<NativeDnsResponder | string> {
    const lib = await nativeDnsLibrary();
    if (typeof lib === 'string') return lib;
    const handle = lib.create(options.maxEntries ?? 8192, options.arenaBytes ?? 4 * 1024 * 1024);
    if (handle === null) return 'loom_dns_create failed';
    const responder = new NativeDnsResponder(lib, handle);
    const failed = await responder.attach(socket, onPassed);
    if (failed !== null) {
      responder.destroy();
      return failed;
    }
    return responder;
  }

  private async attach(socket: UdpSocket, onPassed: () => void): Promise<string | null> {
    const handle = this.handle;
    if (handle === null) return 'destroyed';
    const udpHandle = dgramHandle(socket);
    const fd = udpHandle?.fd;
    if (udpHandle === null || typeof fd !== 'number' || typeof udpHandle.recvStop !== 'function' || typeof udpHandle.recvStart !== 'function') return 'no handle on the dgram socket (Node internals changed?)';
    const { watchReadable } = await import('./fd-watch.js');
    const stopped = udpHandle.recvStop();
    if (stopped !== 0) return `recvStop failed (libuv error ${stopped})`;
    const started = this.lib.start(handle, fd);
    if (started !== 0) {
      udpHandle.recvStart();
      return `loom_dns_start failed (errno ${-started})`;
    }
    this.running = true;
    try {
      this.watch = watchReadable(this.lib.eventFd(handle), onPassed);
    } catch (err) {
      this.lib.stop(handle);
      this.running = false;
      udpHandle.recvStart();
      return `cannot watch the responder's eventfd: ${(err as Error).message}`;
    }
    return null;
  }

  /** Moves up to TAKE_BATCH passed datagrams into this object's records; how many. */
  takePassed(): number {
    return this.handle === null ? 0 : this.lib.take(this.handle, this.records, TAKE_BATCH);
  }

  get takeCapacity(): number {
    return TAKE_BATCH;
  }

  /** Datagram i of the last take (a view, valid until the next take). */
  datagram(i: number): Buffer {
    const at = i * this.stride;
    return this.records.subarray(at + REC_DATA, at + REC_DATA + this.records.readUInt32LE(at + REC_LENGTH));
  }

  /** True when datagram i was longer than the thread's 4096-byte slot (its tail is lost). */
  truncated(i: number): boolean {
    return this.records[i * this.stride + REC_TRUNCATED] !== 0;
  }

  /** Datagram i's source, a sockaddr (a view, valid until the next take: copy it to keep it). */
  source(i: number): Buffer {
    const at = i * this.stride;
    return this.records.subarray(at + REC_NAME, at + REC_NAME + this.records[at + REC_NAME_LENGTH]!);
  }

  /** Sends `reply[0, length)` to `source` (from `source(i)`) without blocking; false when refused. */
  send(reply: Uint8Array, length: number, source: Uint8Array): boolean {
    return this.handle !== null && this.running && this.lib.send(this.handle, reply, length, source, source.length) === 0;
  }

  /** Stops and joins the thread; the socket stays its owner's (close it after). Idempotent. */
  stop(): void {
    this.watch?.close();
    this.watch = null;
    if (this.handle !== null && this.running) this.lib.stop(this.handle);
    this.running = false;
  }

  override destroy(): void {
    this.stop();
    super.destroy();
  }
}

/** The handle behind a dgram socket (Node 20's private state), or null if that ever changes. */
function dgramHandle(socket: UdpSocket): { fd?: unknown; recvStop?: () => number; recvStart?: () => number } | null {
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    if (symbol.description !== 'state symbol') continue;
    const state = (socket as unknown as Record<symbol, { handle?: { fd?: unknown; recvStop?: () => number; recvStart?: () => number } } | undefined>)[symbol];
    return state?.handle ?? null;
  }
  return null;
}
