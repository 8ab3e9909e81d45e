/**
 * The UDP side of DnsServer: one socket, answered on one of two paths (docs/DNS.md).
 *
 * - "batched": after each datagram libuv delivers, drain the socket's queue with a non-blocking
 *   recvmmsg and send each round's cached replies with one sendmmsg (src/os/udp-batch.ts).
 * - "dgram": Node's one callback and one send per datagram (the fallback).
 *
 * Both give the same replies; the answers themselves (cache, full path, counters) come from the
 * server through `UdpAnswerSource`. Lifecycle: `listen` once, `close` (idempotent). Never throws
 * on input; an exception on the batched path (a bug) drops it for dgram with a warning.
 */
import { createSocket, type Socket as UdpSocket, type SocketOptions } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from '../core/logger.js';
import { replyFromCacheInto, type CachedAnswer } from './answer.js';
import { headerOnlyReply, RCODE, type QuestionPeek } from './query.js';
import type { UdpBatch, UdpBatchOpening, UdpBatchStats } from '../os/udp-batch.js';
import type { NativeAnswerTable, NativeDnsResponder, NativeResponderStats } from '../os/dns-responder.js';

/** Takes the socket's reading over from libuv (src/os `watchInsteadOfDgram`; tests may replace it). */
export type TakeOverReading = (socket: UdpSocket, onReadable: () => void) => Promise<{ watch: { close(): void } } | { unavailable: string }>;

/** How UDP datagrams are read and answered; all give the same replies. */
export type UdpPath = 'dgram' | 'batched' | 'native';
/** "auto": native when the library loads (and the server allows it), else batched when available, else dgram. */
export type UdpPathSetting = UdpPath | 'auto';

/** Starts the native responder thread on the bound socket (src/os `NativeDnsResponder.start`; tests may replace it). */
export type OpenNativeResponder = (socket: UdpSocket, onPassed: () => void) => Promise<NativeDnsResponder | string>;

export interface DnsUdpStats {
  /** Null until UDP is listening. */
  path: UdpPath | null;
  /** The batched or native path's syscall counters (native: the thread's); null on the dgram path. */
  batch: UdpBatchStats | null;
  /** The native path's own counters (passed to JS, ring drops, table puts and resets); null on other paths. */
  native: Pick<NativeResponderStats, 'answered' | 'passed' | 'ringDrops' | 'ringWaits' | 'puts' | 'tableResets' | 'recvErrors'> | null;
}

/** What the native thread answered or dropped since the last fold, for the server's counters. */
export interface NativeCounts {
  answered: number;
  nxdomain: number;
  /** Dropped: left in the thread when it stopped, the ring to JS being full. */
  dropped: number;
  /** Answered by question type number (0..255; 256 for any larger). */
  byType: Float64Array;
}

export interface UdpEndpoint {
  host: string;
  port: number;
}

/** What the listener needs from the server. Created once by the server, not per datagram. */
export interface UdpAnswerSource {
  /**
   * The cache entry answering `raw` within its UDP limit (counted as answered), with `peek`
   * describing `raw` until the next call; undefined when it needs the full path. Never throws.
   */
  cachedAnswer(raw: Buffer): CachedAnswer | undefined;
  /** The scratch `cachedAnswer` fills. */
  readonly peek: QuestionPeek;
  /** The round-robin order's randomness. */
  readonly random: () => number;
  /** The full path: the reply, or null to send nothing. `raw` must stay unchanged until it settles. */
  answerFully(raw: Buffer): Promise<Buffer | null>;
  /** Counts a datagram the listener disposed of itself (a query, plus this outcome). */
  count(outcome: 'malformed' | 'dropped'): void;
  /**
   * Whether a native table can be kept current (an answer cache, and a store that reports its
   * changes). False: the native path is not opened.
   */
  readonly nativeUsable: boolean;
  /**
   * Hands the native table to the server, which clears it on every store change and puts the
   * entries it answers from; returns the detach function (called before the table goes away).
   */
  attachNative(table: NativeAnswerTable): () => void;
  /** Adds what the native thread did (deltas) to the server's counters. */
  countNative(counts: NativeCounts): void;
}

export interface UdpListenerComponents {
  answers: UdpAnswerSource;
  logger: Logger;
  /** Opens the batched path on the bound socket (src/os `openUdpBatch`; tests replace it). */
  openUdpBatch: (socket: UdpSocket) => Promise<UdpBatchOpening>;
  /**
   * On the batched path, reads every datagram with recvmmsg on readiness instead of letting libuv
   * read the first of each wake-up (src/os `watchInsteadOfDgram`). Absent: libuv reads the first.
   */
  takeOverReading?: TakeOverReading;
  /** The native path's thread (src/os `NativeDnsResponder.start`). Absent: no native path. */
  openNativeResponder?: OpenNativeResponder;
  /** With "auto": try the native path first. Default true (LOOM_DNS_NATIVE=0 turns it off). */
  preferNative?: boolean;
}

/** Said once per process: why the native responder is not used (then the batched path serves). */
let nativeUnavailableLogged = false;

/**
 * recvmmsg rounds per datagram libuv delivers, or per readiness callback (each up to the batch
 * capacity): bounds the time one event holds the event loop (TCP, timers), ~256 datagrams at the
 * default capacity. Readiness is level-triggered: what is left is read on the next loop turn.
 */
const MAX_DRAIN_ROUNDS = 4;

export class UdpListener {
  private readonly answers: UdpAnswerSource;
  private readonly logger: Logger;
  private readonly openBatch: (socket: UdpSocket) => Promise<UdpBatchOpening>;
  private socket: UdpSocket | null = null;
  /** The batched path's buffers; null on the dgram path and after close. */
  private batch: UdpBatch | null = null;
  private pathInUse: UdpPath | null = null;
  private readonly takeOverReading: TakeOverReading | undefined;
  /** Readiness of the socket while the batched path reads it itself (no 'message' events). */
  private watch: { close(): void } | null = null;
  private readonly openNative: OpenNativeResponder | undefined;
  private readonly preferNative: boolean;
  /** The native path's thread; null on other paths and after close. */
  private responder: NativeDnsResponder | null = null;
  private detachNative: (() => void) | null = null;
  /** The native counters already folded into the server's (see foldNativeCounts). */
  private folded: NativeResponderStats | null = null;
  private nativeStats: DnsUdpStats['native'] = null;
  /** Where replies to passed datagrams are built (the largest reply a client may take). */
  private readonly replyScratch = Buffer.allocUnsafe(4096);

  constructor(
    components: UdpListenerComponents,
    private readonly setting: UdpPathSetting,
  ) {
    this.answers = components.answers;
    this.logger = components.logger;
    this.openBatch = components.openUdpBatch;
    this.takeOverReading = components.takeOverReading;
    this.openNative = components.openNativeResponder;
    this.preferNative = components.preferNative ?? true;
  }

  /** Binds (port 0 picks one) and opens the batched path when the setting allows. Once only. */
  async listen(endpoint: UdpEndpoint): Promise<UdpEndpoint> {
    const socket = createSocket({ type: endpoint.host.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup });
    this.socket = socket;
    // Until the batch is open (right after bind, before the event loop can deliver anything to
    // it), and for good on the dgram path, datagrams are answered one by one.
    socket.on('message', (msg, rinfo) => {
      const batch = this.batch;
      if (batch === null) this.answerDatagram(socket, msg, rinfo.address, rinfo.port);
      else {
        try {
          this.answerBatch(socket, batch, msg, rinfo.address, rinfo.port);
        } catch (err) {
          // A bug, never input (every datagram is bounds-checked): serve on with dgram rather
          // than crash. This datagram is answered again (a duplicate reply is harmless).
          this.batch = null;
          this.pathInUse = 'dgram';
          this.logger.warn({ err }, 'dns: batched udp failed; using dgram from now on');
          this.answerDatagram(socket, msg, rinfo.address, rinfo.port);
        }
      }
    });
    const bound = await new Promise<UdpEndpoint>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(endpoint.port, endpoint.host, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.logger.warn({ err }, 'dns: udp socket error'));
        const a = socket.address();
        resolve({ host: a.address, port: a.port });
      });
    });
    this.pathInUse = 'dgram';
    if ((this.setting === 'native' || (this.setting === 'auto' && this.preferNative)) && (await this.listenNative(socket))) return bound;
    if (this.setting !== 'dgram') {
      const opening = await this.openBatch(socket);
      if ('batch' in opening) {
        if (this.socket === socket) {
          this.batch = opening.batch;
          this.pathInUse = 'batched';
          await this.readOnReadiness(socket, opening.batch);
        }
      } else if (this.setting === 'batched') this.logger.warn({ reason: opening.unavailable }, 'dns: batched udp unavailable; using dgram');
      else this.logger.debug({ reason: opening.unavailable }, 'dns: batched udp unavailable; using dgram');
    }
    return bound;
  }

  /**
   * The native path: the thread reads the socket and answers from the table; what it passes on
   * is answered here. False (and said once in the log, a warning when asked for by name) when
   * it cannot start: then the socket is as it was.
   */
  private async listenNative(socket: UdpSocket): Promise<boolean> {
    const opened = !this.answers.nativeUsable ? 'no answer cache or the store does not report changes' : this.openNative === undefined ? 'not available in this server' : await this.openNative(socket, () => this.onPassed());
    if (typeof opened === 'string') {
      if (this.setting === 'native') this.logger.warn({ reason: opened }, 'dns: native responder unavailable; using the JS path');
      else if (!nativeUnavailableLogged) this.logger.info({ reason: opened }, 'dns: native responder unavailable; using the JS path');
      nativeUnavailableLogged = true;
      return false;
    }
    if (this.socket !== socket) {
      opened.destroy();
      return true;
    }
    this.responder = opened;
    this.detachNative = this.answers.attachNative(opened);
    this.pathInUse = 'native';
    return true;
  }

  /**
   * The datagrams the native thread passed on (no current entry, not the plain case, too big):
   * the cache first (then the entry is put in the native table by the server), else the full
   * path. Replies go out through the responder (the socket is the thread's).
   */
  private onPassed(): void {
    const responder = this.responder;
    if (responder === null) return;
    const answers = this.answers;
    try {
      for (let round = 0; round < MAX_DRAIN_ROUNDS; round++) {
        const n = responder.takePassed();
        for (let i = 0; i < n; i++) {
          const raw = responder.datagram(i);
          if (responder.truncated(i)) {
            this.answerOversizedNative(responder, raw, i);
            continue;
          }
          const entry = answers.cachedAnswer(raw);
          if (entry !== undefined) {
            responder.send(this.replyScratch, replyFromCacheInto(entry, raw, answers.peek, answers.random, this.replyScratch), responder.source(i));
            continue;
          }
          // The views are overwritten by the next take: the full path gets copies.
          const source = Buffer.from(responder.source(i));
          answers.answerFully(Buffer.from(raw)).then(
            (reply) => {
              if (reply && this.responder === responder) responder.send(reply, reply.length, source);
            },
            (err: unknown) => this.logger.warn({ err }, 'dns: udp query failed'),
          );
        }
        if (n < responder.takeCapacity) break;
      }
    } catch (err) {
      // A bug, never input (the views are bounded): log and go on; the datagram is lost.
      this.logger.warn({ err }, 'dns: answering a datagram passed by the native responder failed');
    }
  }

  private answerOversizedNative(responder: NativeDnsResponder, raw: Buffer, i: number): void {
    if (raw.length < 12 || (raw[2]! & 0x80) !== 0) {
      this.answers.count('dropped');
      return;
    }
    this.answers.count('malformed');
    const reply = headerOnlyReply(raw, RCODE.FORMERR);
    responder.send(reply, reply.length, responder.source(i));
  }

  /**
   * Adds what the native thread answered or dropped since the last call to the server's
   * counters (the server calls it before it reports them, and at close).
   */
  foldNativeCounts(): void {
    const responder = this.responder;
    if (responder === null) return;
    const now = responder.stats();
    const was = this.folded;
    const byType = new Float64Array(now.answeredByType.length);
    for (let t = 0; t < byType.length; t++) byType[t] = now.answeredByType[t]! - (was?.answeredByType[t] ?? 0);
    this.answers.countNative({ answered: now.answered - (was?.answered ?? 0), nxdomain: now.nxdomain - (was?.nxdomain ?? 0), dropped: now.ringDrops - (was?.ringDrops ?? 0), byType });
    this.folded = now;
    this.nativeStats = { answered: now.answered, passed: now.passed, ringDrops: now.ringDrops, ringWaits: now.ringWaits, puts: now.puts, tableResets: now.tableResets, recvErrors: now.recvErrors };
  }

  /** Closes the socket; replies still being computed are not sent. Idempotent. */
  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    this.batch = null;
    const responder = this.responder;
    if (responder !== null) {
      // Joined before the socket closes: the thread must not read a closed (or reused) fd.
      responder.stop();
      this.foldNativeCounts();
      this.detachNative?.();
      this.detachNative = null;
      this.responder = null;
      responder.destroy();
    }
    this.watch?.close();
    this.watch = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  stats(): DnsUdpStats {
    const responder = this.responder;
    if (responder !== null) {
      this.foldNativeCounts();
      const s = responder.stats();
      return { path: this.pathInUse, batch: { receives: s.receives, received: s.received, flushes: s.flushes, sent: s.sent, sendErrors: s.sendErrors }, native: this.nativeStats };
    }
    return { path: this.pathInUse, batch: this.batch === null ? null : { ...this.batch.stats }, native: this.nativeStats };
  }

  /** The dgram path: one datagram, one send. */
  private answerDatagram(socket: UdpSocket, msg: Buffer, address: string, port: number): void {
    const entry = this.answers.cachedAnswer(msg);
    if (entry === undefined) {
      this.answerLater(socket, msg, address, port);
      return;
    }
    const reply = Buffer.allocUnsafe(entry.template.length);
    replyFromCacheInto(entry, msg, this.answers.peek, this.answers.random, reply);
    socket.send(reply, port, address);
  }

  /**
   * The batched path: answers the datagram libuv read (sent at once), then drains the socket's
   * queue with recvmmsg (non-blocking) and sends each round's cached replies with one sendmmsg.
   * Questions the cache cannot answer get a copy of their bytes and take the full path, replied
   * by dgram.
   */
  private answerBatch(socket: UdpSocket, batch: UdpBatch, msg: Buffer, address: string, port: number): void {
    const answers = this.answers;
    const first = answers.cachedAnswer(msg);
    if (first === undefined) this.answerLater(socket, msg, address, port);
    else {
      const slot = batch.replySlot();
      const length = replyFromCacheInto(first, msg, answers.peek, answers.random, slot);
      // Only IPv4 sources are encoded here; others go out by dgram (a copy: the slot is reused).
      if (!batch.queueReplyTo(length, address, port)) socket.send(Buffer.from(slot.subarray(0, length)), port, address);
      // Sent before draining: at low rates the drain finds nothing, and this reply need not
      // wait for that syscall. At high rates it is one extra sendmmsg per wake-up.
      else batch.flush();
    }
    this.drain(socket, batch, MAX_DRAIN_ROUNDS);
  }

  /**
   * Reads what waits in the socket with recvmmsg, `rounds` times at most or until a round comes
   * back short (the queue is empty), and sends each round's cached replies with one sendmmsg.
   */
  private drain(socket: UdpSocket, batch: UdpBatch, rounds: number): void {
    const answers = this.answers;
    for (let round = 0; round < rounds; round++) {
      const n = batch.receive();
      for (let i = 0; i < n; i++) {
        if (batch.full) batch.flush();
        const raw = batch.datagram(i);
        if (batch.truncated(i)) {
          this.answerOversized(batch, raw, i);
          continue;
        }
        const entry = answers.cachedAnswer(raw);
        if (entry !== undefined) {
          batch.queueReply(replyFromCacheInto(entry, raw, answers.peek, answers.random, batch.replySlot()), i);
          continue;
        }
        const source = batch.source(i);
        if (source === null) answers.count('dropped');
        // The view is overwritten by the next receive: the full path gets its own copy.
        else this.answerLater(socket, Buffer.from(raw), source.address, source.port);
      }
      batch.flush();
      if (n < batch.capacity) break;
    }
  }

  /**
   * Why: at moderate rates nearly every wake-up carries one datagram, which libuv reads into a
   * fresh 64 KiB-then-shrunk buffer with an `rinfo` object, and the garbage of those is most of
   * what the young generation collects (3-4 scavenges a second at 10,000 q/s, each pausing every
   * query for 0.2-0.9 ms: the tail). On readiness, recvmmsg reads into the batch's fixed buffers.
   * Stays on 'message' events when the take-over is unavailable.
   */
  private async readOnReadiness(socket: UdpSocket, batch: UdpBatch): Promise<void> {
    if (this.takeOverReading === undefined) return;
    const taken = await this.takeOverReading(socket, () => this.onReadable(socket));
    if ('unavailable' in taken) {
      this.logger.debug({ reason: taken.unavailable }, 'dns: udp read by libuv (first datagram of each wake-up)');
      return;
    }
    if (this.socket !== socket || this.batch !== batch) {
      taken.watch.close();
      return;
    }
    this.watch = taken.watch;
  }

  /** The socket is readable (level-triggered): drain it. A bug drops to dgram, as on 'message'. */
  private onReadable(socket: UdpSocket): void {
    const batch = this.batch;
    if (batch === null || this.socket !== socket) return;
    try {
      this.drain(socket, batch, MAX_DRAIN_ROUNDS);
    } catch (err) {
      this.batch = null;
      this.pathInUse = 'dgram';
      this.watch?.close();
      this.watch = null;
      this.logger.warn({ err }, 'dns: batched udp failed; using dgram from now on');
      // libuv reads again: what waits in the socket is answered by dgram.
      resumeDgramReading(socket);
    }
  }

  /**
   * A datagram longer than the batch's slot (4096 bytes, far above any real query) lost its
   * tail: FORMERR when its header is a query's, else dropped.
   */
  private answerOversized(batch: UdpBatch, raw: Buffer, i: number): void {
    if (raw.length < 12 || (raw[2]! & 0x80) !== 0) {
      this.answers.count('dropped');
      return;
    }
    this.answers.count('malformed');
    const reply = headerOnlyReply(raw, RCODE.FORMERR);
    reply.copy(batch.replySlot());
    batch.queueReply(reply.length, i);
  }

  /** The full path for one datagram; the reply goes out by dgram when it is ready. */
  private answerLater(socket: UdpSocket, msg: Buffer, address: string, port: number): void {
    this.answers.answerFully(msg).then(
      (reply) => {
        if (reply && this.socket === socket) socket.send(reply, port, address);
      },
      (err: unknown) => this.logger.warn({ err }, 'dns: udp query failed'),
    );
  }
}

/** Restarts libuv's reads on a socket whose reading was taken over (the fallback after a bug). */
function resumeDgramReading(socket: UdpSocket): void {
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    if (symbol.description !== 'state symbol') continue;
    const handle = (socket as unknown as Record<symbol, { handle?: { recvStart?: () => number } } | undefined>)[symbol]?.handle;
    handle?.recvStart?.();
  }
}

/**
 * dgram resolves the destination of every send, and its default (dns.lookup) defers even an
 * address literal to the next tick. Replies always go to a literal (the query's source), so
 * answer those at once; anything else still goes through dns.lookup.
 */
const literalLookup = ((address: string, family: number, callback: (err: Error | null, address: string, family: number) => void): void => {
  const f = isIP(address);
  if (f !== 0) callback(null, address, f);
  else dnsLookup(address, family, callback);
}) as unknown as NonNullable<SocketOptions['lookup']>;
