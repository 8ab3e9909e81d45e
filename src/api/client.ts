import { LoomError } from '../core/errors.js';
import type { RouterStatus } from '../mesh/types.js';
import type { DnsAddResult, DnsLookupResult, DnsRemoveResult, DnsReport } from '../dns/daemon-types.js';
import { DNS_ROUTES } from '../dns/api.js';
import type { z } from 'zod';
import { typedClient, type TypedClient } from './contract.js';
import { ROUTER_ROUTES } from './router-api.js';
import { HttpTransport } from './transport.js';

export { DEFAULT_HTTP_ADDR } from '../core/endpoints.js';
export { apiEndpoint, HttpTransport, type ApiClientInit, type ApiEndpoint } from './transport.js';

/** `/report`: the router plus whatever sections other subsystems registered. */
export type Report = z.output<typeof ROUTER_ROUTES.report.response>;

/**
 * The router's endpoints on the HTTP transport (./transport.ts), typed from their tables; the
 * typed client (src/client LoomClient) adds the subsystems' tables. Answers are parsed with the
 * response schemas (./contract.ts).
 */
export class ApiClient extends HttpTransport {
  /** The DNS routes, typed from their table (src/dns/api.ts). */
  protected readonly dnsRoutes: TypedClient<typeof DNS_ROUTES> = typedClient(this, DNS_ROUTES);
  /** The router's own routes, typed from their table (./router-api.ts). */
  protected readonly routerRoutes: TypedClient<typeof ROUTER_ROUTES> = typedClient(this, ROUTER_ROUTES);

  status(): Promise<RouterStatus> {
    return this.routerRoutes.status();
  }

  report(): Promise<Report> {
    return this.routerRoutes.report();
  }

  connect(peers: string[], replace = false): Promise<{ targets: string[] }> {
    return this.routerRoutes.connect({ peers, ...(replace ? { replace } : {}) });
  }

  forget(peers: string[]): Promise<{ targets: string[] }> {
    return this.routerRoutes.forget({ peers });
  }

  stop(): Promise<{ stopping: boolean }> {
    return this.routerRoutes.stop();
  }

  /** POST /dns/records: `name` (a single label gets the domain) -> `address` for this host. */
  dnsAdd(record: { name: string; address: string; containerId?: string }): Promise<DnsAddResult> {
    return this.dnsRoutes.add(record);
  }

  /** POST /dns/records/remove: this host's records matching every field given. */
  dnsRemove(filter: { name?: string; address?: string; containerId?: string }): Promise<DnsRemoveResult> {
    return this.dnsRoutes.remove(filter);
  }

  /** GET /dns/lookup; ERR_NOT_FOUND when the name has no records. */
  dnsLookup(name: string): Promise<DnsLookupResult> {
    return this.dnsRoutes.lookup({ name });
  }

  dnsStatus(): Promise<DnsReport> {
    return this.dnsRoutes.status();
  }

  metrics(): Promise<string> {
    return this.routerRoutes.metrics();
  }

  /** True when the daemon answers /healthz; false when nothing listens. Other failures throw. */
  async healthy(): Promise<boolean> {
    try {
      await this.routerRoutes.healthz();
      return true;
    } catch (err) {
      if (err instanceof LoomError && err.code === 'ERR_UNAVAILABLE') return false;
      throw err;
    }
  }
}
