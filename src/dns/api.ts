/**
 * The DNS HTTP contract: request and response schemas of its routes, shared by the server side
 * (./daemon-api.ts) and the typed client. `/dns/status` answers the DnsReport of
 * ./daemon-types.ts (checked only as an object here: it is the report section too).
 *
 *   GET  /dns/status                          -> DnsReport
 *   POST /dns/records         { name, address, containerId? } -> { added, record }
 *   POST /dns/records/remove  { name?, address?, containerId? } -> { removed }
 *   GET  /dns/lookup          ?name=          -> { name, addresses }   (ERR_NOT_FOUND when none)
 */
import { z } from 'zod';
import { defineRoutes } from '../api/contract.js';
import type { DnsReport } from './daemon-types.js';

export const dnsNameSchema = z.string().min(1).max(254);
const address = z.string().min(1).max(15);
const containerId = z.string().min(1).max(128);

export const dnsAddBodySchema = z.object({ name: dnsNameSchema, address, containerId: containerId.optional() }).strict();
export const dnsRemoveBodySchema = z.object({ name: dnsNameSchema.optional(), address: address.optional(), containerId: containerId.optional() }).strict();

export const DNS_ROUTES = defineRoutes({
  status: { method: 'GET', path: '/dns/status', response: z.custom<DnsReport>((v) => typeof v === 'object' && v !== null && !Array.isArray(v)) },
  add: {
    method: 'POST',
    path: '/dns/records',
    request: dnsAddBodySchema,
    response: z.object({ added: z.boolean(), record: z.object({ name: z.string(), address: z.string(), containerId: z.string() }) }),
  },
  remove: { method: 'POST', path: '/dns/records/remove', request: dnsRemoveBodySchema, response: z.object({ removed: z.number() }) },
  lookup: { method: 'GET', path: '/dns/lookup', request: z.object({ name: dnsNameSchema }), response: z.object({ name: z.string(), addresses: z.array(z.string()) }) },
});
