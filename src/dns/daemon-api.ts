/**
 * The DNS subsystem's face on the local API: record endpoints, `/dns/status` and the
 * `loom_dns_*` metrics (`report()` is the `dns` section of `/report`, added by the daemon). Bodies are checked here (shape and lengths, zod) and
 * then by the subsystem (names, addresses, container ids); both throw ERR_INVALID_ARGUMENT.
 */
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { LoomError } from '../core/errors.js';
import type { DnsSubsystem } from './daemon.js';
import { createDnsMetrics } from './daemon-metrics.js';
import type { DnsLookupResult, DnsRemoveResult } from './daemon-types.js';
import { DNS_ROUTES, dnsAddBodySchema, dnsNameSchema, dnsRemoveBodySchema } from './api.js';

export function registerDnsApi(api: ApiServer, dns: DnsSubsystem): void {
  api.registerMetrics('dns', createDnsMetrics(() => dns.metricsSnapshot()));

  api.route(DNS_ROUTES.status.method, DNS_ROUTES.status.path, () => ({ json: dns.report() }));

  api.route(DNS_ROUTES.add.method, DNS_ROUTES.add.path, async (req) => {
    const body = parseWith(dnsAddBodySchema, await req.body(), 'dns record');
    return { json: dns.add(body.name, body.address, body.containerId) };
  });

  api.route(DNS_ROUTES.remove.method, DNS_ROUTES.remove.path, async (req) => {
    const body = parseWith(dnsRemoveBodySchema, (await req.body()) ?? {}, 'dns removal');
    const result: DnsRemoveResult = { removed: dns.remove(body) };
    return { json: result };
  });

  api.route(DNS_ROUTES.lookup.method, DNS_ROUTES.lookup.path, (req) => {
    const asked = parseWith(dnsNameSchema, req.query.get('name') ?? undefined, 'name parameter');
    const addresses = dns.lookup(asked);
    if (addresses.length === 0) throw new LoomError('ERR_NOT_FOUND', `no records for ${asked.slice(0, 80)}`);
    const result: DnsLookupResult = { name: asked, addresses };
    return { json: result };
  });
}
