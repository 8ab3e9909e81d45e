/**
 * Many routers in one process: n Routers over one MemoryNetwork on one FakeClock.
 * Nothing sleeps: `step()` jumps the clock to the next timer and then lets promises settle,
 * so handshakes (promise-based) and timers (clock-based) interleave as they would for real.
 */
import { FakeClock } from '../../src/core/clock.js';
import type { PeerName, PeerUid } from '../../src/core/ids.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import type { GossipKind } from '../../src/mesh/gossip.js';
import { Router, type RouterOptions } from '../../src/mesh/router.js';
import { MemoryNetwork } from '../../src/mesh/transport-memory.js';

export interface TestMeshOptions {
  /** One-way delay per chunk (default 5 ms). */
  latencyMs?: number;
  discovery?: boolean;
  connLimit?: number;
  /** Seed for every router's random source (jitter, discovery order). */
  seed?: number;
  logger?: Logger;
  /** Overrides for every router (timers etc.). */
  router?: Partial<RouterOptions>;
}

export const PORT = 6783;

import { seededRandom } from './random.js';

export { seededRandom };


export function peerNameOf(i: number): PeerName {
  const hex = (i + 1).toString(16).padStart(10, '0');
  return `02:${hex.match(/../g)!.join(':')}` as PeerName;
}

export function addressOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${PORT}`;
}

/** Lets every queued promise callback and microtask run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class TestMesh {
  readonly clock = new FakeClock();
  readonly network: MemoryNetwork;
  readonly routers: Router[] = [];
  private readonly dead = new Set<number>();
  private readonly options: TestMeshOptions;
  private restarts = 0;
  private lastActivityCount = -1;
  private lastActivityAt = 0;

  constructor(n: number, options: TestMeshOptions = {}) {
    this.options = options;
    this.network = new MemoryNetwork(this.clock, { latencyMs: options.latencyMs ?? 5 });
    for (let i = 0; i < n; i++) this.routers.push(this.makeRouter(i));
  }

  get size(): number {
    return this.routers.length;
  }

  private makeRouter(i: number, uidSalt = 0): Router {
    const seed = (this.options.seed ?? 1) * 1_000_003 + i * 7919 + uidSalt;
    return new Router(
      { transport: this.network.transport(addressOf(i)), clock: this.clock, logger: this.options.logger ?? silentLogger, random: seededRandom(seed) },
      {
        identity: { name: peerNameOf(i), nickname: `host${i}`, uid: (uidSalt * 1_000_000 + i + 1).toString(16).padStart(16, '0') as PeerUid },
        port: PORT,
        discovery: this.options.discovery ?? true,
        connLimit: this.options.connLimit ?? 100,
        ...this.options.router,
      },
    );
  }

  async start(): Promise<void> {
    for (const r of this.routers) await r.start();
  }

  /** Adds router(s) `to` as targets of router `from`. */
  connect(from: number, ...to: number[]): void {
    this.routers[from]!.connect(to.map(addressOf));
  }

  /** Adds and starts one more router (not connected to anyone yet); returns its index. */
  async addRouter(): Promise<number> {
    const i = this.routers.length;
    const r = this.makeRouter(i);
    this.routers.push(r);
    await r.start();
    return i;
  }

  /** Process death: every stream of the router resets, the router object is stopped. */
  async kill(i: number): Promise<void> {
    this.network.kill(addressOf(i));
    this.dead.add(i);
    await this.routers[i]!.stop();
  }

  /** Starts a fresh router (new uid, same name and address) in place of a killed one. */
  async restart(i: number): Promise<Router> {
    this.restarts++;
    const r = this.makeRouter(i, this.restarts);
    this.routers[i] = r;
    this.dead.delete(i);
    await r.start();
    return r;
  }

  partition(a: number, b: number): void {
    this.network.partition(addressOf(a), addressOf(b));
  }

  heal(a: number, b: number): void {
    this.network.heal(addressOf(a), addressOf(b));
  }

  isAlive(i: number): boolean {
    return !this.dead.has(i);
  }

  live(): Router[] {
    return this.routers.filter((_, i) => !this.dead.has(i));
  }

  /** Jumps to the next timer (or by `maxMs` if none is earlier) and lets promises settle. */
  async step(maxMs = 1_000): Promise<void> {
    await settle();
    const next = this.clock.nextAt();
    const delta = next === null ? maxMs : Math.min(maxMs, Math.max(0, next - this.clock.now()));
    this.clock.advance(delta);
    await settle();
    this.noteActivity();
  }

  /** Steps until `done()` or `limitMs` of simulated time pass (and at most maxSteps). Returns done(). */
  async runUntil(done: () => boolean, limitMs: number, maxSteps = 2_000_000): Promise<boolean> {
    const end = this.clock.now() + limitMs;
    for (let i = 0; i < maxSteps; i++) {
      await settle();
      if (done()) return true;
      if (this.clock.now() >= end) return false;
      await this.step(end - this.clock.now());
    }
    return done();
  }

  /** Simulated ms until converged(), or null if not within limitMs. */
  async timeToConverge(limitMs = 60_000): Promise<number | null> {
    const start = this.clock.now();
    return (await this.runUntil(() => this.converged(), limitMs)) ? this.clock.now() - start : null;
  }

  /** Nothing pending and no gossip sent or received for a few latencies. */
  quiet(): boolean {
    this.noteActivity();
    const window = 2 * (this.options.latencyMs ?? 5) + 1;
    return this.clock.now() - this.lastActivityAt >= window && this.live().every((r) => r.pendingGossip() === 0 && r.handshakesInProgress() === 0);
  }

  async runUntilQuiet(limitMs = 60_000): Promise<boolean> {
    this.noteActivity();
    return this.runUntil(() => this.quiet(), limitMs);
  }

  /** Every live router holds the same topology and reaches every live router. */
  converged(): boolean {
    const live = this.live();
    const first = live[0];
    if (!first) return true;
    for (const r of live) if (r.routes().reachable.size !== live.length) return false;
    const digest = first.topologyDigest();
    return live.every((r) => r.topologyDigest() === digest);
  }

  totalGossipBytes(kinds: GossipKind[] = ['neighbour', 'antiEntropy', 'broadcast', 'unicast', 'repair', 'repairState']): number {
    let sum = 0;
    for (const r of this.routers) {
      const byKind = r.gossipStats().bytesSentByKind;
      for (const k of kinds) sum += byKind[k];
    }
    return sum;
  }

  async stop(): Promise<void> {
    for (const r of this.routers) await r.stop();
    await settle();
  }

  private noteActivity(): void {
    let count = 0;
    for (const r of this.routers) {
      const s = r.gossipStats();
      count += s.messagesSent + s.messagesReceived;
    }
    if (count !== this.lastActivityCount) {
      this.lastActivityCount = count;
      this.lastActivityAt = this.clock.now();
    }
  }
}

export async function createTestMesh(n: number, options: TestMeshOptions = {}): Promise<TestMesh> {
  const mesh = new TestMesh(n, options);
  await mesh.start();
  return mesh;
}
