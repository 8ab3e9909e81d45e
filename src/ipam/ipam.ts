/**
 * One peer's IPAM: the ring (gossiped on the "ipam" channel), this peer's allocations, donations
 * between peers, bootstrap, rmpeer/reset, and persistence.
 *
 * Invariants this class keeps:
 * - it hands out only addresses inside space the ring says it owns, never a network or
 *   broadcast address of the range or of the requested subnet, and never an address held by
 *   another container or released less than `releaseGraceMs` ago;
 * - an allocation or ring change is written to the store before it is returned or gossiped;
 * - only its own ring entries are changed, except by `rmpeer` (entries of an unreachable peer,
 *   moved to a heir every caller in one component computes alike);
 * - bad bytes from the network are logged and change nothing.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import { type ContainerId, type PeerName, parseContainerId, parsePeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { GossipChannel, GossipData, Gossiper, MeshView } from '../mesh/types.js';
import { type BootstrapMode, parseBootstrap, quorumOf, shouldPropose } from './bootstrap.js';
import {
  type Address,
  type Cidr,
  cidrContains,
  cidrEquals,
  cidrWithin,
  formatAddress,
  formatCidr,
  parseAddressInCidr,
  parseCidr,
  usableInterval,
} from './cidr.js';
import { RingGossipData } from './gossip-data.js';
import { decodeIpamMessage, encodeIpamMessage } from './messages.js';
import { type Interval, Ring } from './ring.js';
import { decodeRing, encodeRing } from './ring-codec.js';
import { clip, findFree, largestFreeRun, totalSize } from './space.js';
import type { AllocationResult, IpamStatus, RangeMismatch } from './status.js';
import type { IpamStore } from './store.js';

export const IPAM_CHANNEL = 'ipam';

export interface IpamComponents {
  mesh: MeshView;
  /** The router (or a test fake); IPAM registers itself as the "ipam" gossiper. */
  router: { newGossipChannel(name: string, gossiper: Gossiper): GossipChannel };
  clock: Clock;
  logger: Logger;
  store: IpamStore;
}

export interface IpamInit {
  /** The whole allocation range; every peer must use the same. Default 10.32.0.0/12. */
  range?: string;
  /** Subnet used when `allocate` is given none. Default: the whole range. */
  defaultSubnet?: string;
  /** `seed=NAME,...`, `consensus[=N]` or `observer`. Default `consensus`. */
  bootstrap?: string;
  /** N for a bare `consensus`: the daemon passes 1 + its initial targets. Default 1. */
  expectedPeers?: number;
  /** How long a released address stays reserved for the same container. Default 30 s. */
  releaseGraceMs?: number;
  /** How long `allocate` waits for a ring or a donation before failing. Default 30 s. */
  allocateTimeoutMs?: number;
  /** How long to wait for one donor's answer before asking the next. Default 5 s. */
  donationTimeoutMs?: number;
  /** How long the set of consensus participants must stay the same before proposing. Default 2 s. */
  consensusSettleMs?: number;
  /** Delay before broadcasting our changed free/in-use numbers (they are advisory). Default 1 s. */
  statsDelayMs?: number;
}

interface Allocation {
  containerId: ContainerId;
  subnet: Cidr;
  address: Address;
  /** Clock time of release, or null while the container holds it. */
  releasedAt: number | null;
}

interface PendingAllocation {
  key: string;
  containerId: ContainerId;
  subnet: Cidr;
  waiters: Array<{ resolve: (r: AllocationResult) => void; reject: (e: LoomError) => void }>;
  deadline: TimerHandle;
}

/** Outstanding donation request for one subnet (at most one donor asked at a time). */
interface DonationRequest {
  subnet: Cidr;
  asked: PeerName | null;
  tried: Set<PeerName>;
  timer: TimerHandle | null;
}

/** Bounds on what status keeps about peers of other ranges. */
const MAX_MISMATCH_RANGES = 16;
const MAX_MISMATCH_PEERS = 64;

/**
 * Who allocates for a container id, or for the host itself: `host:<peer name>` is the address
 * `loom expose` puts on the bridge (Weave's "weave:expose"). Anything else must be a container id.
 */
export function parseAllocationId(value: unknown): ContainerId {
  if (typeof value === 'string' && value.startsWith(HOST_ID_PREFIX)) {
    return `${HOST_ID_PREFIX}${parsePeerName(value.slice(HOST_ID_PREFIX.length))}` as ContainerId;
  }
  return parseContainerId(value);
}

export const HOST_ID_PREFIX = 'host:';

const keyOf = (id: string, subnet: Cidr): string => `${id}|${formatCidr(subnet)}`;

export class Ipam implements Gossiper {
  readonly range: Cidr;
  readonly defaultSubnet: Cidr;
  readonly mode: BootstrapMode;
  private readonly c: IpamComponents;
  private readonly log: Logger;
  private readonly opts: Required<Omit<IpamInit, 'range' | 'defaultSubnet' | 'bootstrap'>>;
  private channel: GossipChannel | null = null;
  private ring: Ring;
  private readonly allocations = new Map<string, Allocation>();
  private readonly byAddress = new Map<Address, string>();
  private readonly pending = new Map<string, PendingAllocation>();
  private readonly donations = new Map<string, DonationRequest>();
  private cursor: Address;
  private running = false;
  private unsubscribe: (() => void) | null = null;
  private statsTimer: TimerHandle | null = null;
  private consensusTimer: TimerHandle | null = null;
  private consensusCandidates = '';
  private readonly rangeMismatches = new Map<string, RangeMismatch>();

  constructor(components: IpamComponents, init: IpamInit = {}) {
    this.c = components;
    this.log = components.logger.child({ component: 'ipam' });
    this.range = parseCidr(init.range ?? '10.32.0.0/12');
    this.defaultSubnet = init.defaultSubnet === undefined ? this.range : parseCidr(init.defaultSubnet);
    if (!cidrWithin(this.defaultSubnet, this.range)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `default subnet ${formatCidr(this.defaultSubnet)} is not inside the range ${formatCidr(this.range)}`);
    }
    this.mode = parseBootstrap(init.bootstrap ?? 'consensus');
    this.opts = {
      expectedPeers: positive(init.expectedPeers ?? 1, 'expectedPeers'),
      releaseGraceMs: nonNegative(init.releaseGraceMs ?? 30_000, 'releaseGraceMs'),
      allocateTimeoutMs: positive(init.allocateTimeoutMs ?? 30_000, 'allocateTimeoutMs'),
      donationTimeoutMs: positive(init.donationTimeoutMs ?? 5_000, 'donationTimeoutMs'),
      consensusSettleMs: nonNegative(init.consensusSettleMs ?? 2_000, 'consensusSettleMs'),
      statsDelayMs: nonNegative(init.statsDelayMs ?? 1_000, 'statsDelayMs'),
    };
    this.ring = new Ring(this.range);
    this.cursor = this.range.start;
  }

  get self(): PeerName {
    return this.c.mesh.self;
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle
  // ------------------------------------------------------------------------------------------

  /** Loads durable state, registers the gossip channel and starts bootstrap. Not restartable. */
  start(): void {
    if (this.running) return;
    this.openChannel();
    const state = this.c.store.load();
    if (state.ring) {
      const saved = decodeRing(state.ring);
      if (!cidrEquals(saved.range, this.range)) {
        throw new LoomError('ERR_RANGE_MISMATCH', `saved IPAM state is for range ${formatCidr(saved.range)}, configured ${formatCidr(this.range)}; reset the peer or fix the range`);
      }
      this.ring = saved;
    }
    const now = this.c.clock.now();
    for (const s of state.allocations) {
      const a: Allocation = { containerId: s.containerId as ContainerId, subnet: parseCidr(s.subnet), address: s.address, releasedAt: s.released ? now : null };
      const key = keyOf(a.containerId, a.subnet);
      this.allocations.set(key, a);
      this.byAddress.set(a.address, key);
    }
    this.running = true;
    this.unsubscribe = this.c.mesh.onChange(() => this.onMeshChange());
    if (this.ring.isEmpty()) this.beginBootstrap();
    else this.scheduleStats();
    this.log.info({ range: formatCidr(this.range), mode: this.mode.kind, restoredAllocations: state.allocations.length, state: this.stateText() }, 'ipam started');
  }

  /**
   * Registers the "ipam" gossip channel. The daemon calls it before the router starts, so the
   * full state sent to each new neighbour includes the ring; `start` calls it otherwise.
   * Gossip that arrives before `start` is ignored (anti-entropy repeats it). Idempotent.
   */
  openChannel(): void {
    this.channel ??= this.c.router.newGossipChannel(IPAM_CHANNEL, this);
  }

  /** Stops timers and fails waiting allocations with ERR_UNAVAILABLE. Idempotent; the store stays open. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.unsubscribe?.();
    this.statsTimer?.cancel();
    this.consensusTimer?.cancel();
    for (const d of this.donations.values()) d.timer?.cancel();
    this.donations.clear();
    for (const p of [...this.pending.values()]) this.failPending(p, new LoomError('ERR_UNAVAILABLE', 'ipam stopped'));
  }

  // ------------------------------------------------------------------------------------------
  // Bootstrap
  // ------------------------------------------------------------------------------------------

  private beginBootstrap(): void {
    switch (this.mode.kind) {
      case 'seed':
        if (this.mode.seeds.includes(this.self)) this.adoptInitialRing(Ring.initial(this.range, this.mode.seeds));
        return;
      case 'consensus':
        // Announce that we take part: participants are the peers whose stats we have seen.
        this.ring.setStats(this.self, 0, 0);
        this.persistRing();
        this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
        this.evaluateConsensus();
        return;
      case 'observer':
        return;
      default: {
        const never: never = this.mode;
        throw new LoomError('ERR_INTERNAL', `unknown bootstrap mode ${String(never)}`);
      }
    }
  }

  private quorum(): number {
    return this.mode.kind === 'consensus' ? quorumOf(this.mode.clusterSize ?? this.opts.expectedPeers) : 0;
  }

  private consensusParticipants(): PeerName[] {
    return this.c.mesh.reachablePeers().filter((p) => p === this.self || this.ring.stats.has(p)).sort();
  }

  private evaluateConsensus(): void {
    if (!this.running || this.mode.kind !== 'consensus' || !this.ring.isEmpty()) return;
    const participants = this.consensusParticipants();
    const key = participants.join(',');
    if (key === this.consensusCandidates && this.consensusTimer) return;
    this.consensusTimer?.cancel();
    this.consensusTimer = null;
    this.consensusCandidates = key;
    if (!shouldPropose(this.self, participants, this.quorum())) return;
    // Propose only if the same participants are still there after the settle period.
    this.consensusTimer = this.c.clock.setTimeout(() => {
      this.consensusTimer = null;
      if (!this.running || !this.ring.isEmpty()) return;
      const now = this.consensusParticipants();
      if (now.join(',') !== key || !shouldPropose(this.self, now, this.quorum())) {
        this.evaluateConsensus();
        return;
      }
      this.log.info({ participants: now, quorum: this.quorum() }, 'consensus: proposing the initial split');
      this.adoptInitialRing(Ring.initial(this.range, now));
    }, this.opts.consensusSettleMs);
  }

  private adoptInitialRing(initial: Ring): void {
    this.ring.merge(initial);
    this.persistRing();
    this.log.info({ seeds: initial.seeds, owned: this.ring.ownedSize(this.self) }, 'ipam ring initialised');
    this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
    this.afterRingChange();
  }

  /** `idle`, `awaiting consensus (quorum Q, known K)` or `ready`. */
  stateText(): string {
    if (!this.ring.isEmpty()) return 'ready';
    if (this.mode.kind === 'consensus') return `awaiting consensus (quorum ${this.quorum()}, known ${this.consensusParticipants().length})`;
    return 'idle';
  }

  // ------------------------------------------------------------------------------------------
  // Gossiper
  // ------------------------------------------------------------------------------------------

  gossip(): GossipData | null {
    if (this.ring.isEmpty() && this.ring.stats.size === 0) return null;
    return new RingGossipData(this.ring.clone());
  }

  onGossip(update: Uint8Array): GossipData | null {
    return this.receiveRing(update, null);
  }

  onGossipBroadcast(src: PeerName, update: Uint8Array): GossipData | null {
    return this.receiveRing(update, src);
  }

  onGossipUnicast(src: PeerName, msg: Uint8Array): void {
    let decoded;
    try {
      decoded = decodeIpamMessage(msg);
    } catch (err) {
      const e = toLoomError(err, 'ERR_PROTOCOL');
      this.log.warn({ code: e.code, src, err: e.message }, 'ignored malformed ipam message');
      return;
    }
    if (!this.running) return;
    switch (decoded.type) {
      case 'donate-request':
        this.onDonationRequest(src, decoded.subnet ?? this.range);
        return;
      case 'donate-none':
        this.onDonationRefused(src, decoded.subnet ?? this.range);
        return;
      default: {
        const never: never = decoded;
        throw new LoomError('ERR_INTERNAL', `unhandled ipam message ${String(never)}`);
      }
    }
  }

  /**
   * Merges a received ring. Malformed bytes (ERR_PROTOCOL), another range (ERR_RANGE_MISMATCH)
   * or another bootstrap (ERR_CONFLICT) are logged and change nothing. Returns our merged ring
   * when it changed (for the router to pass on), else null.
   */
  receiveRing(update: Uint8Array, src: PeerName | null): GossipData | null {
    if (!this.running) return null;
    let incoming: Ring;
    try {
      incoming = decodeRing(update);
    } catch (err) {
      const e = toLoomError(err, 'ERR_PROTOCOL');
      this.log.warn({ code: e.code, src, err: e.message }, 'ignored malformed ring update');
      return null;
    }
    const wasEmpty = this.ring.isEmpty();
    const ownedBefore = this.ring.ownedBy(this.self);
    const sizeBefore = totalSize(ownedBefore);
    let result;
    try {
      result = this.ring.merge(incoming);
    } catch (err) {
      const e = toLoomError(err);
      if (e.code === 'ERR_RANGE_MISMATCH') {
        this.noteRangeMismatch(incoming, src, e);
        return null;
      }
      this.log.error({ code: e.code, src, detail: e.detail, err: e.message }, 'rejected ring update');
      return null;
    }
    for (const c of result.conflicts) {
      this.log.warn({ code: 'ERR_CONFLICT', token: formatAddress(c.token), winner: c.winner, loser: c.loser }, 'two owners for one ring entry at the same version; the smaller name wins');
    }
    if (!result.changed) return null;
    this.persistRing();
    this.reportLostSpace(ownedBefore);
    if (wasEmpty && !this.ring.isEmpty()) this.log.info({ seeds: this.ring.seeds, src }, 'ipam ring received');
    if (this.ring.ownedSize(this.self) > sizeBefore) this.donationArrived();
    this.afterRingChange();
    return new RingGossipData(this.ring.clone());
  }

  /**
   * Remembers who gossips another range, for status (peers named by the broadcast source, or
   * else by the foreign ring's owners and reporters). Logged at error level once per range and
   * peer set, then at debug level, so anti-entropy does not flood the log.
   */
  private noteRangeMismatch(incoming: Ring, src: PeerName | null, e: LoomError): void {
    const range = formatCidr(incoming.range);
    const named = src !== null ? [src] : [...new Set([...incoming.owners(), ...incoming.stats.keys()])];
    const known = this.rangeMismatches.get(range);
    const peers = [...new Set([...(known?.peers ?? []), ...named])].sort().slice(0, MAX_MISMATCH_PEERS);
    const isNew = !known || peers.length !== known.peers.length;
    this.rangeMismatches.set(range, { range, peers, count: (known?.count ?? 0) + 1, lastSeenAt: this.c.clock.now() });
    while (this.rangeMismatches.size > MAX_MISMATCH_RANGES) this.rangeMismatches.delete(this.rangeMismatches.keys().next().value!);
    const fields = { code: e.code, ours: formatCidr(this.range), theirs: range, peers: named };
    if (isNew) this.log.error(fields, 'refused IPAM gossip from peers with another allocation range: give every peer the same --ipalloc-range');
    else this.log.debug(fields, 'refused IPAM gossip of another range again');
  }

  /** Space we owned that the ring now gives to someone else: only legal if we were rmpeer'd. */
  private reportLostSpace(ownedBefore: Interval[]): void {
    if (ownedBefore.length === 0) return;
    const after = this.ring.ownedBy(this.self);
    let kept = 0;
    for (const r of ownedBefore) kept += totalSize(clip(after, r));
    if (kept === totalSize(ownedBefore)) return;
    const orphaned = [...this.allocations.values()].filter((a) => this.ring.ownerOf(a.address) !== this.self);
    this.log.error(
      { code: 'ERR_CONFLICT', orphaned: orphaned.map((a) => ({ containerId: a.containerId, address: formatAddress(a.address) })) },
      'another peer took over space this peer owned (was it removed with rmpeer while alive?)',
    );
  }

  private afterRingChange(): void {
    if (!this.ring.isEmpty()) {
      this.consensusTimer?.cancel();
      this.consensusTimer = null;
    }
    this.retryPending();
    this.scheduleStats();
    this.evaluateConsensus();
  }

  private onMeshChange(): void {
    if (!this.running) return;
    for (const d of this.donations.values()) {
      if (d.asked && !this.c.mesh.isReachable(d.asked)) this.askNextDonor(d, d.asked);
    }
    this.evaluateConsensus();
  }

  // ------------------------------------------------------------------------------------------
  // Allocation API
  // ------------------------------------------------------------------------------------------

  /**
   * An address for `containerId` in `subnet` (default subnet if omitted). Idempotent: the same id
   * and subnet get the same address, also within the grace period after `release`. Waits for the
   * ring or a donation up to `allocateTimeoutMs`; then ERR_UNAVAILABLE (no ring yet) or
   * ERR_EXHAUSTED (no peer had space).
   */
  allocate(containerId: string, subnet?: string): Promise<AllocationResult> {
    try {
      const id = parseAllocationId(containerId);
      const net = this.subnetArg(subnet);
      this.requireRunning();
      const key = keyOf(id, net);
      const existing = this.allocations.get(key);
      if (existing) {
        if (existing.releasedAt !== null) {
          existing.releasedAt = null;
          this.persistAllocation(existing);
          this.scheduleStats();
        }
        return Promise.resolve(this.result(existing));
      }
      const done = this.tryAllocate(id, net);
      if (done) return Promise.resolve(done);
      return new Promise((resolve, reject) => this.enqueue(key, id, net, { resolve, reject }));
    } catch (err) {
      return Promise.reject(toLoomError(err));
    }
  }

  /**
   * Records that `containerId` uses `cidr` ("a.b.c.d/n"; /32 or a bare address means the
   * default subnet). Honoured if the address is in our space and not held by another container;
   * else ERR_CONFLICT. Idempotent for the same id and address.
   */
  claim(containerId: string, cidr: string): AllocationResult {
    const id = parseAllocationId(containerId);
    const text = cidr.includes('/') ? cidr : `${cidr}/32`;
    const { address, cidr: block } = parseAddressInCidr(text);
    const net = block.prefix === 32 ? this.defaultSubnet : block;
    if (!cidrWithin(net, this.range)) throw new LoomError('ERR_INVALID_ARGUMENT', `${formatCidr(net)} is not inside the range ${formatCidr(this.range)}`);
    if (!inUsable(this.range, address) || !inUsable(net, address)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `${formatAddress(address)} is a network or broadcast address or outside ${formatCidr(net)}`);
    }
    this.requireRunning();
    const key = keyOf(id, net);
    const existing = this.allocations.get(key);
    if (existing && existing.address !== address) {
      throw new LoomError('ERR_CONFLICT', `container ${id} already has ${formatAddress(existing.address)} in ${formatCidr(net)}`);
    }
    const holder = this.byAddress.get(address);
    if (holder !== undefined && holder !== key) {
      this.purgeIfExpired(holder);
      if (this.byAddress.get(address) !== undefined) throw new LoomError('ERR_CONFLICT', `${formatAddress(address)} is in use by another container`);
    }
    if (this.ring.isEmpty()) throw new LoomError('ERR_UNAVAILABLE', 'IPAM is not ready: no address ring yet', { detail: { state: this.stateText() } });
    const owner = this.ring.ownerOf(address);
    if (owner !== this.self) {
      throw new LoomError('ERR_CONFLICT', `${formatAddress(address)} belongs to peer ${owner ?? 'none'}`, {
        detail: { owner, ownerReachable: owner !== undefined && this.c.mesh.isReachable(owner) },
      });
    }
    const a: Allocation = existing ?? { containerId: id, subnet: net, address, releasedAt: null };
    a.releasedAt = null;
    this.record(key, a);
    return this.result(a);
  }

  /**
   * Marks every address of `containerId` released; each is reused for another container only
   * after `releaseGraceMs`. Idempotent; returns how many addresses it released.
   */
  release(containerId: string): number {
    const id = parseAllocationId(containerId);
    let n = 0;
    const now = this.c.clock.now();
    for (const a of this.allocations.values()) {
      if (a.containerId !== id || a.releasedAt !== null) continue;
      a.releasedAt = now;
      this.persistAllocation(a);
      n++;
    }
    if (n > 0) this.scheduleStats();
    return n;
  }

  /** The addresses `containerId` holds (released ones excluded), in subnet order. */
  lookup(containerId: string): AllocationResult[] {
    const id = parseAllocationId(containerId);
    return [...this.allocations.values()]
      .filter((a) => a.containerId === id && a.releasedAt === null)
      .sort((x, y) => x.subnet.start - y.subnet.start)
      .map((a) => this.result(a));
  }

  private subnetArg(subnet: string | undefined): Cidr {
    if (subnet === undefined) return this.defaultSubnet;
    const net = parseCidr(subnet);
    if (!cidrWithin(net, this.range)) throw new LoomError('ERR_INVALID_ARGUMENT', `subnet ${formatCidr(net)} is not inside the range ${formatCidr(this.range)}`);
    return net;
  }

  private requireRunning(): void {
    if (!this.running) throw new LoomError('ERR_UNAVAILABLE', 'ipam is not running');
  }

  private result(a: Allocation): AllocationResult {
    return { containerId: a.containerId, address: formatAddress(a.address), cidr: `${formatAddress(a.address)}/${a.subnet.prefix}` };
  }

  /** Our space usable for `subnet`: owned pieces clipped to the usable part of range and subnet. */
  private usableRuns(subnet: Cidr): Interval[] {
    const r = usableInterval(this.range);
    const s = usableInterval(subnet);
    return clip(this.ring.ownedBy(this.self), { start: Math.max(r.lo, s.lo), end: Math.min(r.hi, s.hi) });
  }

  private isTaken = (a: Address): boolean => {
    const key = this.byAddress.get(a);
    if (key === undefined) return false;
    return !this.purgeIfExpired(key);
  };

  /** Drops a released allocation whose grace period is over; returns true if it did. */
  private purgeIfExpired(key: string): boolean {
    const a = this.allocations.get(key);
    if (!a || a.releasedAt === null || this.c.clock.now() - a.releasedAt < this.opts.releaseGraceMs) return false;
    this.allocations.delete(key);
    this.byAddress.delete(a.address);
    this.c.store.deleteAllocation(a.containerId, formatCidr(a.subnet));
    return true;
  }

  private tryAllocate(id: ContainerId, subnet: Cidr): AllocationResult | null {
    if (this.ring.isEmpty()) return null;
    const runs = this.usableRuns(subnet);
    const address = findFree(runs, this.isTaken, this.cursor);
    if (address === undefined) return null;
    const a: Allocation = { containerId: id, subnet, address, releasedAt: null };
    this.record(keyOf(id, subnet), a);
    this.cursor = address + 1;
    return this.result(a);
  }

  private record(key: string, a: Allocation): void {
    this.persistAllocation(a);
    this.allocations.set(key, a);
    this.byAddress.set(a.address, key);
    this.scheduleStats();
  }

  private persistAllocation(a: Allocation): void {
    this.c.store.putAllocation({ containerId: a.containerId, subnet: formatCidr(a.subnet), address: a.address, released: a.releasedAt !== null });
  }

  private persistRing(): void {
    this.c.store.saveRing(encodeRing(this.ring));
  }

  private enqueue(key: string, id: ContainerId, subnet: Cidr, waiter: PendingAllocation['waiters'][number]): void {
    const existing = this.pending.get(key);
    if (existing) {
      existing.waiters.push(waiter);
      return;
    }
    const p: PendingAllocation = {
      key,
      containerId: id,
      subnet,
      waiters: [waiter],
      deadline: this.c.clock.setTimeout(() => {
        const code = this.ring.isEmpty() ? 'ERR_UNAVAILABLE' : 'ERR_EXHAUSTED';
        this.failPending(p, new LoomError(code, code === 'ERR_UNAVAILABLE' ? `IPAM is not ready (${this.stateText()})` : `no free address in ${formatCidr(subnet)}`));
      }, this.opts.allocateTimeoutMs),
    };
    this.pending.set(key, p);
    if (!this.ring.isEmpty()) this.requestDonation(subnet);
  }

  private failPending(p: PendingAllocation, err: LoomError): void {
    p.deadline.cancel();
    this.pending.delete(p.key);
    for (const w of p.waiters) w.reject(err);
  }

  private retryPending(): void {
    if (this.ring.isEmpty()) return;
    for (const p of [...this.pending.values()]) {
      const done = this.tryAllocate(p.containerId, p.subnet);
      if (!done) {
        this.requestDonation(p.subnet);
        continue;
      }
      p.deadline.cancel();
      this.pending.delete(p.key);
      for (const w of p.waiters) w.resolve(done);
    }
    for (const [k, d] of this.donations) {
      if (![...this.pending.values()].some((p) => cidrEquals(p.subnet, d.subnet))) {
        d.timer?.cancel();
        this.donations.delete(k);
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Donations
  // ------------------------------------------------------------------------------------------

  private requestDonation(subnet: Cidr): void {
    const k = formatCidr(subnet);
    let d = this.donations.get(k);
    if (d && d.asked) return;
    if (!d) {
      d = { subnet, asked: null, tried: new Set(), timer: null };
      this.donations.set(k, d);
    }
    this.askNextDonor(d, null);
  }

  /**
   * Donor candidates: reachable owners of space in the subnet, most reported free first. The
   * reported numbers may be stale, so a peer that reported none is still asked, last.
   */
  private donorsFor(subnet: Cidr, tried: Set<PeerName>): PeerName[] {
    const u = usableInterval(subnet);
    const limit = { start: u.lo, end: u.hi };
    const candidates = this.c.mesh
      .reachablePeers()
      .filter((p) => p !== this.self && !tried.has(p))
      .map((p) => ({ p, size: totalSize(clip(this.ring.ownedBy(p), limit)), free: this.ring.stats.get(p)?.free }))
      .filter((x) => x.size > 0);
    candidates.sort((x, y) => (y.free ?? y.size) - (x.free ?? x.size) || (x.p < y.p ? -1 : 1));
    return candidates.map((x) => x.p);
  }

  private askNextDonor(d: DonationRequest, failed: PeerName | null): void {
    if (failed) d.tried.add(failed);
    d.timer?.cancel();
    d.timer = null;
    d.asked = null;
    const next = this.donorsFor(d.subnet, d.tried)[0];
    if (next === undefined) {
      this.donations.delete(formatCidr(d.subnet));
      for (const p of [...this.pending.values()]) {
        if (cidrEquals(p.subnet, d.subnet)) this.failPending(p, new LoomError('ERR_EXHAUSTED', `no free address in ${formatCidr(d.subnet)} on any reachable peer`));
      }
      return;
    }
    d.asked = next;
    d.timer = this.c.clock.setTimeout(() => this.askNextDonor(d, next), this.opts.donationTimeoutMs);
    this.log.debug({ donor: next, subnet: formatCidr(d.subnet) }, 'asking for a donation');
    this.channel?.gossipUnicast(next, encodeIpamMessage({ type: 'donate-request', subnet: cidrEquals(d.subnet, this.range) ? null : d.subnet }));
  }

  /** We gained space: outstanding requests are answered; retryPending asks again if still short. */
  private donationArrived(): void {
    for (const d of this.donations.values()) {
      d.timer?.cancel();
      d.timer = null;
      d.asked = null;
    }
  }

  private onDonationRefused(src: PeerName, subnet: Cidr): void {
    const d = this.donations.get(formatCidr(subnet));
    if (d && d.asked === src) this.askNextDonor(d, src);
  }

  /** Gives the upper half of our largest free run in `subnet` to `requester`, or says none. */
  private onDonationRequest(requester: PeerName, subnet: Cidr): void {
    const refuse = (): void => this.channel?.gossipUnicast(requester, encodeIpamMessage({ type: 'donate-none', subnet: cidrEquals(subnet, this.range) ? null : subnet }));
    if (this.ring.isEmpty() || !cidrWithin(subnet, this.range) || requester === this.self) return refuse();
    for (const key of [...this.allocations.keys()]) this.purgeIfExpired(key);
    const run = largestFreeRun(this.usableRuns(subnet), this.byAddress.keys());
    if (!run) return refuse();
    const start = run.start + Math.floor((run.end - run.start) / 2);
    try {
      this.ring.transfer(start, run.end, this.self, requester);
    } catch (err) {
      this.log.error({ err: toLoomError(err).message }, 'donation failed');
      return refuse();
    }
    this.persistRing();
    this.log.info({ to: requester, from: formatAddress(start), count: run.end - start }, 'donated address space');
    this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
    this.scheduleStats();
  }

  // ------------------------------------------------------------------------------------------
  // rmpeer / reset
  // ------------------------------------------------------------------------------------------

  /**
   * Takes over the space of peers that are gone for good (list them all at once).
   *
   * Safe when run on several peers at once: the heir is the smallest name among the peers
   * reachable from here, so runners of one component make identical changes. Runners in two
   * components could pick two heirs, so rmpeer is refused (ERR_CONFLICT) while any other peer
   * that owns space is unreachable: two disjoint components cannot both reach every owner.
   * `force` skips that check; a resulting tie is then resolved by the ring (smaller heir wins)
   * and the loser logs the allocations it lost. Refused while a listed peer is reachable.
   */
  rmpeer(deadNames: string | readonly string[], options: { force?: boolean } = {}): { heir: PeerName; moved: number } {
    const dead = [...new Set((typeof deadNames === 'string' ? [deadNames] : deadNames).map((n) => parsePeerName(n)))];
    this.requireRunning();
    if (dead.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'name at least one peer to remove');
    if (dead.includes(this.self)) throw new LoomError('ERR_INVALID_ARGUMENT', 'cannot rmpeer ourselves; use reset');
    const reachable = dead.filter((p) => this.c.mesh.isReachable(p));
    if (reachable.length > 0) throw new LoomError('ERR_CONFLICT', `peer ${reachable.join(', ')} is reachable; stop it before removing it`);
    if (this.ring.isEmpty()) throw new LoomError('ERR_UNAVAILABLE', 'IPAM is not ready: no address ring yet');
    const unreachableOwners = this.ring.owners().filter((p) => !dead.includes(p) && !this.c.mesh.isReachable(p));
    if (unreachableOwners.length > 0 && !options.force) {
      throw new LoomError('ERR_CONFLICT', `other owners of space are unreachable (${unreachableOwners.join(', ')}): remove them too if they are gone, or heal the network first`, {
        detail: { unreachableOwners },
      });
    }
    const heir = this.c.mesh.reachablePeers().filter((p) => !dead.includes(p)).sort()[0] ?? this.self;
    let moved = 0;
    for (const d of dead) moved += this.ring.reassign(d, heir);
    if (moved > 0) {
      this.persistRing();
      this.log.warn({ dead, heir, moved }, 'rmpeer: took over the space of removed peers');
      this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
      this.afterRingChange();
    }
    return { heir, moved };
  }

  /**
   * Hands all our space to the smallest reachable other peer and forgets our allocations (the
   * peer is leaving). Refused while containers hold addresses unless `force`.
   */
  reset(options: { force?: boolean } = {}): { heir: PeerName | null; moved: number } {
    this.requireRunning();
    const live = [...this.allocations.values()].filter((a) => a.releasedAt === null).length;
    if (live > 0 && !options.force) throw new LoomError('ERR_CONFLICT', `${live} containers still hold addresses; release them or force`);
    const owned = this.ring.ownedBy(this.self);
    const heir = this.c.mesh.reachablePeers().filter((p) => p !== this.self).sort()[0];
    if (owned.length > 0 && heir === undefined) throw new LoomError('ERR_UNAVAILABLE', 'no reachable peer to hand our space to');
    for (const r of owned) this.ring.transfer(r.start, r.end, this.self, heir!);
    this.allocations.clear();
    this.byAddress.clear();
    this.c.store.clearAllocations();
    this.ring.setStats(this.self, 0, 0);
    this.persistRing();
    const moved = totalSize(owned);
    this.log.warn({ heir, moved }, 'reset: handed our space to another peer');
    this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
    return { heir: heir ?? null, moved };
  }

  // ------------------------------------------------------------------------------------------
  // Stats and status
  // ------------------------------------------------------------------------------------------

  private scheduleStats(): void {
    if (this.statsTimer || !this.running) return;
    this.statsTimer = this.c.clock.setTimeout(() => {
      this.statsTimer = null;
      if (!this.running || this.ring.isEmpty()) return;
      const { free, inUse } = this.ownNumbers();
      if (this.ring.setStats(this.self, free, inUse)) {
        this.persistRing();
        this.channel?.gossipBroadcast(new RingGossipData(this.ring.clone()));
      }
    }, this.opts.statsDelayMs);
  }

  private ownNumbers(): { free: number; inUse: number; inGrace: number } {
    let inUse = 0;
    let inGrace = 0;
    let takenInOwn = 0;
    for (const a of this.allocations.values()) {
      if (a.releasedAt === null) inUse++;
      else inGrace++;
      if (this.ring.ownerOf(a.address) === this.self) takenInOwn++;
    }
    const free = Math.max(0, totalSize(this.usableRuns(this.range)) - takenInOwn);
    return { free, inUse, inGrace };
  }

  status(): IpamStatus {
    const mine = this.ownNumbers();
    const peers = this.ring.owners().map((name) => {
      const s = this.ring.stats.get(name);
      const self = name === this.self;
      return {
        name,
        nickname: this.c.mesh.nicknameOf(name),
        owned: this.ring.ownedSize(name),
        inUse: self ? mine.inUse : (s?.inUse ?? null),
        free: self ? mine.free : (s?.free ?? null),
        reachable: this.c.mesh.isReachable(name),
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
      pendingAllocations: this.pending.size,
      rangeMismatches: [...this.rangeMismatches.values()].map((m) => ({ ...m, peers: [...m.peers] })),
    };
  }

  /** A copy of the ring, for tests, status and the bench. */
  ringSnapshot(): Ring {
    return this.ring.clone();
  }

  /** Live allocations, for invariant checks (one row per container and subnet). */
  liveAllocations(): Array<{ containerId: string; address: Address }> {
    const out: Array<{ containerId: string; address: Address }> = [];
    for (const a of this.allocations.values()) if (a.releasedAt === null) out.push({ containerId: a.containerId, address: a.address });
    return out;
  }
}

function inUsable(c: Cidr, a: Address): boolean {
  const u = usableInterval(c);
  return cidrContains(c, a) && a >= u.lo && a < u.hi;
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new LoomError('ERR_INVALID_ARGUMENT', `${name} must be a positive number`);
  return n;
}

function nonNegative(n: number, name: string): number {
  if (!Number.isFinite(n) || n < 0) throw new LoomError('ERR_INVALID_ARGUMENT', `${name} must not be negative`);
  return n;
}
