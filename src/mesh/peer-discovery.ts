/**
 * Peer discovery: the addresses other peers report for their neighbours that we are not
 * connected to, handed to the connection maker once per burst of topology changes (after
 * `discoveryDelayMs`, which coalesces the burst). Without discovery it does nothing.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { PeerName } from '../core/ids.js';
import type { ConnectionMaker } from './connection-maker.js';
import type { Routes } from './routes.js';
import type { Topology } from './topology.js';

/** What discovery needs from the router. */
export interface PeerDiscoveryHost {
  readonly self: PeerName;
  readonly topology: Topology;
  routes(): Routes;
  isConnectedTo(peer: PeerName): boolean;
  isRunning(): boolean;
}

export interface PeerDiscoveryComponents {
  host: PeerDiscoveryHost;
  maker: Pick<ConnectionMaker, 'discovery' | 'setDiscovered'>;
  clock: Clock;
}

export interface PeerDiscoveryInit {
  /** Delay that coalesces topology changes before discovery dials (default 200 ms). */
  discoveryDelayMs?: number | undefined;
}

export class PeerDiscovery {
  private timer: TimerHandle | null = null;

  constructor(
    private readonly components: PeerDiscoveryComponents,
    private readonly init: PeerDiscoveryInit,
  ) {}

  /** Schedules one update of the maker's discovered addresses; later calls join it. */
  topologyChanged(): void {
    const { maker, clock, host } = this.components;
    if (!maker.discovery || this.timer) return;
    this.timer = clock.setTimeout(() => {
      this.timer = null;
      if (host.isRunning()) maker.setDiscovered(discoveredAddresses(host));
    }, this.init.discoveryDelayMs ?? 200);
  }

  stop(): void {
    this.timer?.cancel();
  }
}

/** Address -> peer reported there, for reachable peers we are not connected to (smallest address per peer). */
export function discoveredAddresses(host: Omit<PeerDiscoveryHost, 'isRunning'>): Map<string, PeerName> {
  const routes = host.routes();
  const byPeer = new Map<PeerName, string>();
  for (const name of routes.reachable) {
    if (name === host.self) continue;
    for (const c of host.topology.get(name)?.connections ?? []) {
      if (c.name === host.self || host.isConnectedTo(c.name) || !routes.reachable.has(c.name)) continue;
      const current = byPeer.get(c.name);
      if (current === undefined || c.address < current) byPeer.set(c.name, c.address);
    }
  }
  const out = new Map<string, PeerName>();
  for (const [peer, address] of byPeer) out.set(address, peer);
  return out;
}
