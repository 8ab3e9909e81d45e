/**
 * Daemons in this process for the IPAM daemon tests: a real Router over one MemoryNetwork on a
 * FakeClock, the real IPAM subsystem over SQLite in a temp state dir, the real HTTP API on
 * 127.0.0.1 port 0. The clock is driven by hand (`driveUntil`): nothing sleeps.
 */
import { LoomClient } from '../../../src/client/index.js';
import { FakeClock, silentLogger, type Logger } from '../../../src/core/index.js';
import { startDaemon, type RunningDaemon } from '../../../src/daemon/foreground.js';
import { parseLaunchOptions, type RawLaunchOptions } from '../../../src/daemon/options.js';
import type { SubsystemFactory } from '../../../src/daemon/subsystem.js';
import type { IpamSubsystem } from '../../../src/ipam/daemon.js';
import { createIpamSubsystemFactory } from '../../../src/daemon/subsystems.js';
import { ipamSubsystemOf } from '../../helpers/subsystem-of.js';
import { Router } from '../../../src/mesh/router.js';
import { MemoryNetwork } from '../../../src/mesh/transport-memory.js';
import { cliContext } from '../../helpers/cli-context.js';
import { testApiSocket } from '../../helpers/api-socket.js';

/** Advances the fake clock in small steps, letting promise-based steps and setImmediate (group commit) run in between. */
export async function driveUntil(clock: FakeClock, done: () => boolean, limitMs: number): Promise<boolean> {
  for (let elapsed = 0; elapsed <= limitMs && !done(); elapsed += 10) {
    clock.advance(10);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return done();
}

export interface Host {
  daemon: RunningDaemon;
  client: LoomClient;
  ipam: IpamSubsystem;
  addr: string;
}

/** Short timers so tests run quickly on the fake clock. */
export const fastIpam = (): SubsystemFactory => createIpamSubsystemFactory({ consensusSettleMs: 100, statsDelayMs: 50, allocateTimeoutMs: 5_000, donationTimeoutMs: 1_000 });

export async function startHost(
  net: MemoryNetwork,
  clock: FakeClock,
  stateDir: string,
  index: number,
  options: { peers?: string[]; raw?: RawLaunchOptions; logger?: Logger; subsystems?: readonly SubsystemFactory[] } = {},
): Promise<Host> {
  const address = `10.0.0.${index}:6783`;
  const config = { ...parseLaunchOptions({ stateDir, nickname: `host${index}`, name: peerNameOf(index), dataplane: 'off', ...options.raw }, options.peers ?? [], {}, 'h'), httpPort: 0, apiSocket: testApiSocket() };
  const daemon = await startDaemon(
    {
      logger: options.logger ?? silentLogger,
      clock,
      subsystems: options.subsystems ?? [fastIpam()],
      createRouter: (cfg, identity, logger) =>
        new Router({ transport: net.transport(address), clock, logger }, { identity, port: cfg.port, discovery: cfg.discovery, connLimit: cfg.connLimit, peers: cfg.peers }),
    },
    config,
  );
  const ipam = ipamSubsystemOf(daemon.subsystems);
  if (!ipam) throw new Error('no ipam subsystem');
  // The local socket: the whole API (the TCP one is read-only); "@name" for cliContext.
  const addr = `@${config.apiSocket}`;
  return { daemon, client: new LoomClient({ socket: config.apiSocket }), ipam, addr };
}

/** A fixed peer name per host index, so seeds can be named before launch. */
export function peerNameOf(index: number): string {
  return `02:00:00:00:00:${index.toString(16).padStart(2, '0')}`;
}

export function connected(...hosts: Host[]): boolean {
  return hosts.every((h) => h.daemon.router.status().connections.filter((c) => c.state === 'established').length >= 1);
}

export { cliContext };

export { FakeClock, MemoryNetwork };
