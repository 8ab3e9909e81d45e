import type { SubsystemFactory } from '../daemon/subsystem.js';
import { DNS_SUBSYSTEM, DnsSubsystem, type DnsSubsystemInit } from './daemon.js';
import { registerDnsApi } from './daemon-api.js';
import { findResolvConf } from './daemon-options.js';

/** What the launch options do not set; tests use `port: 0` and a fake upstream's port. */
export type DnsFactoryOverrides = Pick<DnsSubsystemInit, 'port' | 'upstreamPort' | 'tombstoneLifetimeMs'>;

/**
 * The daemon's DNS: off with --no-dns; otherwise records on gossip channel "dns", a server on each
 * --dns-listen-address (port 53) and on whatever the data plane adds later, and its API.
 */
export function createDnsSubsystemFactory(overrides: DnsFactoryOverrides = {}): SubsystemFactory {
  return {
    name: DNS_SUBSYSTEM,
    create({ router, api, logger, clock, config }) {
      const options = config.dns;
      if (!options.enabled) return null;
      const dns = new DnsSubsystem(
        { router, clock, logger },
        {
          ...overrides,
          domain: options.domain,
          ttlSeconds: options.ttlSeconds,
          resolvConf: options.resolvConf ?? findResolvConf(),
          listenAddresses: options.listenAddresses,
          udpPath: options.udpPath,
        },
      );
      registerDnsApi(api, dns);
      return dns;
    },
  };
}

export const dnsSubsystemFactory: SubsystemFactory = createDnsSubsystemFactory();
