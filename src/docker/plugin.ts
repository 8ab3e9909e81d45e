/**
 * Docker's legacy remote network driver and IPAM driver (libnetwork's "remote" protocol: one JSON
 * POST per call on the plugin socket), as pure handlers: `handle(path, body)` returns the answer
 * or throws a LoomError, which the server turns into `{"Err": message}`.
 *
 * Contracts:
 * - Every request body is validated here (zod); a malformed one, an unknown network, endpoint or
 *   pool id gets a clear error and changes nothing.
 * - A call that creates something (an address, a veth) and then fails undoes it before answering.
 * - State (networks, endpoints, the IPAM id behind each address) is saved durably before the
 *   answer, so a router restarted at any point finds what Docker believes exists.
 * - Addresses come from Loom IPAM: only networks made with `--ipam-driver loom` are accepted by
 *   the network driver (Docker's default IPAM would hand every host the same 172.x addresses).
 * - Names are not in any call: the subsystem learns them from Docker's API and calls `nameEndpoint`.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LoomError } from '../core/errors.js';
import { formatCidr, networkOf, parseCidr, parseNetworkCidr, type NetworkCidr } from '../core/net.js';
import type { Logger } from '../core/logger.js';
import { macFromSeed, parseUnicastMac } from '../dataplane/addresses.js';
import type { ContainerAddresses } from '../containers/daemon.js';
import { decodePoolId, encodePoolId, parseRequestedPool, UNCHECKED_POOL } from './pools.js';
import type { DockerEndpoint, DockerStateData, DockerStateStore } from './state.js';

/** Loom's name in Docker: `-d loom`, `--ipam-driver loom`, the socket loom.sock. */
export const PLUGIN_NAME = 'loom';
export const ADDRESS_SPACE = 'loom';
/**
 * `docker network create -o loom.no-gateway-service=true`: no second interface on Docker's
 * docker_gwbridge (Docker adds one to every container of a network whose driver names no gateway,
 * for outbound traffic, as it did with Weave's plugin). Faster start, no outside access through Docker.
 */
export const NO_GATEWAY_OPTION = 'loom.no-gateway-service';
/** Docker names the container's interface DstPrefix + a number: ethwe0, as Weave's plugin did. */
export const CONTAINER_IFNAME_PREFIX = 'ethwe';

/** The veth pair of an endpoint (./links.ts on the OS). */
export interface EndpointLinks {
  /** Creates the pair, host end on the bridge and up, the other end with `mac`; idempotent per endpoint. */
  create(endpointId: string, mac: string): Promise<{ hostVeth: string; containerVeth: string }>;
  /** Deletes the pair by its host end; a missing link is fine. */
  remove(hostVeth: string): Promise<void>;
}

export interface DockerPluginComponents {
  addresses: ContainerAddresses;
  links: EndpointLinks;
  store: DockerStateStore;
  logger: Logger;
  /** Wall clock in ms (the join time kept per endpoint). */
  now?: () => number;
  /** After any change to the set of joined endpoints (the MACs to publish). */
  onEndpointsChanged?: (endpoints: DockerEndpoint[]) => void;
  /** An endpoint left or was deleted: its name goes. */
  onEndpointGone?: (endpoint: DockerEndpoint) => void;
}

export interface DockerPluginInit {
  /** Loom's allocation range, "a.b.c.d/n". */
  range: string;
  /** The subnet a network gets without --subnet (Loom's default subnet, else the range). */
  defaultSubnet: string;
}

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'an id of letters and digits');
const opts = z.record(z.string(), z.unknown()).nullish();

const createNetworkSchema = z.object({
  NetworkID: id,
  Options: opts,
  IPv4Data: z.array(z.object({ AddressSpace: z.string().max(64), Pool: z.string().max(40), Gateway: z.string().max(40).optional() }).passthrough()).max(16).nullish(),
  IPv6Data: z.array(z.unknown()).nullish(),
});
const networkSchema = z.object({ NetworkID: id });
const createEndpointSchema = z.object({
  NetworkID: id,
  EndpointID: id,
  Interface: z.object({ Address: z.string().max(40).optional(), AddressIPv6: z.string().max(64).optional(), MacAddress: z.string().max(40).optional() }).nullish(),
  Options: opts,
});
const endpointSchema = z.object({ NetworkID: id, EndpointID: id });
const joinSchema = z.object({ NetworkID: id, EndpointID: id, SandboxKey: z.string().max(4096), Options: opts });
const requestPoolSchema = z.object({ AddressSpace: z.string().max(64), Pool: z.string().max(40).default(''), SubPool: z.string().max(40).default(''), Options: opts, V6: z.boolean().default(false) });
const poolSchema = z.object({ PoolID: z.string().max(100) });
const requestAddressSchema = z.object({ PoolID: z.string().max(100), Address: z.string().max(40).default(''), Options: z.record(z.string(), z.string()).nullish() });
const releaseAddressSchema = z.object({ PoolID: z.string().max(100), Address: z.string().max(40) });

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new LoomError('ERR_INVALID_ARGUMENT', `malformed ${what} request: ${where}${issue?.message ?? 'invalid'}`);
}

export class DockerPlugin {
  private readonly addresses: ContainerAddresses;
  private readonly links: EndpointLinks;
  private readonly store: DockerStateStore;
  private readonly logger: Logger;
  private readonly components: DockerPluginComponents;
  private readonly range: string;
  private readonly defaultSubnet: NetworkCidr;
  /** One call at a time: each reads, changes and saves the whole state. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(components: DockerPluginComponents, init: DockerPluginInit) {
    this.components = components;
    this.addresses = components.addresses;
    this.links = components.links;
    this.store = components.store;
    this.logger = components.logger;
    this.range = formatCidr(parseNetworkCidr(init.range));
    this.defaultSubnet = parseNetworkCidr(init.defaultSubnet);
  }

  /** `path` is the URL path, e.g. "/NetworkDriver.Join". Serialized: calls never interleave. */
  handle(path: string, body: unknown): Promise<object> {
    const run = this.queue.then(() => this.dispatch(path, body));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async dispatch(path: string, body: unknown): Promise<object> {
    switch (path) {
      case '/Plugin.Activate':
        return { Implements: ['NetworkDriver', 'IpamDriver'] };
      case '/NetworkDriver.GetCapabilities':
        return { Scope: 'local', ConnectivityScope: 'global' };
      case '/NetworkDriver.CreateNetwork':
        return this.createNetwork(body);
      case '/NetworkDriver.DeleteNetwork':
        return this.deleteNetwork(body);
      case '/NetworkDriver.CreateEndpoint':
        return this.createEndpoint(body);
      case '/NetworkDriver.EndpointOperInfo':
        this.endpoint(this.store.load(), parse(endpointSchema, body, 'EndpointOperInfo'));
        return { Value: {} };
      case '/NetworkDriver.DeleteEndpoint':
        return this.deleteEndpoint(body);
      case '/NetworkDriver.Join':
        return this.join(body);
      case '/NetworkDriver.Leave':
        return this.leave(body);
      case '/NetworkDriver.ProgramExternalConnectivity':
      case '/NetworkDriver.RevokeExternalConnectivity':
        this.endpoint(this.store.load(), parse(endpointSchema, body, path.slice(15)));
        return {};
      case '/NetworkDriver.DiscoverNew':
      case '/NetworkDriver.DiscoverDelete':
      case '/NetworkDriver.AllocateNetwork':
      case '/NetworkDriver.FreeNetwork':
        return {};
      case '/IpamDriver.GetCapabilities':
        return { RequiresMACAddress: false, RequiresRequestReplay: false };
      case '/IpamDriver.GetDefaultAddressSpaces':
        return { LocalDefaultAddressSpace: ADDRESS_SPACE, GlobalDefaultAddressSpace: ADDRESS_SPACE };
      case '/IpamDriver.RequestPool':
        return this.requestPool(body);
      case '/IpamDriver.ReleasePool':
        decodePoolId(parse(poolSchema, body, 'ReleasePool').PoolID, this.defaultSubnet);
        return {};
      case '/IpamDriver.RequestAddress':
        return this.requestAddress(body);
      case '/IpamDriver.ReleaseAddress':
        return this.releaseAddress(body);
      default:
        throw new LoomError('ERR_NOT_FOUND', `Loom does not implement ${path.slice(0, 60)}`);
    }
  }

  // ----- IPAM --------------------------------------------------------------------------------

  private requestPool(body: unknown): object {
    const req = parse(requestPoolSchema, body, 'RequestPool');
    if (req.V6) throw new LoomError('ERR_INVALID_ARGUMENT', 'Loom has no IPv6 addresses: create the network without --ipv6');
    if (req.AddressSpace !== ADDRESS_SPACE) throw new LoomError('ERR_INVALID_ARGUMENT', `unknown address space ${JSON.stringify(req.AddressSpace.slice(0, 40))} (Loom's is "${ADDRESS_SPACE}")`);
    const pool = parseRequestedPool(req.Pool, req.SubPool, this.defaultSubnet, this.range, (c) => this.addresses.covers(parseCidr(c)));
    return { PoolID: encodePoolId(pool), Pool: pool.isDefault ? UNCHECKED_POOL : formatCidr(pool.subnet), Data: {} };
  }

  private async requestAddress(body: unknown): Promise<object> {
    const req = parse(requestAddressSchema, body, 'RequestAddress');
    const pool = decodePoolId(req.PoolID, this.defaultSubnet);
    let ipamId = `docker-${randomBytes(8).toString('hex')}`;
    let cidr: string;
    if (req.Address !== '') {
      // Named after the address: IPAM keeps a released address for its id a while, so the same
      // id lets `docker rm -f x; docker run --ip SAME` take it back at once.
      ipamId = `docker-ip-${req.Address}`;
      if (this.store.load().addresses[req.Address] !== undefined) throw new LoomError('ERR_CONFLICT', `address ${req.Address} is in use by another container`);
      const wanted = parseCidr(`${req.Address}/${pool.subnet.prefix}`);
      if (formatCidr(networkOf(wanted)) !== formatCidr(pool.subnet)) {
        throw new LoomError('ERR_INVALID_ARGUMENT', `address ${req.Address} is not in the network's subnet ${formatCidr(pool.subnet)}`);
      }
      cidr = formatCidr(await this.addresses.assign(ipamId, { kind: 'static', cidr: wanted }));
    } else {
      const got = await this.addresses.assign(ipamId, { kind: 'subnet', subnet: pool.range });
      // Allocated in the --ip-range, but the container's prefix is the subnet's.
      cidr = formatCidr({ address: got.address, prefix: pool.subnet.prefix });
    }
    const address = cidr.slice(0, cidr.indexOf('/'));
    try {
      const state = this.store.load();
      state.addresses[address] = ipamId;
      this.store.save(state);
    } catch (err) {
      await this.addresses.release(ipamId).catch(() => 0);
      throw err;
    }
    this.logger.debug({ address, ipamId, gateway: req.Options?.['RequestAddressType'] === 'com.docker.network.gateway' }, 'docker: address handed out');
    return { Address: cidr, Data: {} };
  }

  private async releaseAddress(body: unknown): Promise<object> {
    const req = parse(releaseAddressSchema, body, 'ReleaseAddress');
    decodePoolId(req.PoolID, this.defaultSubnet);
    const state = this.store.load();
    const ipamId = state.addresses[req.Address];
    if (ipamId === undefined) throw new LoomError('ERR_NOT_FOUND', `address ${req.Address.slice(0, 40)} was not handed out by Loom`);
    await this.addresses.release(ipamId);
    delete state.addresses[req.Address];
    this.store.save(state);
    return {};
  }

  // ----- network driver ----------------------------------------------------------------------

  private createNetwork(body: unknown): object {
    const req = parse(createNetworkSchema, body, 'CreateNetwork');
    if ((req.IPv6Data ?? []).length > 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'Loom networks are IPv4 only: create the network without --ipv6');
    const data = req.IPv4Data ?? [];
    if (data.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'a Loom network needs IPv4 addresses');
    const foreign = data.find((d) => d.AddressSpace !== ADDRESS_SPACE);
    if (foreign) throw new LoomError('ERR_INVALID_ARGUMENT', `Loom networks take their addresses from Loom: create it with --ipam-driver ${PLUGIN_NAME} (got address space ${JSON.stringify(foreign.AddressSpace.slice(0, 40))})`);
    const pools = data.map((d) => d.Pool);
    const generic = req.Options?.['com.docker.network.generic'];
    const noGateway = typeof generic === 'object' && generic !== null && (generic as Record<string, unknown>)[NO_GATEWAY_OPTION] === 'true';
    const state = this.store.load();
    state.networks[req.NetworkID] = { id: req.NetworkID, pools, ...(noGateway ? { noGatewayService: true } : {}) };
    this.store.save(state);
    this.logger.info({ networkId: req.NetworkID, pools: data.map((d) => d.Pool) }, 'docker: network created');
    return {};
  }

  private async deleteNetwork(body: unknown): Promise<object> {
    const req = parse(networkSchema, body, 'DeleteNetwork');
    const state = this.store.load();
    if (!state.networks[req.NetworkID]) throw new LoomError('ERR_NOT_FOUND', `no Loom network ${req.NetworkID.slice(0, 64)}`);
    const gone = Object.values(state.endpoints).filter((e) => e.networkId === req.NetworkID);
    for (const ep of gone) {
      if (ep.hostVeth !== null) await this.links.remove(ep.hostVeth);
      delete state.endpoints[ep.id];
    }
    delete state.networks[req.NetworkID];
    this.store.save(state);
    for (const ep of gone) this.components.onEndpointGone?.(ep);
    if (gone.length > 0) this.changed(state);
    this.logger.info({ networkId: req.NetworkID }, 'docker: network deleted');
    return {};
  }

  private createEndpoint(body: unknown): object {
    const req = parse(createEndpointSchema, body, 'CreateEndpoint');
    const state = this.store.load();
    if (!state.networks[req.NetworkID]) throw new LoomError('ERR_NOT_FOUND', `no Loom network ${req.NetworkID.slice(0, 64)}`);
    const address = req.Interface?.Address ?? '';
    if (address === '') throw new LoomError('ERR_INVALID_ARGUMENT', 'the endpoint has no IPv4 address (create the network with --ipam-driver loom)');
    const cidr = parseCidr(address, { minPrefix: 1 });
    if (!this.addresses.covers(cidr)) throw new LoomError('ERR_INVALID_ARGUMENT', `address ${formatCidr(cidr)} is not inside Loom's range ${this.range}`);
    const given = req.Interface?.MacAddress ?? '';
    const mac = given === '' ? macFromSeed(`docker:${req.EndpointID}`) : parseUnicastMac(given);
    const existing = state.endpoints[req.EndpointID];
    state.endpoints[req.EndpointID] = { id: req.EndpointID, networkId: req.NetworkID, cidr: formatCidr(cidr), mac, hostVeth: existing?.hostVeth ?? null, containerId: null, name: null };
    this.store.save(state);
    // Docker refuses a MAC in the answer when the request had one.
    return { Interface: given === '' ? { MacAddress: mac } : {} };
  }

  private async deleteEndpoint(body: unknown): Promise<object> {
    const req = parse(endpointSchema, body, 'DeleteEndpoint');
    const state = this.store.load();
    const ep = this.endpoint(state, req);
    if (ep.hostVeth !== null) await this.links.remove(ep.hostVeth);
    delete state.endpoints[ep.id];
    this.store.save(state);
    this.components.onEndpointGone?.(ep);
    this.changed(state);
    return {};
  }

  private async join(body: unknown): Promise<object> {
    const req = parse(joinSchema, body, 'Join');
    const state = this.store.load();
    const ep = this.endpoint(state, req);
    const { hostVeth, containerVeth } = await this.links.create(ep.id, ep.mac);
    try {
      ep.hostVeth = hostVeth;
      ep.joinedAt = this.now();
      this.store.save(state);
    } catch (err) {
      await this.links.remove(hostVeth);
      throw err;
    }
    this.changed(state);
    this.logger.info({ endpointId: ep.id, cidr: ep.cidr, hostVeth }, 'docker: endpoint joined');
    const noGateway = state.networks[req.NetworkID]?.noGatewayService === true;
    return { InterfaceName: { SrcName: containerVeth, DstPrefix: CONTAINER_IFNAME_PREFIX }, ...(noGateway ? { DisableGatewayService: true } : {}) };
  }

  private async leave(body: unknown): Promise<object> {
    const req = parse(endpointSchema, body, 'Leave');
    const state = this.store.load();
    const ep = this.endpoint(state, req);
    if (ep.hostVeth !== null) await this.links.remove(ep.hostVeth);
    const left = { ...ep };
    ep.hostVeth = null;
    ep.containerId = null;
    ep.name = null;
    this.store.save(state);
    this.components.onEndpointGone?.(left);
    this.changed(state);
    return {};
  }

  // ----- names (from the subsystem) ------------------------------------------------------------

  /** Records the container and name of a joined endpoint; false if the endpoint is unknown. Serialized with the calls. */
  nameEndpoint(endpointId: string, containerId: string, name: string): Promise<DockerEndpoint | null> {
    const run = this.queue.then(() => {
      const state = this.store.load();
      const ep = state.endpoints[endpointId];
      if (!ep || ep.hostVeth === null) return null;
      ep.containerId = containerId;
      ep.name = name;
      this.store.save(state);
      return { ...ep };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Frees a joined endpoint whose container Docker no longer runs (it was removed while the router
   * was away, so Leave, DeleteEndpoint and ReleaseAddress never arrived): veth, record, address,
   * name. An endpoint joined less than `minAgeMs` ago is kept (its container may be starting).
   */
  forgetStale(endpointId: string, now: number, minAgeMs = 30_000): Promise<boolean> {
    const run = this.queue.then(async () => {
      const state = this.store.load();
      const ep = state.endpoints[endpointId];
      if (!ep || ep.hostVeth === null || now - (ep.joinedAt ?? 0) < minAgeMs) return false;
      await this.links.remove(ep.hostVeth);
      delete state.endpoints[endpointId];
      const address = ep.cidr.split('/')[0]!;
      const ipamId = state.addresses[address];
      if (ipamId !== undefined) {
        await this.addresses.release(ipamId).catch(() => 0);
        delete state.addresses[address];
      }
      this.store.save(state);
      this.components.onEndpointGone?.(ep);
      this.changed(state);
      this.logger.info({ endpointId, cidr: ep.cidr }, 'docker: endpoint of a container that is gone freed');
      return true;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Endpoints joined to a container now. */
  joinedEndpoints(): DockerEndpoint[] {
    return Object.values(this.store.load().endpoints).filter((e) => e.hostVeth !== null);
  }

  private endpoint(state: DockerStateData, req: { NetworkID: string; EndpointID: string }): DockerEndpoint {
    if (!state.networks[req.NetworkID]) throw new LoomError('ERR_NOT_FOUND', `no Loom network ${req.NetworkID.slice(0, 64)}`);
    const ep = state.endpoints[req.EndpointID];
    if (!ep || ep.networkId !== req.NetworkID) throw new LoomError('ERR_NOT_FOUND', `no endpoint ${req.EndpointID.slice(0, 64)} on Loom network ${req.NetworkID.slice(0, 12)}`);
    return ep;
  }

  private now(): number {
    return this.components.now?.() ?? Date.now();
  }

  private changed(state: DockerStateData): void {
    this.components.onEndpointsChanged?.(Object.values(state.endpoints).filter((e) => e.hostVeth !== null));
  }
}
