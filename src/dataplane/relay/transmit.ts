/**
 * The relay's send side: every datagram of one event-loop turn is laid out, sealed in place, in
 * one arena, and the arena goes to the kernel in one flush (one sendmmsg; consecutive datagrams
 * of one size to one neighbour form a UDP GSO train, so the ~45 segments of a TCP super-frame
 * are one message to the kernel). Nothing here is ever bigger than the neighbour's path MTU:
 * callers size bodies from `NeighbourState.maxBodyBytes`.
 *
 *   arena: | hdr | body | tag | hdr | body | tag | ...      trains: (start, bytes, segment, neighbour)
 *
 * Ownership: the arena belongs to the transmitter; `reserve` hands out where the next body goes,
 * valid until `commit`. The kernel copies on sendmmsg, so the arena is reused after each flush.
 * Small frames of one turn to one neighbour share a datagram (`u16 length | frame` records),
 * so a burst of ACKs costs one seal and one datagram.
 */
import type { Logger } from '../../core/logger.js';
import type { DatagramEndpoint } from './endpoint.js';
import { EMSGSIZE } from './endpoint.js';
import { UNDERLAY_OVERHEAD_BYTES, type NeighbourState } from './neighbour.js';
import { sealInPlace } from './seal.js';
import type { RelayCounters } from './stats.js';
import { BATCH_LENGTH_BYTES, DEFAULT_TTL, MAX_COUNTER, PacketType, RELAY_HEADER_BYTES, RELAY_TAG_BYTES, writeHeader, type DropReason } from './wire.js';

/** The batch types and what one record alone goes as. */
const SINGLE_TYPE_OF: Record<number, number> = { [PacketType.dataBatch]: PacketType.data, [PacketType.frameBatch]: PacketType.frame };
/** Room for ~8 segmented super-frames per flush; a fuller turn flushes early. */
const ARENA_BYTES = 1 << 19;
/** Trains per flush (a train is at least one datagram). */
const MAX_TRAINS = 1024;

export interface TransmitDeps {
  encrypt: boolean;
  selfBytes: Buffer;
  counters: RelayCounters;
  drop: (reason: DropReason, count?: number) => void;
  logger: Logger;
  /** A datagram of `size` underlay bytes to ip:port was refused with EMSGSIZE: that path MTU shrank. */
  onTooBig: (ip: number, port: number, size: number) => void;
}

export class Transmitter {
  readonly arena = Buffer.allocUnsafeSlow(ARENA_BYTES);
  private used = 0;
  private readonly trainStart = new Int32Array(MAX_TRAINS);
  private readonly trainBytes = new Int32Array(MAX_TRAINS);
  private readonly trainSegment = new Int32Array(MAX_TRAINS);
  /** A train ends with a shorter datagram: nothing may follow it in the same GSO message. */
  private readonly trainClosed = new Uint8Array(MAX_TRAINS);
  private readonly trainNeighbour: Array<NeighbourState | null> = new Array<NeighbourState | null>(MAX_TRAINS).fill(null);
  private trains = 0;
  /** The open record datagram at the arena's tail, if any. */
  private batchAt = -1;
  private batchUsed = 0;
  private batchRecords = 0;
  private batchLimit = 0;
  private batchType = 0;
  private batchNeighbour: NeighbourState | null = null;
  private batchSource: Uint8Array | null = null;
  private batchDestination: Uint8Array | null = null;
  private flushScheduled = false;
  private endpoint: DatagramEndpoint | null = null;

  constructor(private readonly deps: TransmitDeps) {}

  attach(endpoint: DatagramEndpoint | null): void {
    this.flush();
    this.endpoint = endpoint;
    if (endpoint) endpoint.onSendError = this.onSendError;
  }

  /**
   * Makes room for one datagram with a body of up to `maxBody` bytes; returns the arena offset
   * where the body goes. Closes an open record datagram first.
   */
  reserve(maxBody: number): number {
    this.closeBatch();
    if (this.used + RELAY_HEADER_BYTES + maxBody + RELAY_TAG_BYTES > ARENA_BYTES || this.trains >= MAX_TRAINS) this.flush();
    this.scheduleFlush();
    return this.used + RELAY_HEADER_BYTES;
  }

  /** Completes the datagram whose body was written at the offset `reserve` returned. */
  commit(n: NeighbourState, type: number, ttl: number, source: Uint8Array, destination: Uint8Array, bodyBytes: number): void {
    const at = this.used;
    if (n.sendCounter > MAX_COUNTER) return this.deps.drop('send-failed');
    const encrypt = this.deps.encrypt;
    writeHeader(this.arena, type, encrypt, ttl, source, destination, this.deps.selfBytes, n.sendCounter++, at);
    const length = encrypt ? sealInPlace(n.dataKeys!.send, this.arena, at, bodyBytes) : RELAY_HEADER_BYTES + bodyBytes;
    this.used = at + length;
    this.addToTrain(n, at, length);
  }

  /**
   * Appends `frame` as a `u16 length | frame` record to the open record datagram of `type` for
   * `n` (same source and destination), or opens one. `maxBody` bounds the datagram's body.
   */
  appendRecord(n: NeighbourState, type: number, source: Uint8Array, destination: Uint8Array, frame: Uint8Array, maxBody: number): void {
    const need = BATCH_LENGTH_BYTES + frame.length;
    if (
      this.batchNeighbour !== n ||
      this.batchType !== type ||
      this.batchUsed + need > this.batchLimit ||
      !sameBytes(this.batchSource!, source) ||
      !sameBytes(this.batchDestination!, destination)
    ) {
      const body = this.reserve(maxBody);
      this.batchAt = body;
      this.batchUsed = 0;
      this.batchRecords = 0;
      this.batchLimit = maxBody;
      this.batchType = type;
      this.batchNeighbour = n;
      this.batchSource = source;
      this.batchDestination = destination;
    }
    const at = this.batchAt + this.batchUsed;
    this.batchRecords++;
    this.arena[at] = frame.length >>> 8;
    this.arena[at + 1] = frame.length & 0xff;
    this.arena.set(frame, at + BATCH_LENGTH_BYTES);
    this.batchUsed += need;
  }

  /**
   * Seals the open record datagram. One record alone goes as the single-frame type instead
   * (`data` / `frame`, two bytes shorter), so a lone frame costs no batch framing.
   */
  private closeBatch(): void {
    const n = this.batchNeighbour;
    if (n === null) return;
    this.batchNeighbour = null;
    const at = this.batchAt;
    let type = this.batchType;
    let bytes = this.batchUsed;
    if (this.batchRecords === 1) {
      this.arena.copyWithin(at, at + BATCH_LENGTH_BYTES, at + bytes);
      bytes -= BATCH_LENGTH_BYTES;
      type = SINGLE_TYPE_OF[type] ?? type;
    }
    this.commit(n, type, DEFAULT_TTL, this.batchSource!, this.batchDestination!, bytes);
  }

  private addToTrain(n: NeighbourState, at: number, length: number): void {
    const t = this.trains - 1;
    if (t >= 0 && this.trainNeighbour[t] === n && this.trainClosed[t] === 0 && this.trainStart[t]! + this.trainBytes[t]! === at && length <= this.trainSegment[t]!) {
      this.trainBytes[t] = this.trainBytes[t]! + length;
      if (length < this.trainSegment[t]!) this.trainClosed[t] = 1;
      return;
    }
    const i = this.trains++;
    this.trainStart[i] = at;
    this.trainBytes[i] = length;
    this.trainSegment[i] = length;
    this.trainClosed[i] = 0;
    this.trainNeighbour[i] = n;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  /** Sends everything laid out so far. Called at the end of each turn, and early when the arena is full. */
  readonly flush = (): void => {
    this.flushScheduled = false;
    this.closeBatch();
    const count = this.trains;
    if (count === 0) return;
    const endpoint = this.endpoint;
    const c = this.deps.counters;
    let datagrams = 0;
    for (let i = 0; i < count; i++) {
      const n = this.trainNeighbour[i]!;
      const bytes = this.trainBytes[i]!;
      const segment = this.trainSegment[i]!;
      const inTrain = Math.ceil(bytes / segment);
      datagrams += inTrain;
      n.sent += inTrain;
      n.bytesSent += bytes;
      c.bytesToNeighbours += bytes;
      if (endpoint) endpoint.queue(this.arena, this.trainStart[i]!, bytes, segment, n.ipNumber, n.address.port);
      this.trainNeighbour[i] = null;
    }
    c.toNeighbours += datagrams;
    c.batches += count;
    this.trains = 0;
    this.used = 0;
    if (!endpoint) return this.deps.drop('send-failed', datagrams);
    const failed = endpoint.flush();
    if (failed > 0) this.deps.drop('send-failed', failed);
  };

  /** Per-train errors from the endpoint: EMSGSIZE lowers that neighbour's path MTU at once. */
  private readonly onSendError = (errno: number, ip: number, port: number, segmentBytes: number): void => {
    if (errno !== EMSGSIZE) return;
    this.deps.onTooBig(ip, port, segmentBytes + UNDERLAY_OVERHEAD_BYTES);
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}
