/**
 * The host's own overlay address (like `weave expose`): IPAM allocates it (id `host:<peer name>`),
 * it goes on the Loom bridge, and DNS serves on it (UDP and TCP 53). Containers started after
 * that get `nameserver <it>` + `search <domain>` (see `resolver`). Why this address: docs/DNS.md.
 *
 * Contracts:
 * - `start` never waits for IPAM (a first launch waits for consensus): the address is pursued in
 *   the background, retried with backoff (1 s doubling to 30 s) while the subsystem runs.
 * - Idempotent and restart-safe: IPAM answers the same address for the same peer (persisted),
 *   the bridge gets it only once, `listenOn` binds once per address.
 * - `stop` leaves the address on the bridge (like the data plane leaves the bridge), so containers
 *   keep their nameserver while the router restarts.
 * - Without IPAM, the first `--dns-listen-address` is the containers' nameserver (its owner puts
 *   it on an interface); nothing is added to the bridge.
 * - `expose` (`loom expose [ADDRESS]`): none/net:default is the address above (idempotent, also
 *   before the background pass got it); `net:CIDR` allocates an extra one under the IPAM id
 *   `expose:net:<subnet>`, a static one inside the range is claimed under `expose:<cidr>`, one
 *   outside is used as given. `hide` removes an extra one and releases it; the default address
 *   carries DNS and is refused (ERR_CONFLICT).
 * - `gatewayFor` (egress): the host's address on the bridge in a container address's subnet, the
 *   container's default route. The default address when the subnets match; otherwise the one
 *   `expose net:SUBNET` gives (allocated once per host and subnet, then found again); put on the
 *   bridge each time (over rtnetlink, idempotent). null for an address outside the range.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { formatAddressSpec, parseAddressSpec, type AddressSpec } from '../core/address-spec.js';
import { type Cidr, formatCidr, formatIpv4Address, networkOf, parseCidr } from '../core/net.js';
import { systemRunner, type CommandRunner } from '../os/runner.js';
import { netlinkLinks, type NetnsLinks } from '../os/netns-links.js';
import type { Subsystem } from '../core/subsystem.js';

export const HOST_ADDRESS_SUBSYSTEM = 'host-address';
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

/** What containers put in their resolv.conf; null until DNS serves on the host address. */
export interface ContainerResolver {
  nameserver: string;
  /** The DNS domain, for `search`. */
  domain: string;
}

export interface HostAddressComponents {
  /** IPAM: "a.b.c.d/n" for this host; absent = no IPAM (see `fixedNameserver`). */
  ipam?: HostIpam;
  /** DNS: absent with --no-dns (the address still goes on the bridge). */
  dns?: { listenOn(address: string): Promise<unknown>; readonly domain: string };
  /** `hide` (ip addr del). */
  runner?: CommandRunner;
  /** The link door that puts addresses on the bridge (rtnetlink, no `ip` process); tests: MemoryNetnsLinks. */
  links?: NetnsLinks;
  clock: Clock;
  logger: Logger;
}

/**
 * What the host address needs of IPAM (src/ipam/daemon.ts IpamSubsystem). The rest of
 * `ExposeIpam` is needed only by `expose`/`hide` of extra addresses.
 */
export type HostIpam = { allocateHostAddress(): Promise<string> } & Partial<ExposeIpam>;

export interface ExposeIpam {
  /** Any address form (core/address-spec.ts); idempotent per id and subnet. */
  assign(id: string, spec: AddressSpec): Promise<Cidr>;
  release(id: string): Promise<number>;
  lookup(id: string): string[];
  covers(cidr: Cidr): boolean;
}

export interface HostAddressInit {
  bridge: string;
  /** Used as the containers' nameserver when there is no IPAM: the first --dns-listen-address. */
  fixedNameserver?: string;
}

export interface HostAddressStatus {
  /** "a.b.c.d/n" on the bridge, or null while pending. */
  cidr: string | null;
  bridge: string;
  /** True once DNS serves on it. */
  dns: boolean;
  attempts: number;
  lastError: string | null;
}

export class HostAddressSubsystem implements Subsystem {
  readonly name = HOST_ADDRESS_SUBSYSTEM;
  private readonly ipam: HostAddressComponents['ipam'];
  private readonly dns: HostAddressComponents['dns'];
  private readonly runner: CommandRunner;
  private readonly links: NetnsLinks;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly bridge: string;
  private readonly fixedNameserver: string | undefined;
  private cidr: string | null = null;
  private serving = false;
  private attempts = 0;
  private lastError: string | null = null;
  private retryMs = FIRST_RETRY_MS;
  private timer: TimerHandle | null = null;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private readonly readyListeners = new Set<(resolver: ContainerResolver) => void>();

  constructor(components: HostAddressComponents, init: HostAddressInit) {
    this.ipam = components.ipam;
    this.dns = components.dns;
    this.runner = components.runner ?? systemRunner;
    this.links = components.links ?? netlinkLinks;
    this.clock = components.clock;
    this.logger = components.logger;
    this.bridge = init.bridge;
    this.fixedNameserver = init.fixedNameserver;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    if (this.ipam) void this.attempt();
  }

  /** Stops retrying; leaves the address on the bridge. Idempotent. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    this.timer?.cancel();
    this.timer = null;
  }

  /** The resolver for a container started now, or null (then it keeps the host's resolvers). */
  resolver(): ContainerResolver | null {
    if (!this.dns) return null;
    if (this.serving && this.cidr !== null) return { nameserver: addressOf(this.cidr), domain: this.dns.domain };
    if (!this.ipam && this.fixedNameserver !== undefined) return { nameserver: this.fixedNameserver, domain: this.dns.domain };
    return null;
  }

  /** Called once DNS serves on the host address (not for the fixed fallback). */
  onReady(listener: (resolver: ContainerResolver) => void): () => void {
    this.readyListeners.add(listener);
    return () => this.readyListeners.delete(listener);
  }

  /** The `host-address` section of `/report`. */
  report(): HostAddressStatus {
    return this.status();
  }

  status(): HostAddressStatus {
    return { cidr: this.cidr, bridge: this.bridge, dns: this.serving, attempts: this.attempts, lastError: this.lastError };
  }

  /** Puts the default, a `net:CIDR` or a static address on the bridge; returns "a.b.c.d/n". */
  async expose(address?: string): Promise<string> {
    const spec = parseAddressSpec(address);
    if (spec.kind === 'static' && !(this.ipam?.covers?.(spec.cidr) ?? false)) return this.addToBridge(formatCidr(spec.cidr));
    if (!this.ipam) throw new LoomError('ERR_UNAVAILABLE', 'no IPAM: expose a static address (a.b.c.d/n)');
    if (spec.kind === 'default') return this.addToBridge(this.cidr ?? (await this.ipam.allocateHostAddress()));
    return this.addToBridge(formatCidr(await this.exposeIpam().assign(exposeId(spec), spec)));
  }

  /**
   * The address (no prefix) on the bridge in the subnet of the container address `cidr`, put
   * there if need be; null without IPAM or for an address outside the range (see the header).
   */
  async gatewayFor(cidr: Cidr): Promise<string | null> {
    if (!this.ipam || !(this.ipam.covers?.(cidr) ?? true)) return null;
    const subnet = formatCidr(networkOf(cidr));
    const own = this.cidr ?? (await this.ipam.allocateHostAddress());
    if (formatCidr(networkOf(parseCidr(own))) === subnet) return addressOf(await this.addToBridge(own));
    return addressOf(await this.expose(`net:${subnet}`));
  }

  /** Takes an extra exposed address off the bridge and releases it. Returns addresses released. */
  async hide(cidr: string): Promise<number> {
    const spec = parseAddressSpec(cidr);
    if (spec.kind !== 'static') throw new LoomError('ERR_INVALID_ARGUMENT', 'hide takes the exposed address a.b.c.d/n');
    const text = formatCidr(spec.cidr);
    if (this.ipam && text === (this.cidr ?? (await this.ipam.allocateHostAddress()))) {
      throw new LoomError('ERR_CONFLICT', `${text} is the host's own address (DNS serves on it); it stays`);
    }
    await this.runner.run('ip', ['addr', 'del', text, 'dev', this.bridge], { allowFailure: true });
    if (!this.ipam) return 0;
    const ipam = this.exposeIpam();
    const holders = [exposeId(spec), exposeId({ kind: 'subnet', subnet: networkOf(spec.cidr) })].filter((id) => ipam.lookup(id).includes(text));
    let released = 0;
    for (const id of holders) released += await ipam.release(id);
    return released;
  }

  private exposeIpam(): ExposeIpam {
    const i = this.ipam;
    if (!i?.assign || !i.release || !i.lookup || !i.covers) throw new LoomError('ERR_UNAVAILABLE', 'this IPAM cannot expose extra addresses');
    return { assign: i.assign.bind(i), release: i.release.bind(i), lookup: i.lookup.bind(i), covers: i.covers.bind(i) };
  }

  /**
   * Puts "a.b.c.d/n" on the bridge over rtnetlink; idempotent (an address already there is left
   * as it is). In-process: `loom run` asks for its gateway on every start, and spawning `ip` from
   * the router cost 28-59 ms of each. ERR_NOT_FOUND while the bridge does not exist yet.
   */
  private async addToBridge(cidr: string): Promise<string> {
    const { address, prefix } = parseCidr(cidr);
    const host = this.links.open(null);
    try {
      const bridge = host.link(this.bridge);
      if (bridge === null) throw new LoomError('ERR_NOT_FOUND', `no bridge ${this.bridge} yet`);
      host.addAddress4(bridge.index, formatIpv4Address(address), prefix);
    } finally {
      host.close();
    }
    return cidr;
  }

  /** One pass: allocate (or find again), put on the bridge, serve DNS. On failure, schedules the next. */
  private async attempt(): Promise<void> {
    this.timer = null;
    if (this.state !== 'running' || !this.ipam) return;
    this.attempts++;
    try {
      const cidr = await this.ipam.allocateHostAddress();
      if (this.state !== 'running') return;
      // Adds it, or does nothing when the bridge already has it (a router restart).
      await this.addToBridge(cidr);
      this.cidr = cidr;
      if (this.dns && this.state === 'running') await this.dns.listenOn(addressOf(cidr));
      this.serving = this.dns !== undefined;
      this.lastError = null;
      this.logger.info({ cidr, bridge: this.bridge, dns: this.serving }, 'host address on the bridge');
      const resolver = this.resolver();
      if (resolver) for (const l of this.readyListeners) l(resolver);
    } catch (err) {
      const e = toLoomError(err);
      this.lastError = `${e.code}: ${e.message}`;
      if (this.state !== 'running') return;
      this.logger.warn({ code: e.code, err: e.message, retryMs: this.retryMs }, 'host address not ready; retrying');
      this.timer = this.clock.setTimeout(() => void this.attempt(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    }
  }
}

/** The IPAM id of an extra exposed address: one per subnet for `net:CIDR`, one per static address. */
function exposeId(spec: Exclude<AddressSpec, { kind: 'default' }>): string {
  return `expose:${formatAddressSpec(spec)}`;
}

function addressOf(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}
