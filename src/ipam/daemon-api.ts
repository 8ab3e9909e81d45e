/**
 * The IPAM subsystem's face on the local API: allocate/claim/release/lookup, status, rmpeer,
 * reset and the `loom_ipam_*` metrics (`report()` is the `ipam` section of `/report`, added by the daemon). Bodies are checked here
 * (shape and lengths, zod) and then by the subsystem (ids, CIDRs, peer names); both throw
 * ERR_INVALID_ARGUMENT. Every answer that reports a change is sent after the change is durable.
 */
import { z } from 'zod';
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { LoomError } from '../core/errors.js';
import type { IpamSubsystem } from './daemon.js';
import { createIpamMetrics } from './daemon-metrics.js';
import type { IpamReleaseResult } from './daemon-types.js';

const containerId = z.string().min(1).max(128);
const spec = z.string().max(64);
const cidr = z.string().min(1).max(64);

export const ipamAllocateBodySchema = z.object({ containerId, spec: spec.optional() }).strict();
export const ipamClaimBodySchema = z.object({ containerId, cidr }).strict();
export const ipamReleaseBodySchema = z.object({ containerId }).strict();
export const ipamRmpeerBodySchema = z.object({ peers: z.array(z.string().min(1).max(64)).min(1).max(1000), force: z.boolean().optional() }).strict();
export const ipamResetBodySchema = z.object({ force: z.boolean().optional() }).strict();

export function registerIpamApi(api: ApiServer, ipam: IpamSubsystem): void {
  api.registerMetrics('ipam', createIpamMetrics(() => ipam.report()));

  api.route('GET', '/ipam/status', () => ({ json: ipam.report() }));

  api.route('POST', '/ipam/allocate', async (req) => {
    const body = parseWith(ipamAllocateBodySchema, await req.body(), 'allocate request');
    return { json: await ipam.allocateResult(body.containerId, body.spec) };
  });

  api.route('POST', '/ipam/claim', async (req) => {
    const body = parseWith(ipamClaimBodySchema, await req.body(), 'claim request');
    const claimed = await ipam.claim(body.containerId, body.cidr);
    return { json: { containerId: body.containerId, address: claimed.slice(0, claimed.indexOf('/')), cidr: claimed } };
  });

  api.route('POST', '/ipam/release', async (req) => {
    const body = parseWith(ipamReleaseBodySchema, await req.body(), 'release request');
    const result: IpamReleaseResult = { released: await ipam.release(body.containerId) };
    return { json: result };
  });

  api.route('GET', '/ipam/lookup', (req) => {
    const id = parseWith(containerId, req.query.get('containerId') ?? undefined, 'containerId parameter');
    const result = ipam.lookupResult(id);
    if (result.cidrs.length === 0) throw new LoomError('ERR_NOT_FOUND', `container ${id} has no address here`);
    return { json: result };
  });

  api.route('POST', '/ipam/rmpeer', async (req) => {
    const body = parseWith(ipamRmpeerBodySchema, await req.body(), 'rmpeer request');
    return { json: await ipam.rmpeer(body.peers, body.force === undefined ? {} : { force: body.force }) };
  });

  api.route('POST', '/ipam/reset', async (req) => {
    const body = parseWith(ipamResetBodySchema, (await req.body()) ?? {}, 'reset request');
    return { json: await ipam.reset(body.force === undefined ? {} : { force: body.force }) };
  });
}
