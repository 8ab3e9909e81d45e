/**
 * The production Transport: TCP via node:net. Held to the same contract as MemoryNetwork by the
 * shared connection test suite.
 */
import net from 'node:net';
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ByteStream, Transport } from './types.js';

export interface TcpTransportOptions {
  /** Address to listen on; default all interfaces. */
  host?: string;
  /** Port to listen on; 0 picks a free one (read it back from `port` after `listen`). */
  port: number;
  logger: Logger;
  /**
   * A dial that has not connected after this long fails with ERR_UNAVAILABLE; default 2000: one
   * SYN retransmission (Linux sends them 1, 3, 7 s after the first), then a fresh dial after the
   * connection maker's delay. A longer dial across a partition waits up to 4 s for its next SYN
   * after the heal (the chaos "partition" scenario measured it), which the 2 s DNS target cannot
   * afford; a reachable peer answers a SYN within one round trip, so 2 s only cuts dials that
   * lost two SYNs.
   */
  dialTimeoutMs?: number;
  /** After a graceful close, the socket is destroyed if the peer has not closed within this; default 5000. */
  closeLingerMs?: number;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 2_000;

/** Splits "host:port" or "[v6]:port". Throws ERR_INVALID_ARGUMENT. */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid address "${address.slice(0, 100)}": expected host:port`);
  }
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  const h = host.startsWith('::ffff:') && net.isIPv4(host.slice(7)) ? host.slice(7) : host;
  return net.isIPv6(h) ? `[${h}]:${port}` : `${h}:${port}`;
}

function socketError(err: NodeJS.ErrnoException, what: string): LoomError {
  return new LoomError('ERR_CONNECTION_CLOSED', `${what}: ${err.code ?? err.message}`, { cause: err, detail: { errno: err.code } });
}

class TcpByteStream implements ByteStream {
  readonly remoteAddress: string;
  private closeListener: ((err: LoomError | null) => void) | null = null;
  private closed = false;
  private closeError: LoomError | null = null;
  private locallyClosed = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly closeLingerMs: number,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.remoteAddress = formatHostPort(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.closeError ??= socketError(err, `connection to ${this.remoteAddress} failed`);
    });
    socket.on('close', () => this.markClosed(this.closeError));
  }

  write(chunk: Uint8Array): boolean {
    if (this.locallyClosed || !this.socket.writable) return false;
    return this.socket.write(chunk);
  }

  close(err?: LoomError): void {
    if (this.locallyClosed) return;
    this.locallyClosed = true;
    if (err) {
      this.closeError ??= err;
      this.socket.resetAndDestroy();
      return;
    }
    this.socket.end();
    // A peer that never closes its side must not keep the socket (and its fd) forever.
    const linger = setTimeout(() => this.socket.destroy(), this.closeLingerMs);
    linger.unref();
    this.socket.once('close', () => clearTimeout(linger));
  }

  onData(listener: (chunk: Uint8Array) => void): void {
    this.socket.on('data', listener);
  }

  onDrain(listener: () => void): void {
    this.socket.on('drain', listener);
  }

  onClose(listener: (err: LoomError | null) => void): void {
    this.closeListener = listener;
    if (this.closed) {
      const err = this.closeError;
      queueMicrotask(() => listener(err));
    }
  }

  private markClosed(err: LoomError | null): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.closeListener?.(err);
  }
}

export class TcpTransport implements Transport {
  private server: net.Server | null = null;
  private boundPort: number;
  private readonly logger: Logger;

  constructor(private readonly opts: TcpTransportOptions) {
    this.boundPort = opts.port;
    this.logger = opts.logger.child({ component: 'tcp-transport' });
  }

  /** The port we listen on: the bound one after `listen` (useful with port 0). */
  get port(): number {
    return this.boundPort;
  }

  listen(onStream: (stream: ByteStream) => void): Promise<void> {
    if (this.server) return Promise.reject(new LoomError('ERR_CONFLICT', 'already listening'));
    const server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => {
      onStream(new TcpByteStream(socket, this.opts.closeLingerMs ?? 5000));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server = null;
        reject(new LoomError('ERR_UNAVAILABLE', `cannot listen on ${this.opts.host ?? '*'}:${this.opts.port}: ${err.code ?? err.message}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.logger.warn({ err: err.message }, 'listener error'));
        const address = server.address();
        if (address && typeof address === 'object') this.boundPort = address.port;
        resolve();
      });
    });
  }

  dial(address: string): Promise<ByteStream> {
    let target: { host: string; port: number };
    try {
      target = parseHostPort(address);
    } catch (err) {
      return Promise.reject(toLoomError(err));
    }
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LoomError('ERR_UNAVAILABLE', `dial ${address} failed: timed out`));
      }, this.opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS);
      timer.unref();
      const onError = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(new LoomError('ERR_UNAVAILABLE', `dial ${address} failed: ${err.code ?? err.message}`, { cause: err, detail: { errno: err.code } }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new TcpByteStream(socket, this.opts.closeLingerMs ?? 5000));
      });
    });
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = null;
    // server.close's callback waits for every accepted socket to end; the contract is only
    // "stop accepting", which happens at once.
    server?.close();
    return Promise.resolve();
  }
}
