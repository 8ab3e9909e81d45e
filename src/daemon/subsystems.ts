/**
 * The composition root: every subsystem of the daemon, built in start order (stopped in reverse),
 * each constructed with the others it needs as typed dependencies. This is the one place that
 * knows who depends on whom; no subsystem looks another up at run time.
 *
 *   events        router, api                       (routes: src/api/ui-routes.ts: /events, /ui, /ui/events)
 *   ipam          router, api, events               (routes: src/ipam/daemon-api.ts)
 *   dns           router, api                       (routes: src/dns/daemon-api.ts)
 *   dataplane     router, events                    (report section only)
 *   host-address  dataplane (its bridge), ipam?, dns?   (routes: ./host-address-routes.ts)
 *   containers    dataplane? (MACs, bridge, MTU), dns?, ipam?, host-address? (resolver), events
 *                                                   (routes: src/containers/routes.ts)
 *   cni           dataplane? (MACs, bridge, MTU), dns?, ipam?, host-address? (gateway, resolver)
 *                                                   (routes: src/cni/routes.ts)
 *   kube          router (connect/forget, mesh), ipam? (rmpeer)   only with --kube-peers; loads lazily
 *   docker        dataplane (bridge, MTU, MACs), ipam, dns?   (routes: src/docker/routes.ts)
 *
 * A subsystem the config turns off is null, and whoever would use it is built without it.
 * Every subsystem that reports state changes writes them to the events subsystem's log (an
 * `EventSink`, src/core/events.ts); a list of factories without it gets a sink that drops them.
 */
import { DEFAULT_API_SOCKET } from '../api/validate.js';
import { CNI_SUBSYSTEM, CniSubsystem } from '../cni/daemon.js';
import { registerCniRoutes } from '../cni/routes.js';
import { registerContainerRoutes } from '../containers/routes.js';
import { CONTAINERS_SUBSYSTEM, ContainersSubsystem, type DaemonContainerEvent } from '../containers/daemon.js';
import { DEFAULT_SETTINGS } from '../dataplane/controller/settings.js';
import { createDataplaneMetrics } from '../dataplane/controller/metrics.js';
import { createDataplaneSubsystem, DATAPLANE_SUBSYSTEM, type DataplaneSubsystem } from '../dataplane/controller/subsystem.js';
import { createDnsSubsystem, type DnsFactoryOverrides } from '../dns/daemon-factory.js';
import { DNS_SUBSYSTEM, type DnsSubsystem } from '../dns/daemon.js';
import { createIpamSubsystem, type IpamFactoryOverrides } from '../ipam/daemon-factory.js';
import { IPAM_SUBSYSTEM, type IpamSubsystem } from '../ipam/daemon.js';
import { KUBE_SUBSYSTEM } from '../kube/launch-options.js';
import { LazyKubeSubsystem } from '../kube/lazy.js';
import type { KubeSubsystemInit } from '../kube/subsystem.js';
import { DOCKER_SUBSYSTEM, DockerSubsystem } from '../docker/daemon.js';
import { registerDockerRoutes } from '../docker/routes.js';
import { HOST_ADDRESS_SUBSYSTEM, HostAddressSubsystem } from './host-address.js';
import { LocalMacSources } from './local-macs.js';
import { registerExposeRoutes } from './host-address-routes.js';
import type { Cidr } from '../core/net.js';
import { nullEventSink, type EventInput, type EventSink } from '../core/events.js';
import { EVENTS_SUBSYSTEM, EventsSubsystem } from './events.js';
import type { SubsystemComponents, SubsystemFactory } from './subsystem.js';

/** What the launch options do not set (tests, benchmarks). */
export interface SubsystemOverrides {
  ipam?: IpamFactoryOverrides;
  dns?: DnsFactoryOverrides;
  /** Timers of the kube subsystem (tests: a short reclaim interval and watch). */
  kube?: Pick<KubeSubsystemInit, 'reclaimIntervalMs' | 'watchTimeoutSeconds' | 'reclaimLeaseMs'>;
}

export function buildEvents(c: SubsystemComponents): EventsSubsystem {
  return new EventsSubsystem({ router: c.router, api: c.api, clock: c.clock, logger: c.logger });
}

export function buildIpam(c: SubsystemComponents, overrides?: IpamFactoryOverrides, events: EventSink = nullEventSink): IpamSubsystem {
  return createIpamSubsystem({ ...c, events }, {
    options: c.config.ipam,
    stateDir: c.stateDir.path,
    peerNameFile: c.stateDir.peerNameFile,
    expectedPeers: c.config.peers.length + 1,
    ...(overrides === undefined ? {} : { overrides }),
  });
}

export function buildDns(c: SubsystemComponents, overrides?: DnsFactoryOverrides): DnsSubsystem | null {
  return createDnsSubsystem(c, c.config.dns, overrides);
}

export function buildDataplane(c: SubsystemComponents, events: EventSink = nullEventSink): DataplaneSubsystem | null {
  // Validated at the edge (options.ts); port 0 (tests: the kernel picks) closes nothing in the guard.
  const apiPort = Number(/:(\d{1,5})$/.exec(c.config.httpAddr)?.[1] ?? 0);
  const dataplane = createDataplaneSubsystem({ ...c, events }, { options: c.config.dataplane, port: c.config.port, encrypted: c.config.password !== undefined, stateDir: c.stateDir.path, egressRange: c.config.ipam.range, apiPort });
  if (dataplane) c.api.registerMetrics(DATAPLANE_SUBSYSTEM, createDataplaneMetrics(() => dataplane.metricsSnapshot((peer) => c.router.mesh.nicknameOf(peer))));
  return dataplane;
}

/**
 * Runs only with the kernel data plane (the bridge is there to carry the address; in the host's
 * initial namespace, where unit-test daemons run, it is off) and with IPAM or DNS. The expose
 * routes are registered either way (without it they answer ERR_UNAVAILABLE).
 */
export function buildHostAddress(c: Pick<SubsystemComponents, 'api' | 'clock' | 'logger' | 'config'>, deps: { dataplane: DataplaneSubsystem | null; ipam: IpamSubsystem | null; dns: DnsSubsystem | null }): HostAddressSubsystem | null {
  const { dataplane, ipam, dns } = deps;
  const hostAddress =
    dataplane && (ipam || dns)
      ? new HostAddressSubsystem(
          { clock: c.clock, logger: c.logger, ...(ipam ? { ipam } : {}), ...(dns ? { dns } : {}) },
          { bridge: dataplane.controller.settings.bridge, ...(c.config.dns.listenAddresses[0] === undefined ? {} : { fixedNameserver: c.config.dns.listenAddresses[0] }) },
        )
      : null;
  registerExposeRoutes(c.api, hostAddress);
  return hostAddress;
}

export function buildContainers(
  c: SubsystemComponents,
  deps: { macs: LocalMacSources; dataplane: DataplaneSubsystem | null; dns: DnsSubsystem | null; ipam: IpamSubsystem | null; hostAddress: HostAddressSubsystem | null; events?: EventSink },
): ContainersSubsystem {
  const { macs, dataplane, dns, ipam, hostAddress, events } = deps;
  const containers = new ContainersSubsystem(
    {
      clock: c.clock,
      logger: c.logger,
      ...(dataplane ? { macs: macs.source(CONTAINERS_SUBSYSTEM) } : {}),
      ...(dns ? { dns } : {}),
      ...(ipam ? { ipam } : {}),
      ...(hostAddress ? { resolver: () => hostAddress.resolver(), gateway: (cidr: Cidr) => hostAddress.gatewayFor(cidr) } : {}),
    },
    { stateDir: c.stateDir.path, ...(dataplane ? { bridge: dataplane.controller.settings.bridge, mtu: dataplane.controller.settings.mtu } : {}) },
  );
  registerContainerRoutes(c.api, containers);
  if (events) containers.onContainerEvent((e) => events.emit(containerEvent(e)));
  return containers;
}

/** A `loom run` container's start, death or removal as an event. */
export function containerEvent(e: DaemonContainerEvent): EventInput {
  const c = e.container;
  const where = `${c.cidrs.length > 0 ? c.cidrs.join(', ') : 'no address'}, MAC ${c.mac}`;
  switch (e.type) {
    case 'started':
      return { kind: 'container-started', container: c.name, text: `container ${c.name} started (${where})` };
    case 'died':
      return { kind: 'container-stopped', container: c.name, text: `container ${c.name} exited (${where})` };
    case 'removed':
      return { kind: 'container-stopped', container: c.name, text: `container ${c.name} removed` };
    case 'detached':
      return { kind: 'container-stopped', container: c.name, text: `container ${c.name} detached from the network` };
    default: {
      const never: never = e;
      return never;
    }
  }
}

/** The router side of the CNI plugin; its routes answer whether or not the data plane runs. */
export function buildCni(
  c: SubsystemComponents,
  deps: { macs: LocalMacSources; dataplane: DataplaneSubsystem | null; dns: DnsSubsystem | null; ipam: IpamSubsystem | null; hostAddress: HostAddressSubsystem | null },
): CniSubsystem {
  const { macs, dataplane, dns, ipam, hostAddress } = deps;
  const settings = dataplane?.controller.settings;
  const cni = new CniSubsystem(
    {
      clock: c.clock,
      logger: c.logger,
      ...(dataplane ? { macs: macs.source(CNI_SUBSYSTEM) } : {}),
      ...(dns ? { dns } : {}),
      ...(ipam
        ? {
            ipam,
            ipamReady: () => {
              const state = ipam.report().state;
              return state === 'ready' ? { ready: true } : { ready: false, reason: `Loom IPAM is ${state}` };
            },
          }
        : {}),
      ...(hostAddress ? { resolver: () => hostAddress.resolver() } : {}),
    },
    { stateDir: c.stateDir.path, bridge: settings?.bridge ?? DEFAULT_SETTINGS.bridge, mtu: settings?.mtu ?? DEFAULT_SETTINGS.mtu },
  );
  registerCniRoutes(c.api, cni, { socket: c.config.apiSocket ?? DEFAULT_API_SOCKET });
  return cni;
}

/** Last in start order: the router and IPAM are up when it first connects peers or reclaims space. */
export function buildKube(c: SubsystemComponents, deps: { ipam: IpamSubsystem | null }, overrides?: SubsystemOverrides['kube']): LazyKubeSubsystem | null {
  if (c.config.kube === null) return null;
  return new LazyKubeSubsystem(
    { router: c.router, clock: c.clock, logger: c.logger, ...(deps.ipam ? { ipam: deps.ipam } : {}) },
    { ...overrides, config: c.config.kube, port: c.config.port },
  );
}

/**
 * Docker's network and IPAM drivers need the bridge (kernel data plane) and IPAM; off with
 * --no-docker. Whether a Docker daemon is there (and in our namespace) is found out at run time.
 * The routes are registered either way (without it they answer ERR_UNAVAILABLE).
 */
export function buildDocker(
  c: SubsystemComponents,
  deps: { macs: LocalMacSources; dataplane: DataplaneSubsystem | null; dns: DnsSubsystem | null; ipam: IpamSubsystem | null; hostAddress?: HostAddressSubsystem | null },
): DockerSubsystem | null {
  const { macs, dataplane, dns, ipam, hostAddress } = deps;
  const docker =
    c.config.docker.enabled && dataplane && ipam
      ? new DockerSubsystem(
          { clock: c.clock, logger: c.logger, addresses: ipam, macs: macs.source(DOCKER_SUBSYSTEM), ...(dns ? { dns } : {}), ...(hostAddress ? { resolver: () => hostAddress.resolver() } : {}) },
          {
            config: c.config.docker,
            stateDir: c.stateDir.path,
            bridge: dataplane.controller.settings.bridge,
            mtu: dataplane.controller.settings.mtu,
            range: c.config.ipam.range,
            defaultSubnet: c.config.ipam.defaultSubnet ?? c.config.ipam.range,
          },
        )
      : null;
  registerDockerRoutes(c.api, docker);
  return docker;
}

/**
 * The daemon's subsystems for one daemon, in start order. Each factory runs once (the daemon runs
 * them in order, before the router starts) and keeps what it built for the ones after it.
 */
export function createSubsystems(overrides: SubsystemOverrides = {}): readonly SubsystemFactory[] {
  let events: EventsSubsystem | null = null;
  const sink = (): EventSink => events?.log ?? nullEventSink;
  let ipam: IpamSubsystem | null = null;
  let dns: DnsSubsystem | null = null;
  let dataplane: DataplaneSubsystem | null = null;
  let hostAddress: HostAddressSubsystem | null = null;
  // Every source of local MACs (containers; Docker and CNI endpoints) feeds the data plane through this.
  let macs = new LocalMacSources(undefined);
  return [
    { name: EVENTS_SUBSYSTEM, create: (c) => (events = buildEvents(c)) },
    { name: IPAM_SUBSYSTEM, create: (c) => (ipam = buildIpam(c, overrides.ipam, sink())) },
    { name: DNS_SUBSYSTEM, create: (c) => (dns = buildDns(c, overrides.dns)) },
    {
      name: DATAPLANE_SUBSYSTEM,
      create: (c) => {
        dataplane = buildDataplane(c, sink());
        macs = new LocalMacSources(dataplane?.controller);
        return dataplane;
      },
    },
    { name: HOST_ADDRESS_SUBSYSTEM, create: (c) => (hostAddress = buildHostAddress(c, { dataplane, ipam, dns })) },
    { name: CONTAINERS_SUBSYSTEM, create: (c) => buildContainers(c, { macs, dataplane, dns, ipam, hostAddress, events: sink() }) },
    { name: CNI_SUBSYSTEM, create: (c) => buildCni(c, { macs, dataplane, dns, ipam, hostAddress }) },
    { name: KUBE_SUBSYSTEM, create: (c) => buildKube(c, { ipam }, overrides.kube) },
    { name: DOCKER_SUBSYSTEM, create: (c) => buildDocker(c, { macs, dataplane, dns, ipam, hostAddress }) },
  ];
}

/** IPAM alone (tests, the IPAM benchmark). */
export function createIpamSubsystemFactory(overrides: IpamFactoryOverrides = {}): SubsystemFactory {
  return { name: IPAM_SUBSYSTEM, create: (c) => buildIpam(c, overrides) };
}

/** DNS alone (tests). */
export function createDnsSubsystemFactory(overrides: DnsFactoryOverrides = {}): SubsystemFactory {
  return { name: DNS_SUBSYSTEM, create: (c) => buildDns(c, overrides) };
}
