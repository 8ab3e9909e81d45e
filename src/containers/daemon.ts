/**
 * Containers through the daemon (a subsystem after "dataplane"): Loom's runtime with its records
 * in STATE_DIR/containers, namespaces attached by PID or netns path (STATE_DIR/attachments.json),
 * and the events other parts follow.
 *
 * Contracts:
 * - Container processes are started detached (own session), so they outlive a `kill -9` of the
 *   router; a restarted router finds them through their records (and cleans up those that died
 *   meanwhile at `start`).
 * - After every change the MACs of our live, networked containers and attachments are handed to
 *   the data plane (gossiped to every peer); so a remote host programs a container's MAC within
 *   one gossip round after `run` returns.
 * - `onContainerEvent` listeners run synchronously; one that throws is logged and skipped. DNS,
 *   when present, is told of every start and end (the hooks it documents never throw).
 * - Addresses arrive parsed (AddressSpec, core/address-spec.ts). `run` with `net:default` or
 *   `net:CIDR` takes one from IPAM for the new container's id, released when the container dies
 *   or is removed (also when the run fails). A static CIDR inside the range is claimed in IPAM;
 *   outside it, used as given. Without IPAM (--no-ipam) a static address is used as given,
 *   wherever it lies, and `net:...` is ERR_UNAVAILABLE naming the static form to use instead.
 * - `attach` follows the same rules; its IPAM id is derived from the target (`attachmentId`), so
 *   attaching the same namespace again gets the same address. `detach` of a PID or netns path,
 *   and the death of the target, release what attach took.
 * - Names: when the host's DNS serves on its bridge address (`resolver`), a container started by
 *   `run` gets it as nameserver, the domain as search, `ndots:1`; before that, the host's resolvers.
 * - Egress: a container whose address IPAM handed out or claimed (inside the range) gets a default
 *   route via the host's address on the bridge in its subnet (`gateway`, from the host-address
 *   subsystem; put on the bridge first if need be), so it reaches the outside through its host.
 *   A static address outside the range gets none: it is the user's own network. Best effort: a
 *   gateway that cannot be had is logged and the container starts without the route.
 * - `stop` stops watching; it never stops containers.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import { type AddressSpec, formatAddressSpec } from '../core/address-spec.js';
import { type Cidr, formatCidr } from '../core/net.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem } from '../core/subsystem.js';
import { DEFAULT_SETTINGS } from '../dataplane/controller/settings.js';
import { writeFileDurable } from '../os/durable-file.js';
import { systemRunner, type CommandRunner } from '../os/runner.js';
import type { NetnsLinks } from '../os/netns-links.js';
import { CONTAINER_IFNAME, netnsArgs } from './attach.js';
import { procProcessTable, type ProcessTable } from './processes.js';
import { ContainerRuntime } from './runtime.js';
import type { ContainerDns } from './resolv-conf.js';
import type { ContainerEvent, ContainerRecord, NetnsTarget } from './types.js';

export const CONTAINERS_SUBSYSTEM = 'containers';

/** The runtime's events plus `detached` (a container lost its network but keeps running). */
export type DaemonContainerEvent = ContainerEvent | { type: 'detached'; container: ContainerRecord };

export interface Attachment {
  target: NetnsTarget;
  cidr: string;
  /** The IPAM id the address is held under (`attach:...`); absent for a static address outside the range. */
  ipamId?: string;
  mac: string;
  /** null when the namespace already had ethwe (only an address was added). */
  hostVeth: string | null;
}

/** One row of `loom ps` / GET /containers. */
export interface ContainerRow {
  id: string;
  name: string;
  mac: string;
  cidrs: string[];
  pid: number;
  alive: boolean;
  createdAt: string;
}

export interface RunRequest {
  name: string;
  /** Parsed at the edge (the route's schema, core/address-spec.ts). */
  address: AddressSpec;
  cmd: string[];
  env?: Record<string, string>;
}

/** What the containers need of DNS (src/dns/daemon.ts DnsSubsystem implements it; wired in src/daemon/subsystems.ts). */
export interface DnsHooks {
  onContainerStarted(name: string, address: string, containerId: string): void;
  onContainerGone(containerId: string): void;
}

/** Where local MACs go: the data plane controller (or a recorder in tests). */
export interface LocalMacSink {
  setLocalMacs(macs: Iterable<string>): void;
}

/** What `run` needs of IPAM (src/ipam/daemon.ts): addresses per container id. */
export interface ContainerAddresses {
  /** The address with its subnet's prefix for `spec` (allocated, or a static one claimed); idempotent per id. */
  assign(containerId: string, spec: AddressSpec): Promise<Cidr>;
  release(containerId: string): Promise<number>;
  /** True when a static address lies inside the allocation range (then it is claimed, not just used). */
  covers(cidr: Cidr): boolean;
}

export interface ContainersComponents {
  clock: Clock;
  logger: Logger;
  runner?: CommandRunner;
  processes?: ProcessTable;
  /** The link door attach uses; default rtnetlink (tests: MemoryNetnsLinks). */
  netnsLinks?: NetnsLinks;
  macs?: LocalMacSink;
  dns?: DnsHooks;
  ipam?: ContainerAddresses;
  /** The resolver for a container started now; null = keep the host's resolvers. */
  resolver?: () => ContainerDns | null;
  /**
   * The host's address on the bridge in the subnet of `cidr` ("a.b.c.d/n", inside the range),
   * put there if need be: the container's default route. null = none (no default route).
   */
  gateway?: (cidr: Cidr) => Promise<string | null>;
}

/**
 * The static address to use as given, without IPAM: one outside the allocation range, or any
 * static one when there is no IPAM. Undefined when IPAM must allocate or claim it.
 */
function unmanagedStatic(spec: AddressSpec, ipam: ContainerAddresses | undefined): Cidr | undefined {
  return spec.kind === 'static' && !(ipam?.covers(spec.cidr) ?? false) ? spec.cidr : undefined;
}

function noIpam(what: string, spec: AddressSpec): LoomError {
  return new LoomError('ERR_UNAVAILABLE', `no IPAM on this host (launched with --no-ipam?): give the ${what} an address (a.b.c.d/n) instead of "${formatAddressSpec(spec)}"`);
}

export interface ContainersInit {
  stateDir: string;
  bridge?: string;
  mtu?: number;
  stopGraceMs?: number;
}

/** When a started container announces its address again (see `emit`). */
const REANNOUNCE_AFTER_MS = 1_000;

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MAX_ENV = 128;

export class ContainersSubsystem implements Subsystem {
  readonly name = CONTAINERS_SUBSYSTEM;
  readonly runtime: ContainerRuntime;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly runner: CommandRunner;
  private readonly processes: ProcessTable;
  private readonly macs: LocalMacSink | undefined;
  private readonly dns: DnsHooks | undefined;
  private readonly ipam: ContainerAddresses | undefined;
  private readonly resolver: () => ContainerDns | null;
  private readonly gateway: ((cidr: Cidr) => Promise<string | null>) | undefined;
  private readonly bridge: string;
  private readonly mtu: number;
  private readonly attachmentsFile: string;
  private readonly listeners = new Set<(e: DaemonContainerEvent) => void>();
  private unsubscribe: (() => void) | null = null;

  constructor(components: ContainersComponents, init: ContainersInit) {
    this.logger = components.logger;
    this.clock = components.clock;
    this.runner = components.runner ?? systemRunner;
    this.processes = components.processes ?? procProcessTable;
    this.macs = components.macs;
    this.dns = components.dns;
    this.ipam = components.ipam;
    this.resolver = components.resolver ?? (() => null);
    this.gateway = components.gateway;
    this.bridge = init.bridge ?? DEFAULT_SETTINGS.bridge;
    this.mtu = init.mtu ?? DEFAULT_SETTINGS.mtu;
    this.attachmentsFile = join(init.stateDir, 'attachments.json');
    this.runtime = new ContainerRuntime(
      { runner: this.runner, clock: components.clock, logger: this.logger, processes: this.processes, ...(components.netnsLinks ? { netnsLinks: components.netnsLinks } : {}) },
      { stateDir: init.stateDir, ...(init.stopGraceMs === undefined ? {} : { stopGraceMs: init.stopGraceMs }) },
    );
  }

  /** For DNS, IPAM and others: every start, removal, death and detach of a local container. */
  onContainerEvent(listener: (e: DaemonContainerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    this.unsubscribe = this.runtime.onEvent((e) => this.emit(e));
    await this.runtime.checkDeaths();
    this.pruneAttachments();
    this.runtime.watch();
    this.publishMacs();
    // Containers that survived a router restart: DNS replicas are rebuilt from here.
    for (const r of this.runtime.list()) if (this.runtime.isAlive(r)) this.tellDns({ type: 'started', container: r });
  }

  async stop(): Promise<void> {
    this.runtime.unwatch();
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  async run(request: RunRequest): Promise<ContainerRecord> {
    const cmd = Array.isArray(request.cmd) ? request.cmd : [];
    const env = Object.entries(request.env ?? {});
    if (env.length > MAX_ENV) throw new LoomError('ERR_INVALID_ARGUMENT', `at most ${MAX_ENV} environment variables`);
    for (const [k, v] of env) {
      if (!ENV_NAME_RE.test(k) || typeof v !== 'string' || v.includes('\0')) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid environment variable ${JSON.stringify(k).slice(0, 40)}`);
    }
    // `env NAME=VALUE... cmd`: variables stay separate arguments, never shell text.
    const argv = env.length > 0 ? ['env', ...env.map(([k, v]) => `${k}=${v}`), ...cmd] : cmd;
    const dns = this.resolver();
    const base = { startedAt: performance.now(), name: request.name, cmd: argv, bridge: this.bridge, mtu: this.mtu, ...(dns ? { dns } : {}) };
    const given = unmanagedStatic(request.address, this.ipam);
    if (given) return this.runtime.run({ ...base, cidr: given });
    if (!this.ipam) throw noIpam('container', request.address);
    const id = randomBytes(6).toString('hex') as ContainerId;
    const cidr = await this.ipam.assign(id, request.address);
    try {
      const gateway = await this.gatewayFor(cidr);
      return await this.runtime.run({ ...base, id, cidr, ...(gateway === null ? {} : { gateway }) });
    } catch (err) {
      await this.releaseAddresses(id);
      throw err;
    }
  }

  /** The default route's gateway for a container address in the range, or null (logged) when there is none. */
  private async gatewayFor(cidr: Cidr): Promise<string | null> {
    if (!this.gateway) return null;
    try {
      return await this.gateway(cidr);
    } catch (err) {
      this.logger.warn({ cidr: formatCidr(cidr), err: toLoomError(err).message }, 'no gateway on the bridge for this address: no default route (egress)');
      return null;
    }
  }

  private async releaseAddresses(containerId: string): Promise<void> {
    if (!this.ipam) return;
    try {
      await this.ipam.release(containerId);
    } catch (err) {
      this.logger.warn({ containerId, err: toLoomError(err).message }, 'container address not released');
    }
  }

  /**
   * Plugs `target` in with an address in any form of `run`. An allocation that fails to attach
   * is released unless an earlier attachment of the target holds it.
   */
  async attach(target: NetnsTarget, address: AddressSpec): Promise<Attachment> {
    const given = unmanagedStatic(address, this.ipam);
    if (given) return this.recordAttachment(target, given, undefined);
    if (!this.ipam) throw noIpam('attachment', address);
    const ipamId = attachmentId(target, this.processes);
    const heldBefore = this.loadAttachments().some((a) => a.ipamId === ipamId);
    const cidr = await this.ipam.assign(ipamId, address);
    try {
      return await this.recordAttachment(target, cidr, ipamId);
    } catch (err) {
      if (!heldBefore) await this.releaseAddresses(ipamId);
      throw err;
    }
  }

  private async recordAttachment(target: NetnsTarget, cidr: Cidr, ipamId: string | undefined): Promise<Attachment> {
    const text = formatCidr(cidr);
    // Only addresses of the range (held in IPAM) get the host as their default route.
    const gateway = ipamId === undefined ? null : await this.gatewayFor(cidr);
    const result = await this.runtime.attach({ target, cidr, bridge: this.bridge, mtu: this.mtu, ...(gateway === null ? {} : { gateway }) });
    const attachment: Attachment = { target, cidr: text, ...(ipamId === undefined ? {} : { ipamId }), mac: result.mac, hostVeth: result.hostVeth };
    const others = this.loadAttachments().filter((a) => !(sameTarget(a.target, target) && a.cidr === text));
    this.saveAttachments([...others, attachment]);
    this.publishMacs();
    this.logger.info({ target: describeTarget(target), cidr: text, mac: result.mac }, 'container attached');
    return attachment;
  }

  /**
   * Takes an attached namespace off the network (all its attached addresses, or one) and releases
   * the IPAM addresses no remaining attachment holds. ERR_NOT_FOUND if nothing matches.
   */
  async detachTarget(target: NetnsTarget, cidr?: Cidr): Promise<Attachment[]> {
    const text = cidr === undefined ? undefined : formatCidr(cidr);
    const all = this.loadAttachments();
    const mine = all.filter((a) => sameTarget(a.target, target));
    const drop = text === undefined ? mine : mine.filter((a) => a.cidr === text);
    if (drop.length === 0) throw new LoomError('ERR_NOT_FOUND', `${'pid' in target ? `process ${target.pid}` : target.path} has no attached address ${text ?? ''}`.trim());
    const keep = all.filter((a) => !drop.includes(a));
    const hostVeth = mine.find((a) => a.hostVeth !== null)?.hostVeth ?? null;
    const lastOfTarget = drop.length === mine.length;
    if (lastOfTarget && hostVeth !== null) await this.runner.run('ip', ['link', 'del', hostVeth], { allowFailure: true });
    else for (const a of drop) await this.runner.run('nsenter', [...netnsArgs(target), 'ip', 'addr', 'del', a.cidr, 'dev', CONTAINER_IFNAME], { allowFailure: true });
    this.saveAttachments(keep);
    this.publishMacs();
    this.logger.info({ target: describeTarget(target), cidrs: drop.map((a) => a.cidr) }, 'container detached');
    await this.releaseUnheld(drop, keep);
    return drop;
  }

  /** Releases the IPAM ids of `dropped` attachments that no `kept` one still uses. */
  private async releaseUnheld(dropped: Attachment[], kept: Attachment[]): Promise<void> {
    const held = new Set(kept.map((a) => a.ipamId));
    for (const id of new Set(dropped.map((a) => a.ipamId))) if (id !== undefined && !held.has(id)) await this.releaseAddresses(id);
  }

  /**
   * Takes a container off the network; it keeps running. With `cidr`, only that address goes
   * (the interface stays while other addresses remain). ERR_NOT_FOUND if it has no such address.
   */
  async detach(idOrName: string, cidr?: Cidr): Promise<ContainerRecord> {
    const r = this.runtime.find(idOrName);
    const drop = cidr === undefined ? r.cidrs : [formatCidr(cidr)];
    if (drop.some((c) => !r.cidrs.includes(c)) || drop.length === 0) throw new LoomError('ERR_NOT_FOUND', `container ${r.name} has no address ${cidr === undefined ? '' : formatCidr(cidr)}`.trim());
    const keep = r.cidrs.filter((c) => !drop.includes(c));
    if (keep.length === 0) await this.runner.run('ip', ['link', 'del', r.hostVeth], { allowFailure: true });
    else for (const c of drop) await this.runner.run('nsenter', [...netnsArgs({ pid: r.pid }), 'ip', 'addr', 'del', c, 'dev', CONTAINER_IFNAME]);
    const updated: ContainerRecord = { ...r, cidrs: keep };
    this.runtime.store.save(updated);
    this.logger.info({ id: r.id, name: r.name, cidrs: drop }, 'container detached');
    this.emit({ type: 'detached', container: updated });
    return updated;
  }

  remove(idOrName: string): Promise<ContainerRecord> {
    return this.runtime.remove(idOrName);
  }

  list(): ContainerRow[] {
    return this.runtime.list().map((r) => ({ id: r.id, name: r.name, mac: r.mac, cidrs: [...r.cidrs], pid: r.pid, alive: this.runtime.isAlive(r), createdAt: r.createdAt }));
  }

  attachments(): Attachment[] {
    return this.loadAttachments();
  }

  /** The `containers` section of `/report` (and the live page): `loom run` containers of this host. */
  report(): { containers: ContainerRow[] } {
    return { containers: this.list() };
  }

  private emit(e: DaemonContainerEvent): void {
    this.publishMacs();
    this.tellDns(e);
    // The start-up gratuitous ARP is one packet; if a host's flood entries were not programmed yet
    // it is lost and peers keep a moved address's old MAC for up to a minute. Announce once more
    // after the MAC gossip has had time to reach every host.
    if (e.type === 'started') {
      const container = e.container;
      this.clock.setTimeout(() => void this.runtime.announce(container), REANNOUNCE_AFTER_MS);
    }
    if (e.type === 'died' || e.type === 'removed') void this.releaseAddresses(e.container.id);
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.logger.error({ err: toLoomError(err).message, event: e.type }, 'container event listener failed');
      }
    }
  }

  private tellDns(e: DaemonContainerEvent): void {
    if (!this.dns) return;
    if (e.type === 'started') {
      const address = e.container.cidrs[0]?.split('/')[0];
      if (address) this.dns.onContainerStarted(e.container.name, address, e.container.id);
    } else this.dns.onContainerGone(e.container.id);
  }

  /** MACs of live containers that still have an address, and of live attachments. */
  private publishMacs(): void {
    if (!this.macs) return;
    const macs = this.runtime.list().filter((r) => r.cidrs.length > 0 && this.runtime.isAlive(r)).map((r) => r.mac);
    for (const a of this.loadAttachments()) if (a.mac) macs.push(a.mac);
    try {
      this.macs.setLocalMacs(macs);
    } catch (err) {
      this.logger.warn({ err: toLoomError(err).message }, 'local MACs not published');
    }
  }

  private targetAlive(t: NetnsTarget): boolean {
    return 'pid' in t ? this.processes.startTime(t.pid) !== null : existsSync(t.path);
  }

  /** Forgets attachments whose target is gone and releases their addresses (in the background). */
  private pruneAttachments(): void {
    const all = this.loadAttachments();
    const live = all.filter((a) => this.targetAlive(a.target));
    if (live.length === all.length) return;
    this.saveAttachments(live);
    void this.releaseUnheld(all.filter((a) => !live.includes(a)), live);
  }

  private loadAttachments(): Attachment[] {
    try {
      const value: unknown = JSON.parse(readFileSync(this.attachmentsFile, 'utf8'));
      return Array.isArray(value) ? (value as Attachment[]).filter((a) => typeof a?.mac === 'string' && typeof a.cidr === 'string' && typeof a.target === 'object') : [];
    } catch {
      return [];
    }
  }

  private saveAttachments(list: Attachment[]): void {
    mkdirSync(join(this.attachmentsFile, '..'), { recursive: true });
    writeFileDurable(this.attachmentsFile, JSON.stringify(list, null, 2) + '\n', 0o600);
  }
}

function sameTarget(a: NetnsTarget, b: NetnsTarget): boolean {
  return 'pid' in a ? 'pid' in b && a.pid === b.pid : 'path' in b && a.path === b.path;
}

/** An attached namespace as a log field: "pid:1234" or its netns path. */
function describeTarget(target: NetnsTarget): string {
  return 'pid' in target ? `pid:${target.pid}` : target.path;
}

/**
 * The IPAM id of an attachment, stable for the life of its namespace: `attach:pid:<pid>:<start
 * time>` (a reused PID gets another id) or `attach:netns:<device>:<inode>` of the netns file (two
 * paths bound to one namespace share it). ERR_NOT_FOUND if the target is gone.
 */
export function attachmentId(target: NetnsTarget, processes: ProcessTable): string {
  if ('pid' in target) {
    const start = processes.startTime(target.pid);
    if (start === null) throw new LoomError('ERR_NOT_FOUND', `no process ${target.pid}`);
    return `attach:pid:${target.pid}:${start}`;
  }
  try {
    const st = statSync(target.path);
    return `attach:netns:${st.dev}:${st.ino}`;
  } catch (err) {
    throw new LoomError('ERR_NOT_FOUND', `no network namespace at ${target.path.slice(0, 100)}`, { cause: err });
  }
}
