/**
 * Decides whom to dial and when. Targets are the user's peers (always dialled, whatever the
 * limit) plus, with discovery, the addresses other peers report for their neighbours (dialled
 * only while we have fewer than connLimit connections). Failed dials are retried with
 * exponential backoff and full jitter (backoff.ts); the backoff resets once a dial succeeds.
 *
 * A target whose established connection ended less than `reconnect.windowMs` ago is redialled
 * after at most `reconnect.capMs` (uniform in [backoff minMs, capMs]) instead of the growing
 * backoff: a peer we were just talking to is most likely behind a partition that will heal or a
 * router that restarts, and the first dial across a healed cut is what lets the mesh (topology,
 * DNS, MACs) converge again. With a 60 s backoff cap that dial came up to a minute after the
 * heal; the chaos "partition" scenario measured 4-5 s for partitions of a few seconds (dials in
 * flight waiting for their next SYN) against the 2 s DNS target. Costs one dial per `capMs` per
 * lost peer during the window; after it, the normal backoff takes over.
 *
 * The maker never touches sockets: it calls `dial(address)` and the router reports back with
 * dialSucceeded / dialFailed / peerDisconnected. A target is "satisfied" while we have a live
 * connection to the peer behind it, whichever side dialled (so a duplicate that lost the
 * tie-break is not redialled).
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { LoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import type { ConnectionStatus } from './types.js';

export interface ConnectionMakerComponents {
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /** Starts a dial; the outcome comes back through dialSucceeded / dialFailed. */
  dial(address: string): void;
  /** Live connections (for connLimit). */
  connectionCount(): number;
  isConnectedTo(peer: PeerName): boolean;
}

export interface ConnectionMakerInit {
  /** Dial peers learned from topology (default true). */
  discovery?: boolean | undefined;
  /** Default 100; user targets are dialled even above it. */
  connLimit?: number | undefined;
  backoff?: BackoffOptions | undefined;
  /** Redialling a peer whose connection just ended (default: within 10 min, at most every 500 ms). */
  reconnect?: { capMs?: number; windowMs?: number } | undefined;
}

export const DEFAULT_RECONNECT = { capMs: 500, windowMs: 600_000 } as const;

export type TargetState = 'idle' | 'connecting' | 'connected' | 'retrying' | 'failed';

interface Target {
  address: string;
  user: boolean;
  discovered: boolean;
  peer: PeerName | undefined;
  state: TargetState;
  backoff: Backoff;
  retryAt: number | undefined;
  timer: TimerHandle | null;
  error: LoomError | undefined;
  /** Clock time our established connection to this target's peer ended; undefined while connected or never connected. */
  lostAt: number | undefined;
}

export class ConnectionMaker {
  private readonly components: ConnectionMakerComponents;
  private readonly logger: Logger;
  private readonly random: () => number;
  readonly discovery: boolean;
  readonly connLimit: number;
  private readonly backoffOptions: BackoffOptions;
  private readonly reconnectCapMs: number;
  private readonly reconnectWindowMs: number;
  private readonly targets = new Map<string, Target>();
  private stopped = false;

  constructor(components: ConnectionMakerComponents, init: ConnectionMakerInit = {}) {
    this.components = components;
    this.logger = components.logger.child({ component: 'connection-maker' });
    this.random = components.random ?? Math.random;
    this.discovery = init.discovery ?? true;
    this.connLimit = init.connLimit ?? 100;
    this.backoffOptions = { random: this.random, ...init.backoff };
    this.reconnectCapMs = init.reconnect?.capMs ?? DEFAULT_RECONNECT.capMs;
    this.reconnectWindowMs = init.reconnect?.windowMs ?? DEFAULT_RECONNECT.windowMs;
  }

  /** User targets, in the order given. */
  userTargets(): string[] {
    return [...this.targets.values()].filter((t) => t.user).map((t) => t.address);
  }

  addTargets(addresses: string[]): void {
    for (const address of addresses) {
      const t = this.targets.get(address) ?? this.newTarget(address);
      t.user = true;
      if (t.state === 'failed' || t.state === 'retrying') this.makeIdle(t);
    }
    this.refresh();
  }

  /** Stops dialling these addresses; a live connection to them stays. */
  forget(addresses: string[]): void {
    for (const address of addresses) {
      const t = this.targets.get(address);
      if (!t) continue;
      t.user = false;
      if (!t.discovered) this.drop(t);
    }
  }

  /** Replaces the discovered addresses (address -> the peer reported there). No-op without discovery. */
  setDiscovered(candidates: ReadonlyMap<string, PeerName>): void {
    if (!this.discovery) return;
    for (const t of this.targets.values()) {
      if (t.discovered && !candidates.has(t.address)) {
        t.discovered = false;
        if (!t.user && t.state !== 'connecting' && t.state !== 'connected') this.drop(t);
      }
    }
    for (const [address, peer] of candidates) {
      const t = this.targets.get(address) ?? this.newTarget(address);
      t.discovered = true;
      t.peer ??= peer;
    }
    this.refresh();
  }

  dialSucceeded(address: string, peer: PeerName): void {
    const t = this.targets.get(address);
    if (!t) return;
    t.peer = peer;
    t.state = 'connected';
    t.error = undefined;
    t.lostAt = undefined;
    t.backoff.reset();
  }

  /** A dial or handshake failed. ERR_SELF_CONNECTION is final; everything else is retried. */
  dialFailed(address: string, err: LoomError): void {
    const t = this.targets.get(address);
    if (!t || this.stopped) return;
    t.error = err;
    if (err.code === 'ERR_SELF_CONNECTION') {
      t.state = 'failed';
      this.logger.info({ address }, 'target is ourselves; not dialling it again');
      return;
    }
    this.scheduleRetry(t);
  }

  /** Our connection to `peer` ended: the targets it satisfied are dialled again after a backoff. */
  peerDisconnected(peer: PeerName, err: LoomError | null): void {
    if (this.stopped) return;
    for (const t of this.targets.values()) {
      if (t.peer === peer && t.state === 'connected') {
        t.error = err ?? undefined;
        t.lostAt = this.components.clock.now();
        this.scheduleRetry(t);
      }
    }
  }

  /** Dials every idle target that should be dialled now. Idempotent. */
  refresh(): void {
    if (this.stopped) return;
    const discovered: Target[] = [];
    let inFlight = 0;
    for (const t of this.targets.values()) {
      if (t.state === 'connected' && t.peer !== undefined && !this.components.isConnectedTo(t.peer)) this.makeIdle(t);
      if (t.state === 'connecting' && !t.user) inFlight++;
      if (t.state !== 'idle') continue;
      if (t.peer !== undefined && this.components.isConnectedTo(t.peer)) {
        t.state = 'connected';
        continue;
      }
      if (t.user) this.startDial(t);
      else discovered.push(t);
    }
    // Random order: peers that learn the same topology should not all dial the same few peers.
    const alreadyDialling = new Set<PeerName>();
    for (const t of this.targets.values()) if (t.state === 'connecting' && t.peer) alreadyDialling.add(t.peer);
    for (let i = discovered.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [discovered[i], discovered[j]] = [discovered[j]!, discovered[i]!];
    }
    for (const t of discovered) {
      if (this.components.connectionCount() + inFlight >= this.connLimit) break;
      if (t.peer !== undefined && alreadyDialling.has(t.peer)) continue;
      if (t.peer !== undefined) alreadyDialling.add(t.peer);
      inFlight++;
      this.startDial(t);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) t.timer?.cancel();
  }

  /** Rows for RouterStatus.connections: targets waiting to retry or given up on. */
  status(wallClockOffsetMs: number): ConnectionStatus[] {
    const rows: ConnectionStatus[] = [];
    for (const t of this.targets.values()) {
      if (t.state !== 'retrying' && t.state !== 'failed') continue;
      const row: ConnectionStatus = {
        address: t.address,
        outbound: true,
        state: t.state,
        info: t.error ? `${t.error.code}: ${t.error.message}` : t.state,
        attempts: t.backoff.attempts,
      };
      if (t.error) row.errorCode = t.error.code;
      if (t.retryAt !== undefined && t.state === 'retrying') row.retryAt = Math.round(t.retryAt + wallClockOffsetMs);
      rows.push(row);
    }
    return rows;
  }

  /** For tests and status: the state of one target. */
  stateOf(address: string): TargetState | undefined {
    return this.targets.get(address)?.state;
  }

  private newTarget(address: string): Target {
    const t: Target = {
      address,
      user: false,
      discovered: false,
      peer: undefined,
      state: 'idle',
      backoff: new Backoff(this.backoffOptions),
      retryAt: undefined,
      timer: null,
      error: undefined,
      lostAt: undefined,
    };
    this.targets.set(address, t);
    return t;
  }

  private startDial(t: Target): void {
    t.state = 'connecting';
    this.components.dial(t.address);
  }

  private scheduleRetry(t: Target): void {
    t.timer?.cancel();
    const backoff = t.backoff.next();
    const now = this.components.clock.now();
    const recentlyLost = t.lostAt !== undefined && now - t.lostAt < this.reconnectWindowMs;
    const minMs = Math.min(this.backoffOptions.minMs ?? DEFAULT_BACKOFF.minMs, this.reconnectCapMs);
    const delay = recentlyLost ? Math.min(backoff, Math.round(minMs + this.random() * (this.reconnectCapMs - minMs))) : backoff;
    t.state = 'retrying';
    t.retryAt = now + delay;
    t.timer = this.components.clock.setTimeout(() => {
      t.timer = null;
      if (this.targets.get(t.address) !== t) return;
      this.makeIdle(t);
      this.refresh();
    }, delay);
  }

  private makeIdle(t: Target): void {
    t.timer?.cancel();
    t.timer = null;
    t.retryAt = undefined;
    t.state = 'idle';
  }

  private drop(t: Target): void {
    t.timer?.cancel();
    this.targets.delete(t.address);
  }
}
