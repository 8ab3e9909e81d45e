/**
 * The typed client of the daemon's local API: the router's endpoints (ApiClient) plus one typed
 * client per subsystem route table, each method checked at compile time against its request
 * schema and parsing the answer with its response schema at run time. The CLI, the demo and
 * the tests reach the daemon through this; `call` stays for tests that send malformed bodies.
 * The router's routes too (`router`, and the older `status()`/`report()`/... on ApiClient).
 */
import { ApiClient, type ApiClientInit } from '../api/client.js';
import { typedClient, type TypedClient } from '../api/contract.js';
import { ROUTER_ROUTES } from '../api/router-api.js';
import { EVENT_ROUTES } from '../api/events-api.js';
import { CNI_ROUTES } from '../cni/api.js';
import { CONTAINER_ROUTES } from '../containers/api.js';
import { DOCKER_ROUTES } from '../docker/api.js';
import { HOST_ADDRESS_ROUTES } from '../daemon/host-address-api.js';
import { DNS_ROUTES } from '../dns/api.js';
import { IPAM_ROUTES } from '../ipam/api.js';

/**
 * Every route table of the daemon's API, by the name of its typed client on LoomClient. A route
 * the daemon registers that is in none of these has no contract (test/unit/api/route-coverage.test.ts).
 */
export const API_ROUTE_TABLES = {
  router: ROUTER_ROUTES,
  containers: CONTAINER_ROUTES,
  ipam: IPAM_ROUTES,
  dns: DNS_ROUTES,
  hostAddress: HOST_ADDRESS_ROUTES,
  cni: CNI_ROUTES,
  docker: DOCKER_ROUTES,
  events: EVENT_ROUTES,
} as const;

export class LoomClient extends ApiClient {
  /** The router's own endpoints (src/api/router-api.ts); `status()`, `report()`, `connect()`... are the same routes. */
  readonly router: TypedClient<typeof ROUTER_ROUTES>;
  /** `loom run / ps / attach / detach / rm` (src/containers/api.ts). */
  readonly containers: TypedClient<typeof CONTAINER_ROUTES>;
  /** `/ipam/*` (src/ipam/api.ts). */
  readonly ipam: TypedClient<typeof IPAM_ROUTES>;
  /** `/dns/*` (src/dns/api.ts); `dnsAdd` and friends are the same routes. */
  readonly dns: TypedClient<typeof DNS_ROUTES>;
  /** `loom expose / hide` (src/daemon/host-address-api.ts). */
  readonly hostAddress: TypedClient<typeof HOST_ADDRESS_ROUTES>;
  /** The router side of loom-cni (src/cni/api.ts): `/cni/*`. */
  readonly cni: TypedClient<typeof CNI_ROUTES>;

  /** `loom attach` of a Docker container (src/docker/api.ts). */
  readonly docker: TypedClient<typeof DOCKER_ROUTES>;
  /** The event log and the live page (src/api/events-api.ts): `/events`, `/ui`, `/ui/events`. */
  readonly events: TypedClient<typeof EVENT_ROUTES>;

  constructor(init: ApiClientInit = {}) {
    super(init);
    this.router = this.routerRoutes;
    this.docker = typedClient(this, DOCKER_ROUTES);
    this.events = typedClient(this, EVENT_ROUTES);
    this.containers = typedClient(this, CONTAINER_ROUTES);
    this.ipam = typedClient(this, IPAM_ROUTES);
    this.hostAddress = typedClient(this, HOST_ADDRESS_ROUTES);
    this.cni = typedClient(this, CNI_ROUTES);
    this.dns = this.dnsRoutes;
  }
}

export { ApiClient, DEFAULT_HTTP_ADDR, apiEndpoint, type ApiClientInit, type ApiEndpoint, type Report } from '../api/client.js';
export { DEFAULT_API_SOCKET } from '../api/validate.js';
export type { ContainerListJson, ContainerRecordJson, AttachmentJson, ContainerRowJson } from '../containers/api.js';
