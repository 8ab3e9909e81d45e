/**
 * An in-memory network of Transports on a (fake) clock, for simulations of many peers in one
 * process. Holds the same contract as TcpTransport (see the shared connection test suite).
 *
 * Delivery: every chunk written arrives `latencyMs` later, via one clock timer per direction,
 * in write order. A close travels behind the data written before it (like a FIN), except an
 * abortive close, partition or kill, which drop what is in flight (like a reset).
 */
import { LoomError, toLoomError } from '../core/errors.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { ByteStream, Transport } from './types.js';

/** Bytes in flight in one direction above which `write` returns false (then onDrain fires). */
const HIGH_WATER_MARK = 1024 * 1024;

export interface MemoryNetworkOptions {
  /** One-way delay of every chunk; default 0 (still asynchronous: delivered by a clock timer). */
  latencyMs?: number;
}

export class MemoryNetwork {
  private readonly latencyMs: number;
  private readonly listeners = new Map<string, MemoryTransport>();
  private readonly streams = new Set<MemoryStream>();
  private readonly partitions = new Set<string>();
  private nextEphemeralPort = 40000;
  private bytesDelivered = 0;

  constructor(
    readonly clock: Clock,
    opts: MemoryNetworkOptions = {},
  ) {
    this.latencyMs = opts.latencyMs ?? 0;
  }

  /** A transport that listens on, and dials from, `address` ("host:port"). */
  transport(address: string): Transport {
    return new MemoryTransport(this, address);
  }

  /** Until `heal`: dials between a and b fail and their open streams are reset (both directions). */
  partition(a: string, b: string): void {
    this.partitions.add(pairKey(a, b));
    for (const s of [...this.streams]) {
      if (pairKey(s.localEndpoint, s.remoteEndpoint) === pairKey(a, b)) s.reset('network partition');
    }
  }

  heal(a: string, b: string): void {
    this.partitions.delete(pairKey(a, b));
  }

  /** Process death at `address`: every stream touching it is reset and its listener stops. */
  kill(address: string): void {
    const listener = this.listeners.get(address);
    if (listener) {
      listener.killed = true;
      this.listeners.delete(address);
    }
    for (const s of [...this.streams]) {
      if (s.localEndpoint === address || s.remoteEndpoint === address) s.reset(`${address} died`);
    }
  }

  stats(): { bytesDelivered: number } {
    return { bytesDelivered: this.bytesDelivered };
  }

  // ---- used by MemoryTransport / MemoryStream ----

  /** @internal */
  register(address: string, transport: MemoryTransport): void {
    const existing = this.listeners.get(address);
    if (existing && existing !== transport) throw new LoomError('ERR_UNAVAILABLE', `address ${address} already in use`);
    this.listeners.set(address, transport);
  }

  /** @internal */
  unregister(address: string, transport: MemoryTransport): void {
    if (this.listeners.get(address) === transport) this.listeners.delete(address);
  }

  /** @internal */
  connect(from: string, to: string): MemoryStream {
    if (this.partitions.has(pairKey(from, to))) throw new LoomError('ERR_UNAVAILABLE', `dial ${to} failed: network unreachable (partition)`);
    const listener = this.listeners.get(to);
    if (!listener?.onStream) throw new LoomError('ERR_UNAVAILABLE', `dial ${to} failed: ECONNREFUSED`);
    const fromHost = hostOf(from);
    const ephemeral = `${fromHost}:${this.nextEphemeralPort++}`;
    const dialer = new MemoryStream(this, from, to, to);
    const acceptor = new MemoryStream(this, to, from, ephemeral);
    dialer.peer = acceptor;
    acceptor.peer = dialer;
    this.streams.add(dialer);
    this.streams.add(acceptor);
    listener.onStream(acceptor);
    return dialer;
  }

  /** @internal */
  forget(stream: MemoryStream): void {
    this.streams.delete(stream);
  }

  /** @internal */
  get latency(): number {
    return this.latencyMs;
  }

  /** @internal */
  countDelivered(bytes: number): void {
    this.bytesDelivered += bytes;
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return i < 0 ? address : address.slice(0, i);
}

class MemoryTransport implements Transport {
  onStream: ((stream: ByteStream) => void) | null = null;
  killed = false;

  constructor(
    private readonly network: MemoryNetwork,
    readonly address: string,
  ) {}

  listen(onStream: (stream: ByteStream) => void): Promise<void> {
    if (this.killed) return Promise.reject(new LoomError('ERR_UNAVAILABLE', `transport ${this.address} was killed`));
    try {
      this.network.register(this.address, this);
    } catch (err) {
      return Promise.reject(toLoomError(err));
    }
    this.onStream = onStream;
    return Promise.resolve();
  }

  dial(address: string): Promise<ByteStream> {
    if (this.killed) return Promise.reject(new LoomError('ERR_UNAVAILABLE', `transport ${this.address} was killed`));
    try {
      return Promise.resolve(this.network.connect(this.address, address));
    } catch (err) {
      return Promise.reject(toLoomError(err));
    }
  }

  close(): Promise<void> {
    this.network.unregister(this.address, this);
    this.onStream = null;
    return Promise.resolve();
  }
}

interface InFlight {
  at: number;
  chunk: Uint8Array | null; // null = the close marker
  err: LoomError | null;
}

class MemoryStream implements ByteStream {
  peer!: MemoryStream;
  private dataListener: ((chunk: Uint8Array) => void) | null = null;
  private drainListener: (() => void) | null = null;
  private closeListener: ((err: LoomError | null) => void) | null = null;
  /** Chunks that arrived before onData was set. */
  private readonly inbox: Uint8Array[] = [];
  /** What we wrote that the peer has not received yet, in order, from index outboxHead on. */
  private outbox: InFlight[] = [];
  private outboxHead = 0;
  private outboxBytes = 0;
  private deliveryTimer: TimerHandle | null = null;
  private needDrain = false;
  private writable = true;
  private closed = false;
  private closeError: LoomError | null = null;

  constructor(
    private readonly network: MemoryNetwork,
    readonly localEndpoint: string,
    readonly remoteEndpoint: string,
    readonly remoteAddress: string,
  ) {}

  write(chunk: Uint8Array): boolean {
    if (!this.writable) return false;
    this.enqueue({ at: this.network.clock.now() + this.network.latency, chunk, err: null });
    this.outboxBytes += chunk.length;
    if (this.outboxBytes > HIGH_WATER_MARK) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  close(err?: LoomError): void {
    if (!this.writable) return;
    this.writable = false;
    if (err) {
      this.dropOutbox();
      this.peer.receiveClose(new LoomError('ERR_CONNECTION_CLOSED', `connection reset by peer: ${err.message}`), true);
    } else {
      this.enqueue({ at: this.network.clock.now() + this.network.latency, chunk: null, err: null });
    }
    this.markClosed(err ?? null);
  }

  onData(listener: (chunk: Uint8Array) => void): void {
    this.dataListener = listener;
    for (const chunk of this.inbox.splice(0)) listener(chunk);
  }

  onDrain(listener: () => void): void {
    this.drainListener = listener;
  }

  onClose(listener: (err: LoomError | null) => void): void {
    this.closeListener = listener;
    if (this.closed) {
      const err = this.closeError;
      queueMicrotask(() => listener(err));
    }
  }

  /** Partition or kill: both ends see a reset now, nothing in flight arrives. */
  reset(why: string): void {
    const err = new LoomError('ERR_CONNECTION_CLOSED', `connection reset: ${why}`);
    this.dropOutbox();
    this.peer.dropOutbox();
    this.writable = false;
    this.peer.writable = false;
    this.markClosed(err);
    this.peer.markClosed(err);
  }

  // ---- delivery ----

  private enqueue(item: InFlight): void {
    this.outbox.push(item);
    if (!this.deliveryTimer) this.scheduleDelivery();
  }

  private scheduleDelivery(): void {
    const head = this.outbox[this.outboxHead];
    if (!head) return;
    const delay = Math.max(0, head.at - this.network.clock.now());
    this.deliveryTimer = this.network.clock.setTimeout(() => this.deliverDue(), delay);
  }

  private deliverDue(): void {
    this.deliveryTimer = null;
    const now = this.network.clock.now();
    while (this.outboxHead < this.outbox.length && this.outbox[this.outboxHead]!.at <= now) {
      const item = this.outbox[this.outboxHead++]!;
      if (item.chunk === null) {
        this.peer.receiveClose(null, false);
        continue;
      }
      this.outboxBytes -= item.chunk.length;
      this.network.countDelivered(item.chunk.length);
      this.peer.receive(item.chunk);
    }
    // Compact in bulk, so a long queue is not shifted element by element.
    if (this.outboxHead === this.outbox.length) {
      this.outbox = [];
      this.outboxHead = 0;
    } else if (this.outboxHead >= 1024) {
      this.outbox = this.outbox.slice(this.outboxHead);
      this.outboxHead = 0;
    }
    if (this.needDrain && this.outboxBytes <= HIGH_WATER_MARK && this.writable) {
      this.needDrain = false;
      this.drainListener?.();
    }
    if (this.closed && this.outboxHead === this.outbox.length) this.network.forget(this);
    this.scheduleDelivery();
  }

  private dropOutbox(): void {
    this.outbox = [];
    this.outboxHead = 0;
    this.outboxBytes = 0;
    this.deliveryTimer?.cancel();
    this.deliveryTimer = null;
  }

  private receive(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.dataListener) this.dataListener(chunk);
    else this.inbox.push(chunk);
  }

  /** The peer's close reached us. A graceful one also closes our side (no half-open streams, like Node's default). */
  private receiveClose(err: LoomError | null, abortive: boolean): void {
    if (this.closed) return;
    if (abortive) this.dropOutbox();
    else if (this.writable) this.enqueue({ at: this.network.clock.now() + this.network.latency, chunk: null, err: null });
    this.writable = false;
    this.markClosed(err);
  }

  private markClosed(err: LoomError | null): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    if (this.outboxHead === this.outbox.length) this.network.forget(this);
    this.closeListener?.(err);
  }
}
