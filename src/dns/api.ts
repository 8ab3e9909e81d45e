/**
 * The DNS HTTP contract: request and response schemas of its routes, shared by the server side
 * (./daemon-api.ts) and the typed client. `/dns/status` answers the DnsReport of
 * ./daemon-types.ts (also the `dns` section of `/report`), described field by field below.
 *
 *   GET  /dns/status                          -> DnsReport
 *   POST /dns/records         { name, address, containerId? } -> { added, record }
 *   POST /dns/records/remove  { name?, address?, containerId? } -> { removed }
 *   GET  /dns/lookup          ?name=          -> { name, addresses }   (ERR_NOT_FOUND when none)
 */
import { z } from 'zod';
import { defineRoutes, type SameType } from '../api/contract.js';
import type { DnsReport } from './daemon-types.js';

export const dnsNameSchema = z.string().min(1).max(254);
const address = z.string().min(1).max(15);
const containerId = z.string().min(1).max(128);

export const dnsAddBodySchema = z.object({ name: dnsNameSchema, address, containerId: containerId.optional() }).strict();
export const dnsRemoveBodySchema = z.object({ name: dnsNameSchema.optional(), address: address.optional(), containerId: containerId.optional() }).strict();

const count = z.number().int().min(0);

/** `/dns/status` (and `dns` in `/report`): ./daemon-types.ts DnsReport. */
export const dnsReportSchema = z.object({
  domain: z.string(),
  ttlSeconds: count,
  resolvConf: z.string(),
  listeners: z.array(
    z.object({
      address: z.string(),
      udp: z.string().exactOptional(),
      tcp: z.string().exactOptional(),
      udpPath: z.enum(['native', 'batched', 'dgram']).exactOptional(),
    }),
  ),
  records: z.array(
    z.object({
      name: z.string(),
      address: z.string(),
      containerId: z.string(),
      origin: z.string(),
      originNickname: z.string().exactOptional(),
      version: count,
    }),
  ),
  counts: z.object({ live: count, hidden: count, tombstones: count }),
  stats: z.object({ queries: count, answeredLocally: count, forwarded: count, nxdomain: count, servfail: count, malformed: count, dropped: count, truncated: count }),
});

export const DNS_ROUTES = defineRoutes({
  status: { method: 'GET', path: '/dns/status', response: dnsReportSchema },
  add: {
    method: 'POST',
    path: '/dns/records',
    request: dnsAddBodySchema,
    response: z.object({ added: z.boolean(), record: z.object({ name: z.string(), address: z.string(), containerId: z.string() }) }),
  },
  remove: { method: 'POST', path: '/dns/records/remove', request: dnsRemoveBodySchema, response: z.object({ removed: z.number() }) },
  lookup: { method: 'GET', path: '/dns/lookup', request: z.object({ name: dnsNameSchema }), response: z.object({ name: z.string(), addresses: z.array(z.string()) }) },
});

// The schema and the type the subsystem reports are the same shape (compile-time only).
const dnsReportMatches: SameType<z.output<typeof dnsReportSchema>, DnsReport> = true;
void dnsReportMatches;
