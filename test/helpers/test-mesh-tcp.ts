/**
 * n Routers over the real TcpTransport on 127.0.0.1, real clock, short timers: the counterpart
 * of TestMesh (test-mesh.ts) for the shared scenarios in test/sim/mesh-scenarios.ts, so the
 * in-memory simulation and the real transport are held to the same contract.
 * Listens on 127.0.0.1 only; ports are picked free by the kernel. Nothing leaves loopback.
 */
import net from 'node:net';
import type { PeerUid } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { Router } from '../../src/mesh/router.js';
import { TcpTransport } from '../../src/mesh/transport-tcp.js';
import { peerNameOf } from './test-mesh.js';

/** A free loopback port (the kernel's pick; closed again before the router binds it). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.listen({ host: '127.0.0.1', port: 0 }, resolve).once('error', reject));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class TcpTestMesh {
  readonly routers: Router[] = [];
  private readonly ports: number[] = [];
  private readonly dead = new Set<number>();

  static async create(n: number, opts: { discovery?: boolean } = {}): Promise<TcpTestMesh> {
    const mesh = new TcpTestMesh();
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      mesh.ports.push(port);
      mesh.routers.push(
        new Router(
          { transport: new TcpTransport({ host: '127.0.0.1', port, logger: silentLogger, dialTimeoutMs: 2_000, closeLingerMs: 500 }), logger: silentLogger },
          {
            identity: { name: peerNameOf(i), nickname: `tcp${i}`, uid: (i + 1).toString(16).padStart(16, '0') as PeerUid },
            port,
            discovery: opts.discovery ?? true,
            heartbeatIntervalMs: 200,
            heartbeatTimeoutMs: 1_000,
            repairDelayMs: 100,
            discoveryDelayMs: 20,
            backoff: { baseMs: 100, capMs: 500 },
          },
        ),
      );
    }
    for (const r of mesh.routers) await r.start();
    return mesh;
  }

  addressOf(i: number): string {
    return `127.0.0.1:${this.ports[i]!}`;
  }

  connect(from: number, ...to: number[]): void {
    this.routers[from]!.connect(to.map((j) => this.addressOf(j)));
  }

  async kill(i: number): Promise<void> {
    this.dead.add(i);
    await this.routers[i]!.stop();
  }

  live(): Router[] {
    return this.routers.filter((_, i) => !this.dead.has(i));
  }

  converged(): boolean {
    const live = this.live();
    const digest = live[0]?.topologyDigest();
    return live.every((r) => r.routes().reachable.size === live.length && r.topologyDigest() === digest);
  }

  /** Polls every 10 ms of real time, at most `limitMs`. */
  async runUntil(done: () => boolean, limitMs: number): Promise<boolean> {
    const end = Date.now() + limitMs;
    while (!done()) {
      if (Date.now() >= end) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  async stop(): Promise<void> {
    for (const r of this.routers) await r.stop();
  }
}
