/**
 * DNS as a daemon subsystem: the replicated records on gossip channel "dns", one DnsServer per
 * listen address (UDP and TCP), the record operations behind the API, and the hooks the container
 * runtime calls.
 *
 * Contracts:
 * - The gossip channel is opened in the constructor, which the daemon runs before the router
 *   starts, so the full state exchanged with every new neighbour includes the records.
 * - `listenOn(address)` may be called before `start` (bound at start) or after (bound at once);
 *   calling it again for the same address is a no-op. The data plane calls it when the host gets
 *   its bridge address. Every listener shares the one store, so all answer alike.
 * - Only records whose origin is this peer are added or removed here (the store's rule).
 * - The container hooks never throw: a container must not fail to start because of its name.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { isLoomError, LoomError } from '../core/errors.js';
import { parseContainerId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem } from '../core/subsystem.js';
import type { RouterApi } from '../mesh/types.js';
import { addHistograms, emptyHistogram } from '../core/histogram.js';
import type { DnsAddResult, DnsListenerStatus, DnsMetricsSnapshot, DnsQueryStats, DnsRecordRow, DnsReport } from './daemon-types.js';
import { DEFAULT_DNS_TTL_SECONDS, DEFAULT_RESOLV_CONF } from './daemon-options.js';
import { DEFAULT_DOMAIN, isInDomain, parseIPv4, parseName, qualifyName } from './names.js';
import { DnsServer, type DnsStats, type UdpPathSetting } from './server.js';
import { DnsRecordStore } from './store.js';
import { queryTypeRecord } from './query-types.js';
import { UPSTREAM_FAILURES, zeroUpstreamFailures, type UpstreamStats } from './upstream.js';

export const DNS_SUBSYSTEM = 'dns';
/** The gossip channel of the records (same as DNS_GOSSIP_CHANNEL in index.ts). */
export const DNS_CHANNEL = 'dns';
/** Container id of records added by hand without one (Weave's "weave:extern"). */
export const EXTERN_CONTAINER_ID = 'extern';
export const DNS_PORT = 53;

/** What the container runtime calls (the lead wires these to container events). */
export interface ContainerDnsHooks {
  /** Registers `name` (a single label gets the domain) for a local container. */
  onContainerStarted(name: string, address: string, containerId: string): void;
  /** Removes every local record of the container. */
  onContainerGone(containerId: string): void;
}

export interface DnsSubsystemComponents {
  router: Pick<RouterApi, 'mesh' | 'newGossipChannel'>;
  /** Drives the store's tombstone collection. The servers' upstream timeouts use the system clock. */
  clock: Clock;
  logger: Logger;
}

export interface DnsSubsystemInit {
  /** Default loom.local. */
  domain?: string;
  /** Default 1 s. */
  ttlSeconds?: number;
  /** Default /etc/resolv.conf. */
  resolvConf?: string;
  /** Served from `start` on. */
  listenAddresses?: readonly string[];
  /** UDP and TCP port of every listener; default 53. 0 (tests) picks one per socket. */
  port?: number;
  /** Internal, for tests: the port upstreams answer on (see DnsServerInit). */
  upstreamPort?: number;
  tombstoneLifetimeMs?: number;
  /** How each server serves UDP (DnsServerInit.udpPath); default auto. */
  udpPath?: UdpPathSetting;
  /** Whether auto may use the native responder (DnsServerInit.nativeResponder); default true. */
  nativeResponder?: boolean;
}

export interface RemoveFilter {
  name?: string | undefined;
  address?: string | undefined;
  containerId?: string | undefined;
}

interface Listener {
  server: DnsServer;
  /** Settles once bound (or failed); stopping waits for it. */
  ready: Promise<void>;
}

const NO_STATS: DnsQueryStats = { queries: 0, answeredLocally: 0, forwarded: 0, nxdomain: 0, servfail: 0, malformed: 0, dropped: 0, truncated: 0 };

export class DnsSubsystem implements Subsystem, ContainerDnsHooks {
  readonly name = DNS_SUBSYSTEM;
  readonly store: DnsRecordStore;
  readonly domain: string;
  private readonly ttlSeconds: number;
  private readonly resolvConf: string;
  private readonly port: number;
  private readonly upstreamPort: number | undefined;
  private readonly udpPath: UdpPathSetting;
  private readonly nativeResponder: boolean;
  private readonly logger: Logger;
  private readonly router: DnsSubsystemComponents['router'];
  private readonly wanted: string[] = [];
  private readonly listeners = new Map<string, Listener>();
  /** Counters of listeners that were closed, so totals never go down. */
  private retired: DnsQueryStats = { ...NO_STATS };
  private retiredMetrics: DnsMetricsCounters = { queryTypes: [], upstream: { failures: zeroUpstreamFailures(), latency: emptyHistogram() } };
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(components: DnsSubsystemComponents, init: DnsSubsystemInit = {}) {
    this.router = components.router;
    this.logger = components.logger;
    this.domain = parseName(init.domain ?? DEFAULT_DOMAIN);
    this.ttlSeconds = init.ttlSeconds ?? DEFAULT_DNS_TTL_SECONDS;
    this.resolvConf = init.resolvConf ?? DEFAULT_RESOLV_CONF;
    this.port = init.port ?? DNS_PORT;
    this.upstreamPort = init.upstreamPort;
    this.udpPath = init.udpPath ?? 'auto';
    this.nativeResponder = init.nativeResponder ?? true;
    for (const a of init.listenAddresses ?? []) this.want(parseIPv4(a));
    this.store = new DnsRecordStore(
      { mesh: components.router.mesh, clock: components.clock, logger: this.logger },
      init.tombstoneLifetimeMs === undefined ? {} : { tombstoneLifetimeMs: init.tombstoneLifetimeMs },
    );
    this.store.attach(components.router.newGossipChannel(DNS_CHANNEL, this.store));
  }

  /** Binds every address asked for so far; a failure closes what was bound and throws ERR_UNAVAILABLE. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.store.start();
    try {
      for (const address of [...this.wanted]) await this.bind(address);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Closes every listener and stops tombstone collection. Idempotent. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    this.store.stop();
    const addresses = [...this.listeners.keys()];
    await Promise.all(addresses.map((a) => this.stopListening(a)));
  }

  /** Serves DNS on `address` (UDP and TCP). Idempotent per address. ERR_UNAVAILABLE if it cannot bind. */
  async listenOn(address: string): Promise<DnsListenerStatus> {
    const a = parseIPv4(address);
    if (this.state === 'stopped') throw new LoomError('ERR_UNAVAILABLE', 'dns is stopped');
    this.want(a);
    if (this.state === 'running') await this.bind(a);
    return this.listenerStatus(a);
  }

  /** Stops serving on `address`; false if it was not served. */
  async stopListening(address: string): Promise<boolean> {
    const i = this.wanted.indexOf(address);
    if (i >= 0) this.wanted.splice(i, 1);
    const listener = this.listeners.get(address);
    if (!listener) return false;
    this.listeners.delete(address);
    await listener.ready.catch(() => {});
    await listener.server.stop();
    this.retired = addStats(this.retired, listener.server.stats());
    this.retiredMetrics = addMetricsCounters(this.retiredMetrics, countersOf(listener.server));
    return true;
  }

  // ----- records ----------------------------------------------------------------------------

  /** Adds name -> address for this host (containerId default "extern"). Names must be in our domain. */
  add(name: string, address: string, containerId: string = EXTERN_CONTAINER_ID): DnsAddResult {
    const record = { name: this.qualify(name), address: parseIPv4(address), containerId: parseContainerId(containerId) };
    return { added: this.store.add(record.name, record.address, record.containerId), record };
  }

  /** Removes this host's records matching every field given (at least one). Returns how many. */
  remove(filter: RemoveFilter): number {
    if (filter.name === undefined && filter.address === undefined && filter.containerId === undefined) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'say which records to remove: a name, an address or a container');
    }
    const name = filter.name === undefined ? undefined : this.qualify(filter.name);
    const address = filter.address === undefined ? undefined : parseIPv4(filter.address);
    const containerId = filter.containerId === undefined ? undefined : parseContainerId(filter.containerId);
    const self = this.router.mesh.self;
    let removed = 0;
    for (const r of this.store.status()) {
      if (r.origin !== self || (name !== undefined && r.name !== name) || (address !== undefined && r.address !== address) || (containerId !== undefined && r.containerId !== containerId)) continue;
      removed += this.store.remove(r.name, r.address, r.containerId);
    }
    return removed;
  }

  /** Addresses of `name` (a single label gets the domain), from reachable origins. */
  lookup(name: string): string[] {
    return this.store.lookup(qualifyName(name, this.domain));
  }

  onContainerStarted(name: string, address: string, containerId: string): void {
    try {
      this.add(name, address, containerId);
    } catch (err) {
      if (!isLoomError(err)) throw err;
      this.logger.warn({ name: String(name).slice(0, 80), containerId, code: err.code, err: err.message }, 'dns: container name not registered');
    }
  }

  onContainerGone(containerId: string): void {
    try {
      this.store.removeContainer(containerId);
    } catch (err) {
      if (!isLoomError(err)) throw err;
      this.logger.warn({ containerId: String(containerId).slice(0, 130), code: err.code, err: err.message }, 'dns: container records not removed');
    }
  }

  // ----- status -----------------------------------------------------------------------------

  report(): DnsReport {
    const mesh = this.router.mesh;
    const records: DnsRecordRow[] = this.store.status().map((r) => {
      const nickname = mesh.nicknameOf(r.origin);
      return { name: r.name, address: r.address, containerId: r.containerId, origin: r.origin, ...(nickname === undefined ? {} : { originNickname: nickname }), version: r.version };
    });
    let stats = this.retired;
    for (const l of this.listeners.values()) stats = addStats(stats, l.server.stats());
    return {
      domain: this.domain,
      ttlSeconds: this.ttlSeconds,
      resolvConf: this.resolvConf,
      listeners: [...this.listeners.keys()].map((a) => this.listenerStatus(a)),
      records,
      counts: this.store.counts(),
      stats,
    };
  }

  /** What `/metrics` reads: the report plus per-type and upstream counters, summed over listeners (daemon-metrics.ts). */
  metricsSnapshot(): DnsMetricsSnapshot {
    let counters = this.retiredMetrics;
    for (const l of this.listeners.values()) counters = addMetricsCounters(counters, countersOf(l.server));
    return { report: this.report(), queryTypes: queryTypeRecord(counters.queryTypes), upstream: counters.upstream };
  }

  // ----- internals --------------------------------------------------------------------------

  private qualify(name: string): string {
    const qualified = qualifyName(name, this.domain);
    if (!isInDomain(qualified, this.domain) || qualified === this.domain) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `"${qualified.slice(0, 80)}" is not a name in the DNS domain ${this.domain}`);
    }
    return qualified;
  }

  private want(address: string): void {
    if (!this.wanted.includes(address)) this.wanted.push(address);
  }

  private async bind(address: string): Promise<void> {
    const existing = this.listeners.get(address);
    if (existing) return existing.ready;
    // A stop that raced with a bind in progress: do not open sockets nobody will close.
    if (this.state === 'stopped') throw new LoomError('ERR_UNAVAILABLE', 'dns is stopped');
    const server = new DnsServer(
      { store: this.store, logger: this.logger, clock: systemClock },
      {
        domain: this.domain,
        ttlSeconds: this.ttlSeconds,
        resolvConfPath: this.resolvConf,
        udpPath: this.udpPath,
        nativeResponder: this.nativeResponder,
        ...(this.upstreamPort === undefined ? {} : { upstreamPort: this.upstreamPort }),
      },
    );
    const endpoint = { host: address, port: this.port };
    const ready = server.start({ udp: endpoint, tcp: endpoint }).then(() => {});
    this.listeners.set(address, { server, ready });
    try {
      await ready;
    } catch (err) {
      if (this.listeners.get(address)?.server === server) this.listeners.delete(address);
      throw err;
    }
  }

  private listenerStatus(address: string): DnsListenerStatus {
    const server = this.listeners.get(address)?.server;
    const bound = server?.addresses() ?? {};
    const udpPath = server?.udpStats().path ?? null;
    return {
      address,
      ...(bound.udp ? { udp: `${bound.udp.host}:${bound.udp.port}` } : {}),
      ...(bound.tcp ? { tcp: `${bound.tcp.host}:${bound.tcp.port}` } : {}),
      ...(udpPath === null ? {} : { udpPath }),
    };
  }
}

interface DnsMetricsCounters {
  queryTypes: readonly number[];
  upstream: UpstreamStats;
}

function countersOf(server: DnsServer): DnsMetricsCounters {
  return { queryTypes: server.queryTypeStats(), upstream: server.upstreamStats() };
}

function addMetricsCounters(a: DnsMetricsCounters, b: DnsMetricsCounters): DnsMetricsCounters {
  const failures = { ...a.upstream.failures };
  for (const reason of UPSTREAM_FAILURES) failures[reason] += b.upstream.failures[reason];
  const types = Math.max(a.queryTypes.length, b.queryTypes.length);
  return {
    queryTypes: Array.from({ length: types }, (_, i) => (a.queryTypes[i] ?? 0) + (b.queryTypes[i] ?? 0)),
    upstream: { failures, latency: addHistograms(a.upstream.latency, b.upstream.latency) },
  };
}

function addStats(a: DnsQueryStats, b: DnsStats): DnsQueryStats {
  const out = { ...a };
  for (const key of Object.keys(out) as Array<keyof DnsQueryStats>) out[key] += b[key];
  return out;
}
