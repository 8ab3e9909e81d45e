/**
 * The IPAM subsystem's face on the local API: the routes of its contract (./api.ts) and the
 * `loom_ipam_*` metrics (`report()` is the `ipam` section of `/report`, added by the daemon).
 * Bodies are checked here (shape and lengths, zod) and then by the subsystem (ids, CIDRs, peer names); both throw
 * ERR_INVALID_ARGUMENT. Every answer that reports a change is sent after the change is durable.
 */
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { LoomError } from '../core/errors.js';
import type { IpamSubsystem } from './daemon.js';
import { createIpamMetrics } from './daemon-metrics.js';
import type { IpamReleaseResult } from './daemon-types.js';
import { IPAM_ROUTES, ipamAllocateBodySchema, ipamClaimBodySchema, ipamContainerIdSchema, ipamReleaseBodySchema, ipamResetBodySchema, ipamRmpeerBodySchema } from './api.js';

export function registerIpamApi(api: ApiServer, ipam: IpamSubsystem): void {
  api.registerMetrics('ipam', createIpamMetrics(() => ipam.report()));

  api.route(IPAM_ROUTES.status.method, IPAM_ROUTES.status.path, () => ({ json: ipam.report() }));

  api.route(IPAM_ROUTES.allocate.method, IPAM_ROUTES.allocate.path, async (req) => {
    const body = parseWith(ipamAllocateBodySchema, await req.body(), 'allocate request');
    return { json: await ipam.allocateResult(body.containerId, body.spec) };
  });

  api.route(IPAM_ROUTES.claim.method, IPAM_ROUTES.claim.path, async (req) => {
    const body = parseWith(ipamClaimBodySchema, await req.body(), 'claim request');
    const claimed = await ipam.claim(body.containerId, body.cidr);
    return { json: { containerId: body.containerId, address: claimed.slice(0, claimed.indexOf('/')), cidr: claimed } };
  });

  api.route(IPAM_ROUTES.release.method, IPAM_ROUTES.release.path, async (req) => {
    const body = parseWith(ipamReleaseBodySchema, await req.body(), 'release request');
    const result: IpamReleaseResult = { released: await ipam.release(body.containerId) };
    return { json: result };
  });

  api.route(IPAM_ROUTES.lookup.method, IPAM_ROUTES.lookup.path, (req) => {
    const id = parseWith(ipamContainerIdSchema, req.query.get('containerId') ?? undefined, 'containerId parameter');
    const result = ipam.lookupResult(id);
    if (result.cidrs.length === 0) throw new LoomError('ERR_NOT_FOUND', `container ${id} has no address here`);
    return { json: result };
  });

  api.route(IPAM_ROUTES.rmpeer.method, IPAM_ROUTES.rmpeer.path, async (req) => {
    const body = parseWith(ipamRmpeerBodySchema, await req.body(), 'rmpeer request');
    return { json: await ipam.rmpeer(body.peers, body.force === undefined ? {} : { force: body.force }) };
  });

  api.route(IPAM_ROUTES.reset.method, IPAM_ROUTES.reset.path, async (req) => {
    const body = parseWith(ipamResetBodySchema, (await req.body()) ?? {}, 'reset request');
    return { json: await ipam.reset(body.force === undefined ? {} : { force: body.force }) };
  });
}
