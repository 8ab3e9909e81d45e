/**
 * The DNS subsystem's face on the local API: record endpoints, `/dns/status` and the
 * `loom_dns_*` metrics (`report()` is the `dns` section of `/report`, added by the daemon). Bodies are checked here (shape and lengths, zod) and
 * then by the subsystem (names, addresses, container ids); both throw ERR_INVALID_ARGUMENT.
 */
import { z } from 'zod';
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { LoomError } from '../core/errors.js';
import type { DnsSubsystem } from './daemon.js';
import { createDnsMetrics } from './daemon-metrics.js';
import type { DnsLookupResult, DnsRemoveResult } from './daemon-types.js';

const name = z.string().min(1).max(254);
const address = z.string().min(1).max(15);
const containerId = z.string().min(1).max(128);

export const dnsAddBodySchema = z.object({ name, address, containerId: containerId.optional() }).strict();
export const dnsRemoveBodySchema = z.object({ name: name.optional(), address: address.optional(), containerId: containerId.optional() }).strict();

export function registerDnsApi(api: ApiServer, dns: DnsSubsystem): void {
  api.registerMetrics('dns', createDnsMetrics(() => dns.report()));

  api.route('GET', '/dns/status', () => ({ json: dns.report() }));

  api.route('POST', '/dns/records', async (req) => {
    const body = parseWith(dnsAddBodySchema, await req.body(), 'dns record');
    return { json: dns.add(body.name, body.address, body.containerId) };
  });

  api.route('POST', '/dns/records/remove', async (req) => {
    const body = parseWith(dnsRemoveBodySchema, (await req.body()) ?? {}, 'dns removal');
    const result: DnsRemoveResult = { removed: dns.remove(body) };
    return { json: result };
  });

  api.route('GET', '/dns/lookup', (req) => {
    const asked = parseWith(name, req.query.get('name') ?? undefined, 'name parameter');
    const addresses = dns.lookup(asked);
    if (addresses.length === 0) throw new LoomError('ERR_NOT_FOUND', `no records for ${asked.slice(0, 80)}`);
    const result: DnsLookupResult = { name: asked, addresses };
    return { json: result };
  });
}
