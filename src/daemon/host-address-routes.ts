/**
 * The host address's endpoints (`loom expose` / `loom hide`). Without the host-address subsystem
 * (no kernel data plane) both answer ERR_UNAVAILABLE. Bodies: src/daemon/host-address-api.ts.
 */
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { LoomError } from '../core/errors.js';
import { exposeBodySchema, HOST_ADDRESS_ROUTES, hideBodySchema } from './host-address-api.js';

/** The host's extra overlay addresses (HostAddressSubsystem); null when it does not run. */
export interface HostExposure {
  /** Idempotent; "a.b.c.d/n" on the bridge. */
  expose(address?: string): Promise<string>;
  /** Returns how many IPAM addresses were released (0 for an address outside the range). */
  hide(cidr: string): Promise<number>;
}

export function registerExposeRoutes(server: ApiServer, exposure: HostExposure | null): void {
  const require = (): HostExposure => {
    if (!exposure) throw new LoomError('ERR_UNAVAILABLE', 'expose needs the kernel data plane (the loom bridge) on this host');
    return exposure;
  };
  const { expose, hide } = HOST_ADDRESS_ROUTES;
  server.route(expose.method, expose.path, async (req) => {
    const body = parseWith(exposeBodySchema, (await req.body()) ?? {}, 'expose request');
    return { json: { cidr: await require().expose(body.address) } };
  });
  server.route(hide.method, hide.path, async (req) => {
    const body = parseWith(hideBodySchema, await req.body(), 'hide request');
    return { json: { cidr: body.cidr, released: await require().hide(body.cidr) } };
  });
}
