/**
 * One peer's IPAM: the ring (gossiped on the "ipam" channel), this peer's allocations, donations
 * between peers, bootstrap, rmpeer/reset, and persistence. `Ipam` is the front: it owns the
 * lifecycle, wires the parts together and is the API the daemon and the tests use. Each job is
 * one file:
 *
 *   config.ts          components and options, with defaults
 *   context.ts         what the parts share: ring, channel, store, clock; save and broadcast
 *   consensus.ts       the first ring: seed, consensus proposal, observer
 *   allocations.ts     who holds which address; allocate, claim, release, lookup
 *   waiters.ts         `allocate` calls waiting for the ring or a donation
 *   donations.ts       asking peers for space and answering them
 *   ring-gossip.ts     receiving rings and donation messages
 *   stats-reporter.ts  our advisory free/in-use numbers in the ring
 *   admin.ts           rmpeer and reset
 *
 * Invariants the parts keep together:
 * - it hands out only addresses inside space the ring says it owns, never a network or
 *   broadcast address of the range or of the requested subnet, and never an address held by
 *   another container or released less than `releaseGraceMs` ago;
 * - an allocation or ring change is written to the store before it is returned or gossiped;
 * - only its own ring entries are changed, except by `rmpeer` (entries of an unreachable peer,
 *   moved to a heir every caller in one component computes alike);
 * - bad bytes from the network are logged and change nothing.
 */
import { LoomError, toLoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import { type Cidr as CoreCidr, type NetworkCidr, parseCidr as parseCoreCidr } from '../core/net.js';
import type { GossipData, Gossiper } from '../mesh/types.js';
import { removePeers, resetPeer } from './admin.js';
import { AllocationTable, keyOf, parseAllocationId } from './allocations.js';
import type { BootstrapMode } from './bootstrap.js';
import { type Address, type Cidr, cidrEquals, cidrOf, cidrWithin, formatCidr, parseCidr } from './cidr.js';
import { type IpamComponents, type IpamInit, resolveIpamSettings } from './config.js';
import { Consensus } from './consensus.js';
import { IpamContext } from './context.js';
import { Donations } from './donations.js';
import type { Ring } from './ring.js';
import { decodeRing } from './ring-codec.js';
import { RingGossip } from './ring-gossip.js';
import { StatsReporter } from './stats-reporter.js';
import type { AllocationResult, IpamStatus } from './status.js';
import { AllocationWaiters } from './waiters.js';

export { HOST_ID_PREFIX, parseAllocationId } from './allocations.js';
export type { IpamComponents, IpamInit } from './config.js';

export const IPAM_CHANNEL = 'ipam';

export class Ipam implements Gossiper {
  readonly range: Cidr;
  readonly defaultSubnet: Cidr;
  readonly mode: BootstrapMode;
  private readonly context: IpamContext;
  private readonly router: IpamComponents['router'];
  private readonly consensus: Consensus;
  private readonly allocations: AllocationTable;
  private readonly waiters: AllocationWaiters;
  private readonly donations: Donations;
  private readonly ringGossip: RingGossip;
  private readonly stats: StatsReporter;
  private unsubscribe: (() => void) | null = null;

  constructor(components: IpamComponents, init: IpamInit = {}) {
    const settings = resolveIpamSettings(init);
    this.range = settings.range;
    this.defaultSubnet = settings.defaultSubnet;
    this.mode = settings.mode;
    this.router = components.router;
    const context = new IpamContext(components, settings);
    this.context = context;
    const stateText = (): string => this.stateText();
    const numbersChanged = (): void => this.stats.schedule();
    const ringChanged = (): void => this.afterRingChange();
    this.consensus = new Consensus(context, ringChanged);
    this.allocations = new AllocationTable(context, numbersChanged, stateText);
    this.stats = new StatsReporter(context, () => this.allocations.ownNumbers());
    this.donations = new Donations(context, this.allocations, {
      noDonorLeft: (subnet, error) => this.waiters.failSubnet(subnet, error),
      numbersChanged,
    });
    this.waiters = new AllocationWaiters(context, this.allocations, this.donations, stateText);
    this.ringGossip = new RingGossip(context, this.allocations, this.donations, ringChanged);
  }

  get self(): PeerName {
    return this.context.self;
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle
  // ------------------------------------------------------------------------------------------

  /** Loads durable state, registers the gossip channel and starts bootstrap. Not restartable. */
  start(): void {
    const { context } = this;
    if (context.running) return;
    this.openChannel();
    const state = context.store.load();
    if (state.ring) {
      const saved = decodeRing(state.ring);
      if (!cidrEquals(saved.range, this.range)) {
        throw new LoomError('ERR_RANGE_MISMATCH', `saved IPAM state is for range ${formatCidr(saved.range)}, configured ${formatCidr(this.range)}; reset the peer or fix the range`);
      }
      context.ring = saved;
    }
    this.allocations.restore(state.allocations, context.clock.now());
    context.running = true;
    this.unsubscribe = context.mesh.onChange(() => this.onMeshChange());
    if (context.ring.isEmpty()) this.consensus.begin();
    else this.stats.schedule();
    context.log.info({ range: formatCidr(this.range), mode: this.mode.kind, restoredAllocations: state.allocations.length, state: this.stateText() }, 'ipam started');
  }

  /**
   * Registers the "ipam" gossip channel. The daemon calls it before the router starts, so the
   * full state sent to each new neighbour includes the ring; `start` calls it otherwise.
   * Gossip that arrives before `start` is ignored (anti-entropy repeats it). Idempotent.
   */
  openChannel(): void {
    this.context.channel ??= this.router.newGossipChannel(IPAM_CHANNEL, this);
  }

  /** Stops timers and fails waiting allocations with ERR_UNAVAILABLE. Idempotent; the store stays open. */
  stop(): void {
    if (!this.context.running) return;
    this.context.running = false;
    this.unsubscribe?.();
    this.stats.stop();
    this.context.stopSaveRetry();
    this.consensus.stop();
    this.donations.stop();
    this.waiters.failAll(new LoomError('ERR_UNAVAILABLE', 'ipam stopped'));
  }

  /** `idle`, `awaiting consensus (quorum Q, known K)` or `ready`. */
  stateText(): string {
    return this.consensus.stateText();
  }

  // ------------------------------------------------------------------------------------------
  // Gossiper (ring-gossip.ts)
  // ------------------------------------------------------------------------------------------

  gossip(): GossipData | null {
    return this.ringGossip.fullState();
  }

  onGossip(update: Uint8Array): GossipData | null {
    return this.ringGossip.receiveRing(update, null);
  }

  onGossipBroadcast(src: PeerName, update: Uint8Array): GossipData | null {
    return this.ringGossip.receiveRing(update, src);
  }

  onGossipUnicast(src: PeerName, msg: Uint8Array): void {
    this.ringGossip.receiveMessage(src, msg);
  }

  /**
   * Merges a received ring. Malformed bytes (ERR_PROTOCOL), another range (ERR_RANGE_MISMATCH)
   * or another bootstrap (ERR_CONFLICT) are logged and change nothing. Returns our merged ring
   * when it changed (for the router to pass on), else null.
   */
  receiveRing(update: Uint8Array, src: PeerName | null): GossipData | null {
    return this.ringGossip.receiveRing(update, src);
  }

  // ------------------------------------------------------------------------------------------
  // Allocation API (allocations.ts, waiters.ts)
  // ------------------------------------------------------------------------------------------

  /**
   * An address for `containerId` in `subnet` (default subnet if omitted). Idempotent: the same id
   * and subnet get the same address, also within the grace period after `release`. Waits for the
   * ring or a donation up to `allocateTimeoutMs`; then ERR_UNAVAILABLE (no ring yet) or
   * ERR_EXHAUSTED (no peer had space). `subnet` as text ("a.b.c.d/n", parsed here) or a parsed block.
   */
  allocate(containerId: string, subnet?: string | NetworkCidr): Promise<AllocationResult> {
    try {
      const id = parseAllocationId(containerId);
      const net = this.subnetArg(subnet);
      this.context.requireRunning();
      const done = this.allocations.allocate(id, net);
      if (done) return Promise.resolve(done);
      return new Promise((resolve, reject) => this.waiters.enqueue(keyOf(id, net), id, net, { resolve, reject }));
    } catch (err) {
      return Promise.reject(toLoomError(err));
    }
  }

  /**
   * Records that `containerId` uses `cidr` ("a.b.c.d/n" text or a parsed Cidr; /32 or a bare
   * address means the default subnet). Honoured if the address is in our space and not held by another container;
   * else ERR_CONFLICT. Idempotent for the same id and address.
   */
  claim(containerId: string, cidr: string | CoreCidr): AllocationResult {
    if (typeof cidr !== 'string') return this.allocations.claim(containerId, cidr);
    return this.allocations.claim(containerId, parseCoreCidr(cidr.includes('/') ? cidr : `${cidr}/32`, { leadingZeros: true }));
  }

  /**
   * Marks every address of `containerId` released; each is reused for another container only
   * after `releaseGraceMs`. Idempotent; returns how many addresses it released.
   */
  release(containerId: string): number {
    return this.allocations.release(containerId);
  }

  /** The addresses `containerId` holds (released ones excluded), in subnet order. */
  lookup(containerId: string): AllocationResult[] {
    return this.allocations.lookup(containerId);
  }

  // ------------------------------------------------------------------------------------------
  // Admin (admin.ts)
  // ------------------------------------------------------------------------------------------

  /** Takes over the space of peers that are gone for good (list them all at once); see admin.ts. */
  rmpeer(deadNames: string | readonly string[], options: { force?: boolean } = {}): { heir: PeerName; moved: number } {
    return removePeers(this.context, deadNames, options, () => this.afterRingChange());
  }

  /**
   * Hands all our space to the smallest reachable other peer and forgets our allocations (the
   * peer is leaving). Refused while containers hold addresses unless `force`.
   */
  reset(options: { force?: boolean } = {}): { heir: PeerName | null; moved: number } {
    return resetPeer(this.context, this.allocations, options);
  }

  // ------------------------------------------------------------------------------------------
  // Status
  // ------------------------------------------------------------------------------------------

  status(): IpamStatus {
    const { context } = this;
    const mine = this.allocations.ownNumbers();
    const peers = context.ring.owners().map((name) => {
      const s = context.ring.stats.get(name);
      const self = name === this.self;
      return {
        name,
        nickname: context.mesh.nicknameOf(name),
        owned: context.ring.ownedSize(name),
        inUse: self ? mine.inUse : (s?.inUse ?? null),
        free: self ? mine.free : (s?.free ?? null),
        reachable: context.mesh.isReachable(name),
      };
    });
    return {
      self: this.self,
      range: formatCidr(this.range),
      defaultSubnet: cidrEquals(this.defaultSubnet, this.range) ? null : formatCidr(this.defaultSubnet),
      mode: this.mode.kind,
      state: this.stateText(),
      rangeSize: this.range.size,
      peers,
      unreachableOwners: peers.filter((p) => !p.reachable).map((p) => p.name),
      allocations: mine.inUse,
      releasedInGrace: mine.inGrace,
      pendingAllocations: this.waiters.size,
      rangeMismatches: this.ringGossip.rangeMismatches(),
    };
  }

  /** A copy of the ring, for tests, status and the bench. */
  ringSnapshot(): Ring {
    return this.context.ring.clone();
  }

  /** Live allocations, for invariant checks (one row per container and subnet). */
  liveAllocations(): Array<{ containerId: string; address: Address }> {
    return this.allocations.live();
  }

  // ------------------------------------------------------------------------------------------
  // Wiring
  // ------------------------------------------------------------------------------------------

  /** After any change of the ring: waiting allocations retry, our numbers and bootstrap follow. */
  private afterRingChange(): void {
    this.consensus.ringArrived();
    this.waiters.retry();
    this.stats.schedule();
    this.consensus.evaluate();
  }

  private onMeshChange(): void {
    if (!this.context.running) return;
    this.donations.meshChanged();
    this.consensus.evaluate();
  }

  private subnetArg(subnet: string | NetworkCidr | undefined): Cidr {
    if (subnet === undefined) return this.defaultSubnet;
    const net = typeof subnet === 'string' ? parseCidr(subnet) : cidrOf(subnet.address, subnet.prefix);
    if (!cidrWithin(net, this.range)) throw new LoomError('ERR_INVALID_ARGUMENT', `subnet ${formatCidr(net)} is not inside the range ${formatCidr(this.range)}`);
    return net;
  }
}
