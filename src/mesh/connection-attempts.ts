/**
 * Connections on their way in or out: a dial, then the handshake (connection.ts), in either
 * direction. A finished handshake is handed to the router (`host.adopt`), which keeps at most
 * one connection per peer; a failed dial or handshake of a target is reported to the
 * connection maker, which decides when to try again.
 *
 * Contract: an attempt is listed (`list`, `size`) from the dial or the accepted stream until its
 * handshake ends; a stream is closed when the handshake fails or the router is not running;
 * inbound streams beyond the limit below, and those the handshake throttle refuses (a flood from
 * one address, or an address backing off after failed handshakes: handshake-throttle.ts), are
 * closed at once.
 */
import type { Clock } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { establishConnection } from './connection.js';
import type { ConnectionMaker } from './connection-maker.js';
import { HandshakeThrottle, type HandshakeThrottleOptions, type HandshakeThrottleStats } from './handshake-throttle.js';
import type { ByteStream, ProtocolConnection, RouterInit, Transport } from './types.js';

export interface Attempt {
  address: string;
  outbound: boolean;
}

/** What attempts need from the router. */
export interface ConnectionAttemptsHost {
  isRunning(): boolean;
  /** Live connections (for the inbound limit). */
  liveCount(): number;
  /** A handshake succeeded; `target` is the dialled address, null for an inbound connection. */
  adopt(conn: ProtocolConnection, target: string | null): void;
}

export interface ConnectionAttemptsComponents {
  host: ConnectionAttemptsHost;
  transport: Pick<Transport, 'dial'>;
  maker: Pick<ConnectionMaker, 'dialFailed'>;
  clock: Clock;
  logger: Logger;
}

export interface ConnectionAttemptsInit extends Pick<RouterInit, 'identity' | 'port' | 'password' | 'connLimit'> {
  /** Passed to establishConnection (defaults there: 5,000 / 1,000 / 5,000 ms). */
  handshakeTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** Inbound handshake throttling (defaults in handshake-throttle.ts). */
  handshakeThrottle?: HandshakeThrottleOptions;
}

export class ConnectionAttempts {
  private readonly attempts = new Set<Attempt>();
  private readonly throttle: HandshakeThrottle;

  constructor(
    private readonly components: ConnectionAttemptsComponents,
    private readonly init: ConnectionAttemptsInit,
  ) {
    this.throttle = new HandshakeThrottle(init.handshakeThrottle);
  }

  throttleStats(): HandshakeThrottleStats {
    return this.throttle.stats();
  }

  get size(): number {
    return this.attempts.size;
  }

  /** Attempts in the order they started. */
  list(): Iterable<Attempt> {
    return this.attempts;
  }

  inboundCount(): number {
    let n = 0;
    for (const a of this.attempts) if (!a.outbound) n++;
    return n;
  }

  /** A stream a peer opened to us. */
  accept(stream: ByteStream): void {
    const { host, logger, clock } = this.components;
    if (!host.isRunning()) return stream.close();
    // Before anything costs us: no key is generated for a refused stream.
    const verdict = this.throttle.admit(stream.remoteAddress, clock.now());
    if (verdict !== 'admit') {
      logger.debug({ address: stream.remoteAddress, reason: verdict }, 'inbound connection refused: handshake throttle');
      return stream.close();
    }
    // connLimit stops our discovery dials; inbound is refused only beyond twice that, so a mesh
    // whose peers are all "full" still lets a new peer in. Handshakes in progress count, so
    // many peers discovering us at once do not overshoot.
    const limit = 2 * (this.init.connLimit ?? 100);
    if (host.liveCount() + this.attempts.size >= limit) {
      logger.debug({ address: stream.remoteAddress }, 'inbound connection refused: connection limit');
      return stream.close();
    }
    void this.handshake(stream, { address: stream.remoteAddress, outbound: false }, null);
  }

  /** Dials a target of the connection maker. */
  dial(address: string): void {
    const attempt: Attempt = { address, outbound: true };
    this.attempts.add(attempt);
    this.components.transport.dial(address).then(
      (stream) => this.handshake(stream, attempt, address),
      (err: unknown) => {
        this.attempts.delete(attempt);
        this.components.maker.dialFailed(address, toLoomError(err, 'ERR_UNAVAILABLE'));
      },
    );
  }

  private async handshake(stream: ByteStream, attempt: Attempt, target: string | null): Promise<void> {
    const { host, maker, clock, logger } = this.components;
    const { init } = this;
    this.attempts.add(attempt);
    let conn: ProtocolConnection;
    try {
      if (!host.isRunning()) throw new LoomError('ERR_UNAVAILABLE', 'router stopped');
      conn = await establishConnection(stream, {
        outbound: attempt.outbound,
        local: init.identity,
        listenPort: init.port,
        password: init.password,
        clock,
        logger,
        handshakeTimeoutMs: init.handshakeTimeoutMs,
        heartbeatIntervalMs: init.heartbeatIntervalMs,
        heartbeatTimeoutMs: init.heartbeatTimeoutMs,
      });
    } catch (err) {
      stream.close();
      this.attempts.delete(attempt);
      const e = toLoomError(err);
      logger.info({ address: attempt.address, outbound: attempt.outbound, code: e.code, err: e.message }, 'connection failed');
      if (!attempt.outbound) {
        const refuseMs = this.throttle.failed(attempt.address, e.code, clock.now());
        if (refuseMs > 0) logger.warn({ address: attempt.address, code: e.code, refuseMs }, 'handshakes from this address keep failing: refusing its connections for a while');
      }
      if (target) maker.dialFailed(target, e);
      return;
    }
    this.attempts.delete(attempt);
    if (!attempt.outbound) this.throttle.succeeded(attempt.address);
    host.adopt(conn, target);
  }
}
