import type { ApiServer } from '../api/server.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RouterApi } from '../mesh/types.js';
import { DnsSubsystem, type DnsSubsystemInit } from './daemon.js';
import { registerDnsApi } from './daemon-api.js';
import { findResolvConf, type DnsLaunchConfig } from './daemon-options.js';

/** What the launch options do not set; tests use `port: 0` and a fake upstream's port. */
export type DnsFactoryOverrides = Pick<DnsSubsystemInit, 'port' | 'upstreamPort' | 'tombstoneLifetimeMs'>;

export interface DnsBuildComponents {
  /** Constructed, not yet started. */
  router: RouterApi;
  /** Not yet listening: the DNS routes and metrics are added here. */
  api: ApiServer;
  logger: Logger;
  clock: Clock;
}

/**
 * The daemon's DNS: null with --no-dns; otherwise records on gossip channel "dns", a server on
 * each --dns-listen-address (port 53) and on whatever the host address adds later, and its API.
 * Called by the composition root (src/daemon/subsystems.ts).
 */
export function createDnsSubsystem(components: DnsBuildComponents, options: DnsLaunchConfig, overrides: DnsFactoryOverrides = {}): DnsSubsystem | null {
  if (!options.enabled) return null;
  const { router, api, logger, clock } = components;
  const dns = new DnsSubsystem(
    { router, clock, logger },
    {
      ...overrides,
      domain: options.domain,
      ttlSeconds: options.ttlSeconds,
      resolvConf: options.resolvConf ?? findResolvConf(),
      listenAddresses: options.listenAddresses,
      udpPath: options.udpPath,
      nativeResponder: options.nativeResponder,
    },
  );
  registerDnsApi(api, dns);
  return dns;
}
