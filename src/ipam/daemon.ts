/**
 * IPAM as a daemon subsystem: the Ipam (gossip channel "ipam") over STATE_DIR/ipam.db, the
 * operations behind the API, and what the container runtime and the data plane call.
 *
 * Contracts:
 * - The gossip channel is opened in the constructor (before the router starts); the saved state
 *   is loaded at `start`, which fails with ERR_RANGE_MISMATCH if it was saved for another range.
 * - Every answer (API or caller) is given only after the change is durable (`store.durable()`),
 *   so a kill -9 right after an answer cannot make this peer forget an address it handed out.
 * - Addresses are returned as "a.b.c.d/n": the address with its subnet's prefix length.
 * - After `reset` the peer is leaving: it refuses new addresses, and at `stop` removes its IPAM
 *   state and peer name (like `weave reset`), so the next launch is a new peer.
 */
import type { EventSink } from '../core/events.js';
import { rmSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import { isLoomError, LoomError } from '../core/errors.js';
import { isPeerName, type PeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem } from '../core/subsystem.js';
import { type AddressSpec, DEFAULT_ADDRESS_SPEC, parseAddressSpec } from '../core/address-spec.js';
import { type Cidr, formatCidr } from '../core/net.js';
import type { RouterApi } from '../mesh/types.js';
import { cidrContains } from './cidr.js';
import type { IpamAllocateResult, IpamLookupResult, IpamResetResult, IpamRmpeerResult } from './daemon-types.js';
import { HOST_ID_PREFIX, Ipam, type IpamInit } from './ipam.js';
import type { AllocationResult, IpamStatus } from './status.js';
import type { IpamStore } from './store.js';

export const IPAM_SUBSYSTEM = 'ipam';
const MAX_RMPEER_NAMES = 1000;

export interface IpamSubsystemComponents {
  router: Pick<RouterApi, 'mesh' | 'newGossipChannel'>;
  clock: Clock;
  logger: Logger;
  /** Owned by the subsystem from now on: closed at `stop`. */
  store: IpamStore;
  events?: EventSink;
  /** Removed at `stop` after a `reset` (ipam.db and its WAL files, the peer-name file). */
  stateFiles?: readonly string[];
}

export type IpamSubsystemInit = IpamInit;

export class IpamSubsystem implements Subsystem {
  readonly name = IPAM_SUBSYSTEM;
  readonly ipam: Ipam;
  private readonly store: IpamStore;
  private readonly mesh: RouterApi['mesh'];
  private readonly logger: Logger;
  private readonly stateFiles: readonly string[];
  private state: 'new' | 'running' | 'leaving' | 'stopped' = 'new';

  constructor(components: IpamSubsystemComponents, init: IpamSubsystemInit = {}) {
    this.store = components.store;
    this.mesh = components.router.mesh;
    this.logger = components.logger;
    this.stateFiles = components.stateFiles ?? [];
    this.ipam = new Ipam({ mesh: components.router.mesh, router: components.router, clock: components.clock, logger: components.logger, store: components.store, ...(components.events ? { events: components.events } : {}) }, init);
    this.ipam.openChannel();
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.ipam.start();
    this.state = 'running';
  }

  /** Stops the Ipam, commits and closes the store; after a reset, removes the state. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const leaving = this.state === 'leaving';
    this.state = 'stopped';
    this.ipam.stop();
    this.store.close();
    if (!leaving) return;
    for (const file of this.stateFiles) rmSync(file, { force: true });
    this.logger.warn({ files: this.stateFiles }, 'reset: IPAM state and peer name removed');
  }

  // ----- for the container runtime and the data plane ---------------------------------------

  /** An address for the container from the default subnet or `net:CIDR` (text, parsed here): "a.b.c.d/n". Idempotent per container and subnet. */
  async allocate(containerId: string, spec?: string): Promise<string> {
    const parsed = parseAddressSpec(spec);
    if (parsed.kind === 'static') throw new LoomError('ERR_INVALID_ARGUMENT', `allocate takes net:default or net:CIDR, not an address (${formatCidr(parsed.cidr)}); use claim`);
    return (await this.allocation(containerId, parsed)).cidr;
  }

  /** Records that the container uses exactly `cidr` ("a.b.c.d/n", text, parsed here). ERR_CONFLICT if taken or not ours. */
  async claim(containerId: string, cidr: string): Promise<string> {
    const parsed = parseAddressSpec(cidr);
    if (parsed.kind !== 'static') throw new LoomError('ERR_INVALID_ARGUMENT', `claim takes an address a.b.c.d/n, not ${String(cidr).slice(0, 40)}`);
    return (await this.allocation(containerId, parsed)).cidr;
  }

  /**
   * True when `cidr`'s address lies inside the allocation range: a static address there must be
   * claimed so it never collides with an allocated one; outside the range it is the user's own.
   */
  covers(cidr: Cidr): boolean {
    return cidrContains(this.ipam.range, cidr.address);
  }

  /** `run`/`attach`/`expose` address, parsed at the edge: a static claim or an allocation. */
  async assign(containerId: string, spec: AddressSpec = DEFAULT_ADDRESS_SPEC): Promise<Cidr> {
    return (await this.allocation(containerId, spec)).value;
  }

  /** Releases every address of the container; kept for it during the grace period. Returns how many. */
  async release(containerId: string): Promise<number> {
    const n = this.ipam.release(containerId);
    await this.store.durable();
    if (n > 0) this.logger.info({ containerId, addresses: n }, 'addresses released');
    return n;
  }

  /** The container's addresses, "a.b.c.d/n", in subnet order; empty if none. */
  lookup(containerId: string): string[] {
    return this.ipam.lookup(containerId).map((r) => r.cidr);
  }

  /** This host's own address on the bridge (like `weave expose`), id `host:<peer name>`, from the default subnet. */
  async allocateHostAddress(): Promise<string> {
    return (await this.allocation(hostAllocationId(this.mesh.self), DEFAULT_ADDRESS_SPEC)).cidr;
  }

  /** For the API: the whole result (address and CIDR) of a parsed spec. */
  async allocateResult(containerId: string, spec: AddressSpec = DEFAULT_ADDRESS_SPEC): Promise<IpamAllocateResult> {
    const { address, cidr } = await this.allocation(containerId, spec);
    return { containerId, address, cidr };
  }

  /**
   * Claims a static spec or allocates from the spec's subnet; answers once durable. When the
   * commit fails (ERR_STORAGE: a full disk) for a container that held nothing before, its new
   * address is released again (into the grace period), so a failed call keeps nothing reserved.
   */
  private async allocation(containerId: string, spec: AddressSpec): Promise<AllocationResult> {
    this.requireServing();
    const held = new Set(this.ipam.lookup(containerId).map((r) => r.cidr));
    let result: AllocationResult;
    try {
      result = spec.kind === 'static' ? this.ipam.claim(containerId, spec.cidr) : await this.ipam.allocate(containerId, spec.kind === 'subnet' ? spec.subnet : undefined);
    } catch (err) {
      // A conflict is a state worth a line (someone else holds the address, or it is not ours);
      // other refusals (bad input, not ready) are the caller's answer.
      if (spec.kind === 'static' && isLoomError(err) && err.code === 'ERR_CONFLICT') this.logger.warn({ containerId, cidr: formatCidr(spec.cidr), err: err.message }, 'address claim refused: conflict');
      throw err;
    }
    try {
      await this.store.durable();
    } catch (err) {
      // Not committed (disk full, read-only): a container that held nothing before gets nothing.
      if (held.size === 0) {
        try {
          this.ipam.release(containerId);
        } catch {
          // The store refuses this write too; the release stands in memory, which is what matters here.
        }
      }
      throw err;
    }
    // One line per new holding; asking again for what the container already holds is not a change.
    if (!held.has(result.cidr)) this.logger.info({ containerId, cidr: result.cidr }, spec.kind === 'static' ? 'address claimed' : 'address allocated');
    return result;
  }

  lookupResult(containerId: string): IpamLookupResult {
    return { containerId, cidrs: this.lookup(containerId) };
  }

  // ----- admin ------------------------------------------------------------------------------

  /** Takes over the space of peers gone for good, named by peer name or nickname. */
  async rmpeer(names: readonly string[], options: { force?: boolean } = {}): Promise<IpamRmpeerResult> {
    if (names.length === 0 || names.length > MAX_RMPEER_NAMES) throw new LoomError('ERR_INVALID_ARGUMENT', `name 1-${MAX_RMPEER_NAMES} peers to remove`);
    const removed = [...new Set(names.map((n) => this.resolvePeer(n)))];
    const { heir, moved } = this.ipam.rmpeer(removed, options);
    await this.store.durable();
    this.logger.info({ removed, heir, moved }, 'rmpeer: space of removed peers taken over');
    return { removed, heir, moved };
  }

  /**
   * Hands our space to a reachable peer and forgets our allocations; the peer is leaving from
   * now on (see the contracts above). Refused while containers hold addresses unless `force`.
   */
  async reset(options: { force?: boolean } = {}): Promise<IpamResetResult> {
    this.requireServing();
    const result = this.ipam.reset(options);
    await this.store.durable();
    this.state = 'leaving';
    return result;
  }

  report(): IpamStatus {
    return this.ipam.status();
  }

  // ----- internals --------------------------------------------------------------------------

  private requireServing(): void {
    if (this.state === 'leaving') throw new LoomError('ERR_UNAVAILABLE', 'this peer was reset and is leaving: stop it (loom stop) and launch it again');
    if (this.state !== 'running') throw new LoomError('ERR_UNAVAILABLE', 'ipam is not running');
  }

  /** A peer name as is; a nickname among the owners of space and the reachable peers, if unique. */
  private resolvePeer(text: string): PeerName {
    if (typeof text !== 'string' || text.length === 0 || text.length > 64) throw new LoomError('ERR_INVALID_ARGUMENT', 'peer must be a name or nickname');
    const lower = text.toLowerCase();
    if (isPeerName(lower)) return lower;
    const known = new Set<PeerName>([...this.ipam.status().peers.map((p) => p.name), ...this.mesh.reachablePeers()]);
    const matches = [...known].filter((p) => this.mesh.nicknameOf(p) === text);
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw new LoomError('ERR_INVALID_ARGUMENT', `nickname "${text}" is used by ${matches.join(', ')}: name the peer`);
    throw new LoomError('ERR_NOT_FOUND', `no peer named "${text.slice(0, 64)}" owns space or is reachable (a peer the mesh has forgotten must be named by its peer name)`);
  }
}

export function hostAllocationId(self: PeerName): string {
  return `${HOST_ID_PREFIX}${self}`;
}
