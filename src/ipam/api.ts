/**
 * The IPAM HTTP contract: request and response schemas of its routes, shared by the server side
 * (./daemon-api.ts) and the typed client (src/client). `/ipam/status` answers the IpamStatus of
 * ./status.ts (also the `ipam` section of `/report`), described field by field below.
 *
 *   POST /ipam/allocate  { containerId, spec? } -> { containerId, address, cidr }
 *   POST /ipam/claim     { containerId, cidr }  -> { containerId, address, cidr }
 *   POST /ipam/release   { containerId }        -> { released }
 *   GET  /ipam/lookup    ?containerId=          -> { containerId, cidrs }   (ERR_NOT_FOUND when none)
 *   POST /ipam/rmpeer    { peers, force? }      -> { removed, heir, moved }
 *   POST /ipam/reset     { force? }             -> { heir, moved }
 */
import { z } from 'zod';
import { defineRoutes, type SameType } from '../api/contract.js';
import { peerNameSchema } from '../api/router-api.js';
import { addressSpecSchema } from '../api/validate.js';
import type { IpamStatus } from './daemon-types.js';

const containerId = z.string().min(1).max(128);
/** Any address form (core/address-spec.ts), parsed here on the server side. */
const spec = addressSpecSchema;
const cidr = z.string().min(1).max(64);

export const ipamContainerIdSchema = containerId;
export const ipamAllocateBodySchema = z.object({ containerId, spec: spec.optional() }).strict();
export const ipamClaimBodySchema = z.object({ containerId, cidr }).strict();
export const ipamReleaseBodySchema = z.object({ containerId }).strict();
export const ipamLookupQuerySchema = z.object({ containerId });
export const ipamRmpeerBodySchema = z.object({ peers: z.array(z.string().min(1).max(64)).min(1).max(1000), force: z.boolean().optional() }).strict();
export const ipamResetBodySchema = z.object({ force: z.boolean().optional() }).strict();

const allocationSchema = z.object({ containerId: z.string(), address: z.string(), cidr: z.string() });

const count = z.number().int().min(0);

/** `/ipam/status` (and `ipam` in `/report`): ./status.ts IpamStatus. */
export const ipamStatusSchema = z.object({
  self: peerNameSchema,
  range: z.string(),
  defaultSubnet: z.string().nullable(),
  mode: z.string(),
  state: z.string(),
  rangeSize: count,
  peers: z.array(
    z.object({
      name: peerNameSchema,
      nickname: z.string().optional(),
      owned: count,
      inUse: count.nullable(),
      free: count.nullable(),
      reachable: z.boolean(),
    }),
  ),
  unreachableOwners: z.array(peerNameSchema),
  allocations: count,
  releasedInGrace: count,
  pendingAllocations: count,
  rangeMismatches: z.array(z.object({ range: z.string(), peers: z.array(peerNameSchema), count, lastSeenAt: z.number() })),
});

export const IPAM_ROUTES = defineRoutes({
  status: { method: 'GET', path: '/ipam/status', response: ipamStatusSchema },
  allocate: { method: 'POST', path: '/ipam/allocate', request: ipamAllocateBodySchema, response: allocationSchema },
  claim: { method: 'POST', path: '/ipam/claim', request: ipamClaimBodySchema, response: allocationSchema },
  release: { method: 'POST', path: '/ipam/release', request: ipamReleaseBodySchema, response: z.object({ released: z.number() }) },
  lookup: { method: 'GET', path: '/ipam/lookup', request: ipamLookupQuerySchema, response: z.object({ containerId: z.string(), cidrs: z.array(z.string()) }) },
  rmpeer: { method: 'POST', path: '/ipam/rmpeer', request: ipamRmpeerBodySchema, response: z.object({ removed: z.array(z.string()), heir: z.string(), moved: z.number() }) },
  reset: { method: 'POST', path: '/ipam/reset', request: ipamResetBodySchema, response: z.object({ heir: z.string().nullable(), moved: z.number() }) },
});

// The schema and the type the subsystem reports are the same shape (compile-time only).
const ipamStatusMatches: SameType<z.output<typeof ipamStatusSchema>, IpamStatus> = true;
void ipamStatusMatches;
