/**
 * The `docker` subsystem: serves Loom's network and IPAM drivers to the Docker daemon of this
 * network namespace, learns container names from Docker's API, and keeps containers of other
 * Docker networks that `loom attach` put on Loom attached through `docker restart`.
 *
 * Contracts:
 * - Runs only when a Docker daemon answers on the configured API and, for a unix socket, listens
 *   in our network namespace (./ownership.ts); until then it retries with backoff (1 s .. 30 s),
 *   logging once per state change. Once Docker answered, the plugin socket stays up until `stop`,
 *   so a restarted Docker finds it.
 * - Docker going away ends the event stream: reconnect with backoff, then resync (what runs now
 *   is compared with the state: names registered again, leftovers of removed containers freed).
 * - Names: on a Loom network's `connect` event (and at every resync) the container is inspected
 *   and its name registered in DNS under the endpoint id; Leave and DeleteEndpoint remove it.
 * - Resolver: on the same connect event (and resync), a container the user gave no --dns /
 *   --dns-search gets the host's Loom DNS in the file Docker bind-mounts as its /etc/resolv.conf
 *   (./resolv.ts); left alone otherwise, or while the host's DNS is not serving.
 * - MACs of joined endpoints and attachments go to the data plane through our own MAC source.
 * - Nothing here throws into the event loop: event handling failures are logged.
 */
import type { Clock } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem } from '../core/subsystem.js';
import type { AddressSpec } from '../core/address-spec.js';
import { formatCidr, parseCidr } from '../core/net.js';
import { macFromSeed } from '../dataplane/addresses.js';
import { attachNetwork } from '../containers/attach.js';
import type { ContainerAddresses, DnsHooks, LocalMacSink } from '../containers/daemon.js';
import { netlinkLinks, type NetnsLinks } from '../os/netns-links.js';
import type { DockerStatus } from './api.js';
import { HttpEngineApi, type EngineApi, type EngineContainer, type EngineEvent } from './engine.js';
import { linuxEndpointLinks } from './links.js';
import { formatDockerApi, type DockerLaunchConfig } from './options.js';
import { socketOwner, type SocketOwner } from './ownership.js';
import { DockerPlugin, PLUGIN_NAME, type EndpointLinks } from './plugin.js';
import { PluginServer } from './plugin-server.js';
import { resolvConfDecision, writeInPlace, type LoomResolver } from './resolv.js';
import { fileStateStore, type DockerAttachment, type DockerEndpoint, type DockerStateStore } from './state.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const DOCKER_SUBSYSTEM = 'docker';

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

export interface DockerComponents {
  clock: Clock;
  logger: Logger;
  /** The link door (Join's pairs, attach); default rtnetlink (tests: MemoryNetnsLinks). */
  netnsLinks?: NetnsLinks;
  addresses: ContainerAddresses;
  macs?: LocalMacSink;
  dns?: DnsHooks;
  /** The host's Loom DNS for containers (host-address `resolver()`); null while not serving. */
  resolver?: () => LoomResolver | null;
  /** Tests give a fake engine, links and store. */
  engine?: EngineApi;
  links?: EndpointLinks;
  store?: DockerStateStore;
  owner?: (path: string) => SocketOwner;
}

export interface DockerInit {
  config: DockerLaunchConfig;
  stateDir: string;
  bridge: string;
  mtu: number;
  range: string;
  defaultSubnet: string;
}

export class DockerSubsystem implements Subsystem {
  readonly name = DOCKER_SUBSYSTEM;
  readonly plugin: DockerPlugin;
  private readonly c: DockerComponents;
  private readonly init: DockerInit;
  private readonly engine: EngineApi;
  private readonly store: DockerStateStore;
  private readonly server: PluginServer;
  private readonly socketPath: string;
  private state: DockerStatus['state'] = 'waiting';
  private serving = false;
  private stopped = true;
  private abort: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(components: DockerComponents, init: DockerInit) {
    this.c = components;
    this.init = init;
    this.engine = components.engine ?? new HttpEngineApi(init.config.api);
    this.store = components.store ?? fileStateStore(join(init.stateDir, 'docker.json'));
    this.socketPath = join(init.config.pluginDir, `${PLUGIN_NAME}.sock`);
    this.plugin = new DockerPlugin(
      {
        addresses: components.addresses,
        links: components.links ?? linuxEndpointLinks(components.netnsLinks ?? netlinkLinks, { bridge: init.bridge, mtu: init.mtu }),
        store: this.store,
        logger: components.logger,
        onEndpointsChanged: () => this.publishMacs(),
        onEndpointGone: (ep) => this.c.dns?.onContainerGone(ep.id),
      },
      { range: init.range, defaultSubnet: init.defaultSubnet },
    );
    this.server = new PluginServer(this.socketPath, (path, body) => this.plugin.handle(path, body), components.logger);
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.publishMacs();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
    this.loop = null;
    await this.server.close();
    this.serving = false;
  }

  report(): DockerStatus {
    const s = this.store.load();
    return {
      api: formatDockerApi(this.init.config.api),
      state: this.state,
      pluginSocket: this.serving ? this.socketPath : null,
      networks: Object.keys(s.networks).length,
      endpoints: Object.keys(s.endpoints).length,
      attachments: Object.keys(s.attachments).length,
    };
  }

  /** The connect / follow / reconnect loop (see the contracts above). */
  private async run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    let lastWhy = '';
    const api = formatDockerApi(this.init.config.api);
    while (!this.stopped) {
      let why: string;
      try {
        const target = this.init.config.api;
        const owner = target.kind === 'unix' ? (this.c.owner ?? socketOwner)(target.path) : 'ours';
        if (owner === 'other') {
          this.state = 'other-namespace';
          throw new LoomError('ERR_UNAVAILABLE', `the Docker daemon at ${api} runs in another network namespace; not serving it here`);
        }
        await this.engine.ping();
        if (!this.serving) {
          await this.server.listen();
          this.serving = true;
          this.c.logger.info({ socket: this.socketPath, api }, 'docker: plugin serving (network driver and IPAM driver "loom")');
        }
        this.state = 'connected';
        this.abort = new AbortController();
        const following = this.engine.events((e) => void this.onEvent(e), this.abort.signal);
        this.c.logger.info({ api }, 'docker: connected, following events');
        lastWhy = '';
        await this.resync();
        backoff = BACKOFF_MIN_MS;
        await following;
        why = 'Docker closed the event stream';
      } catch (err) {
        why = toLoomError(err).message;
      }
      if (this.stopped) break;
      if (this.state === 'connected') this.state = 'waiting';
      if (why !== lastWhy) {
        // No Docker on this host is normal (info); one that went away or is unreachable is worth a warning.
        const absent = this.init.config.api.kind === 'unix' && !existsSync(this.init.config.api.path);
        const fields = { api, err: why, retryMs: backoff };
        if (absent) this.c.logger.info(fields, 'docker: not connected; retrying');
        else this.c.logger.warn(fields, 'docker: not connected; retrying');
      }
      lastWhy = why;
      // The clock's own timer (unref'd on the system clock) and cancelled on wake: a pending
      // backoff must not keep a stopped daemon's process alive for up to 30 s.
      let timer: { cancel(): void } | null = null;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = this.c.clock.setTimeout(resolve, backoff);
      });
      (timer as { cancel(): void } | null)?.cancel();
      this.wake = null;
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }
  }

  /**
   * After (re)connecting: names for every joined endpoint of a running container; endpoints whose
   * container is gone (removed while we were away) are freed; attachments re-checked.
   */
  async resync(): Promise<void> {
    const running = await this.engine.runningContainers();
    const byEndpoint = new Map<string, EngineContainer>();
    const inspected = new Map<string, Awaited<ReturnType<EngineApi['inspect']>>>();
    for (const id of running) {
      const c = await this.engine.inspect(id);
      inspected.set(id, c);
      if (c) for (const n of Object.values(c.networks)) byEndpoint.set(n.endpointId, c);
    }
    for (const ep of this.plugin.joinedEndpoints()) {
      const owner = byEndpoint.get(ep.id);
      if (owner) {
        await this.registerName(ep.id, owner.id, owner.name);
        this.pointResolver(owner);
      }
      else await this.plugin.forgetStale(ep.id, Date.now());
    }
    for (const a of Object.values(this.store.load().attachments)) {
      const c = inspected.get(a.containerId) ?? (await this.engine.inspect(a.containerId));
      if (!c) await this.forgetAttachment(a);
      else if (c.running) await this.reattach(a, c.pid);
    }
    this.publishMacs();
  }

  private async onEvent(e: EngineEvent): Promise<void> {
    try {
      if (e.type === 'network' && e.action === 'connect') {
        const containerId = e.attributes['container'];
        if (!containerId || !this.store.load().networks[e.actorId]) return;
        const c = await this.engine.inspect(containerId);
        const net = c && Object.values(c.networks).find((n) => n.networkId === e.actorId);
        if (c && net) {
          await this.registerName(net.endpointId, c.id, c.name);
          this.pointResolver(c);
        }
        return;
      }
      if (e.type !== 'container') return;
      const a = this.store.load().attachments[e.actorId];
      if (!a) return;
      if (e.action === 'start') {
        const c = await this.engine.inspect(a.containerId);
        if (c?.running) await this.reattach(a, c.pid);
      } else if (e.action === 'die') {
        this.c.dns?.onContainerGone(a.containerId);
      } else if (e.action === 'destroy') {
        await this.forgetAttachment(a);
      }
    } catch (err) {
      this.c.logger.warn({ event: `${e.type}:${e.action}`, id: e.actorId.slice(0, 12), err: toLoomError(err).message }, 'docker: event not handled');
    }
  }

  private async registerName(endpointId: string, containerId: string, name: string): Promise<void> {
    const ep = await this.plugin.nameEndpoint(endpointId, containerId, name);
    if (!ep) return;
    this.c.dns?.onContainerStarted(name, ep.cidr.split('/')[0]!, ep.id);
    this.c.logger.info({ name, containerId: containerId.slice(0, 12), cidr: ep.cidr }, 'docker: container on Loom');
  }

  /** The container's resolv.conf at the host's Loom DNS (./resolv.ts); failures are logged. */
  private pointResolver(c: EngineContainer): void {
    const d = resolvConfDecision(c, this.c.resolver?.() ?? null);
    const fields = { name: c.name, containerId: c.id.slice(0, 12) };
    if (d.action === 'leave') {
      this.c.logger.debug({ ...fields, why: d.why }, 'docker: resolv.conf left alone');
      return;
    }
    try {
      if (writeInPlace(d.path, d.content)) this.c.logger.info({ ...fields, path: d.path }, "docker: resolv.conf points at the host's Loom DNS");
    } catch (err) {
      this.c.logger.warn({ ...fields, path: d.path, err: toLoomError(err).message }, 'docker: resolv.conf not written');
    }
  }

  // ----- loom attach of a Docker container ------------------------------------------------------

  /** Puts a running Docker container of any network on Loom (ethwe), followed through restarts. */
  async attach(idOrName: string, spec: AddressSpec): Promise<DockerAttachment> {
    if (this.state !== 'connected') throw new LoomError('ERR_UNAVAILABLE', `Docker is not connected (${formatDockerApi(this.init.config.api)})`);
    const c = await this.engine.inspect(idOrName);
    if (!c) throw new LoomError('ERR_NOT_FOUND', `no Docker container ${JSON.stringify(idOrName.slice(0, 64))}`);
    if (!c.running || c.pid <= 0) throw new LoomError('ERR_CONFLICT', `Docker container ${c.name} is not running`);
    const existing = this.store.load().attachments[c.id];
    if (existing) return this.reattach(existing, c.pid);
    const ipamId = `docker-attach-${c.id.slice(0, 32)}`;
    const cidr = formatCidr(await this.c.addresses.assign(ipamId, spec));
    const a: DockerAttachment = { containerId: c.id, name: c.name, ipamId, cidr, mac: macFromSeed(`docker:${c.id}`) };
    try {
      await this.plug(a, c.pid);
      const s = this.store.load();
      s.attachments[c.id] = a;
      this.store.save(s);
    } catch (err) {
      await this.c.addresses.release(ipamId).catch(() => 0);
      throw err;
    }
    this.publishMacs();
    this.c.dns?.onContainerStarted(a.name, a.cidr.split('/')[0]!, a.containerId);
    this.c.logger.info({ name: a.name, cidr: a.cidr }, 'docker: container attached');
    return a;
  }

  private async plug(a: DockerAttachment, pid: number): Promise<void> {
    await attachNetwork({ links: this.c.netnsLinks ?? netlinkLinks, clock: this.c.clock }, { target: { pid }, cidr: parseCidr(a.cidr), mac: a.mac, bridge: this.init.bridge, mtu: this.init.mtu, hostVeth: `vla${a.containerId.slice(0, 12)}` });
  }

  private async reattach(a: DockerAttachment, pid: number): Promise<DockerAttachment> {
    await this.plug(a, pid);
    this.c.dns?.onContainerStarted(a.name, a.cidr.split('/')[0]!, a.containerId);
    this.c.logger.info({ name: a.name, pid, cidr: a.cidr }, 'docker: container attached again');
    return a;
  }

  private async forgetAttachment(a: DockerAttachment): Promise<void> {
    const s = this.store.load();
    delete s.attachments[a.containerId];
    this.store.save(s);
    this.c.dns?.onContainerGone(a.containerId);
    const own = (this.c.netnsLinks ?? netlinkLinks).open(null);
    try {
      own.deleteLink(`vla${a.containerId.slice(0, 12)}`);
    } catch (err) {
      this.c.logger.warn({ name: a.name, err: toLoomError(err).message }, 'docker: host end of the attachment not deleted');
    } finally {
      own.close();
    }
    await this.c.addresses.release(a.ipamId).catch((err: unknown) => this.c.logger.warn({ err: toLoomError(err).message }, 'docker: address not released'));
    this.publishMacs();
    this.c.logger.info({ name: a.name }, 'docker: attached container removed; address and name released');
  }

  private publishMacs(): void {
    if (!this.c.macs) return;
    const s = this.store.load();
    const macs = [...Object.values(s.endpoints).filter((e: DockerEndpoint) => e.hostVeth !== null).map((e) => e.mac), ...Object.values(s.attachments).map((a) => a.mac)];
    try {
      this.c.macs.setLocalMacs(macs);
    } catch (err) {
      this.c.logger.warn({ err: toLoomError(err).message }, 'docker: MACs not published');
    }
  }
}
