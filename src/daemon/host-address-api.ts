/** Request and response schemas of `/expose` and `/hide` (the contract the CLI's client shares). */
import { z } from 'zod';
import { defineRoutes } from '../api/contract.js';

export const exposeBodySchema = z.object({ address: z.string().max(64).optional() }).strict();
export const hideBodySchema = z.object({ cidr: z.string().min(1).max(64) }).strict();

export const HOST_ADDRESS_ROUTES = defineRoutes({
  /** `loom expose [ADDRESS]`: the address put on the bridge. */
  expose: { method: 'POST', path: '/expose', request: exposeBodySchema, response: z.object({ cidr: z.string() }) },
  /** `loom hide CIDR`: how many IPAM addresses were released. */
  hide: { method: 'POST', path: '/hide', request: hideBodySchema, response: z.object({ cidr: z.string(), released: z.number() }) },
});
