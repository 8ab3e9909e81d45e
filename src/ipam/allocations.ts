/**
 * This peer's allocations: which container holds which address of which subnet, kept in memory
 * and in the store, and the search for a free address in the space the ring says we own.
 *
 * Contracts:
 * - an address is handed out only inside our own space, never a network or broadcast address of
 *   the range or of the subnet, and never while another container holds it or released it less
 *   than `releaseGraceMs` ago;
 * - every change is written to the store before it is returned;
 * - one allocation per container id and subnet (`keyOf`): asking again gives the same address.
 */
import { LoomError } from '../core/errors.js';
import { type ContainerId, parseContainerId, parsePeerName } from '../core/ids.js';
import { type Cidr as CoreCidr, type Ipv4Address, formatCidr as formatCoreCidr, networkOf } from '../core/net.js';
import {
  type Address,
  type Cidr,
  cidrContains,
  cidrWithin,
  formatAddress,
  cidrOf,
  formatCidr,
  parseCidr,
  usableInterval,
} from './cidr.js';
import type { IpamContext } from './context.js';
import { findFree, totalSize } from './space.js';
import type { AllocationResult } from './status.js';
import type { StoredAllocation } from './store.js';

export const HOST_ID_PREFIX = 'host:';



/**
 * Who allocates for a container id, or for the host itself: `host:<peer name>` is the address
 * `loom expose` puts on the bridge (Weave's "weave:expose"). Anything else must be a container id.
 */
export function parseAllocationId(value: unknown): ContainerId {
  if (typeof value === 'string' && value.startsWith(HOST_ID_PREFIX)) {
    return `${HOST_ID_PREFIX}${parsePeerName(value.slice(HOST_ID_PREFIX.length))}` as ContainerId;
  }
  if (typeof value === 'string' && DAEMON_ID_RE.test(value)) return value as ContainerId;
  return parseContainerId(value);
}

/**
 * Ids the daemon derives for what is not a container: `attach:pid:PID:START`,
 * `attach:netns:DEV:INO` (src/containers/daemon.ts attachmentId) and `expose:net:a.b.c.d/n`,
 * `expose:a.b.c.d/n` (src/daemon/host-address.ts), `cni:<container>:<ifname>` (src/cni/ids.ts). Bounded, printable, no spaces.
 */
const DAEMON_ID_RE = /^(attach|expose|cni):[A-Za-z0-9_.:/-]{1,120}$/;

/** The key of one allocation: container id and subnet. */
export const keyOf = (id: string, subnet: Cidr): string => `${id}|${formatCidr(subnet)}`;

interface Allocation {
  containerId: ContainerId;
  subnet: Cidr;
  address: Address;
  /** Clock time of release, or null while the container holds it. */
  releasedAt: number | null;
}

export interface OwnNumbers {
  /** Usable addresses of our space that no allocation (live or in grace) takes. */
  free: number;
  inUse: number;
  inGrace: number;
}

export class AllocationTable {
  private readonly byKey = new Map<string, Allocation>();
  private readonly keyByAddress = new Map<Address, string>();
  /** Where the search for a free address starts: just after the last address handed out. */
  private cursor: Address;

  constructor(
    private readonly context: IpamContext,
    /** Called after any change that moves our free/in-use numbers. */
    private readonly numbersChanged: () => void,
    /** For the ERR_UNAVAILABLE detail of a claim before the ring exists. */
    private readonly stateText: () => string,
  ) {
    this.cursor = context.range.start;
  }

  /** Loads the saved allocations at start; released ones get a fresh grace period from `now`. */
  restore(saved: readonly StoredAllocation[], now: number): void {
    for (const s of saved) {
      const a: Allocation = { containerId: s.containerId as ContainerId, subnet: parseCidr(s.subnet), address: s.address, releasedAt: s.released ? now : null };
      const key = keyOf(a.containerId, a.subnet);
      this.byKey.set(key, a);
      this.keyByAddress.set(a.address, key);
    }
  }

  /**
   * The address `id` already has in `subnet` (taken back if it was released), else a free one of
   * our space, else null (no ring yet, or our space in the subnet is full).
   */
  allocate(id: ContainerId, subnet: Cidr): AllocationResult | null {
    const existing = this.byKey.get(keyOf(id, subnet));
    if (existing) {
      if (existing.releasedAt !== null) {
        existing.releasedAt = null;
        this.persist(existing);
        this.numbersChanged();
      }
      return resultOf(existing);
    }
    return this.allocateFree(id, subnet);
  }

  /** A free address of our space in `subnet` for `id`, or null. */
  allocateFree(id: ContainerId, subnet: Cidr): AllocationResult | null {
    const { context } = this;
    if (context.ring.isEmpty()) return null;
    const runs = context.ownUsableRuns(subnet);
    const address = findFree(runs, this.isTaken, this.cursor);
    if (address === undefined) return null;
    const a: Allocation = { containerId: id, subnet, address, releasedAt: null };
    this.record(keyOf(id, subnet), a);
    this.cursor = address + 1;
    return resultOf(a);
  }

  /**
   * Records that `containerId` uses `cidr` (the address with its subnet's prefix; /32 means the
   * default subnet). Honoured if the address is in our space and not held by another container;
   * else ERR_CONFLICT. Idempotent for the same id and address.
   */
  claim(containerId: string, cidr: CoreCidr): AllocationResult {
    const { context } = this;
    const { range, defaultSubnet } = context.settings;
    const id = parseAllocationId(containerId);
    const { address } = cidr;
    const block = networkOf(cidr);
    const net = cidr.prefix === 32 ? defaultSubnet : cidrOf(block.address, block.prefix);
    if (!cidrWithin(net, range)) throw new LoomError('ERR_INVALID_ARGUMENT', `${formatCidr(net)} is not inside the range ${formatCidr(range)}`);
    if (!inUsable(range, address) || !inUsable(net, address)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `${formatAddress(address)} is a network or broadcast address or outside ${formatCidr(net)}`);
    }
    context.requireRunning();
    const key = keyOf(id, net);
    const existing = this.byKey.get(key);
    if (existing && existing.address !== address) {
      throw new LoomError('ERR_CONFLICT', `container ${id} already has ${formatAddress(existing.address)} in ${formatCidr(net)}`);
    }
    const holder = this.keyByAddress.get(address);
    if (holder !== undefined && holder !== key) {
      this.purgeIfExpired(holder);
      if (this.keyByAddress.get(address) !== undefined) throw new LoomError('ERR_CONFLICT', `${formatAddress(address)} is in use by another container`);
    }
    if (context.ring.isEmpty()) throw new LoomError('ERR_UNAVAILABLE', 'IPAM is not ready: no address ring yet', { detail: { state: this.stateText() } });
    const owner = context.ring.ownerOf(address);
    if (owner !== context.self) {
      throw new LoomError('ERR_CONFLICT', `${formatAddress(address)} belongs to peer ${owner ?? 'none'}`, {
        detail: { owner, ownerReachable: owner !== undefined && context.mesh.isReachable(owner) },
      });
    }
    const a: Allocation = existing ?? { containerId: id, subnet: net, address, releasedAt: null };
    a.releasedAt = null;
    this.record(key, a);
    return resultOf(a);
  }

  /**
   * Marks every address of `containerId` released; each is reused for another container only
   * after `releaseGraceMs`. Idempotent; returns how many addresses it released.
   */
  release(containerId: string): number {
    const id = parseAllocationId(containerId);
    let n = 0;
    const now = this.context.clock.now();
    for (const a of this.byKey.values()) {
      if (a.containerId !== id || a.releasedAt !== null) continue;
      a.releasedAt = now;
      this.persist(a);
      n++;
    }
    if (n > 0) this.numbersChanged();
    return n;
  }

  /** The addresses `containerId` holds (released ones excluded), in subnet order. */
  lookup(containerId: string): AllocationResult[] {
    const id = parseAllocationId(containerId);
    return [...this.byKey.values()]
      .filter((a) => a.containerId === id && a.releasedAt === null)
      .sort((x, y) => x.subnet.start - y.subnet.start)
      .map(resultOf);
  }

  /** Addresses taken (live or in grace) after dropping every allocation whose grace is over. */
  takenAfterPurge(): Iterable<Address> {
    for (const key of [...this.byKey.keys()]) this.purgeIfExpired(key);
    return this.keyByAddress.keys();
  }

  /** Containers that hold an address now (released ones excluded). */
  liveCount(): number {
    return [...this.byKey.values()].filter((a) => a.releasedAt === null).length;
  }

  /** Live allocations, for invariant checks (one row per container and subnet). */
  live(): Array<{ containerId: string; address: Address }> {
    const out: Array<{ containerId: string; address: Address }> = [];
    for (const a of this.byKey.values()) if (a.releasedAt === null) out.push({ containerId: a.containerId, address: a.address });
    return out;
  }

  /** Allocations whose address the ring no longer gives us (we were rmpeer'd while alive). */
  orphaned(): Array<{ containerId: ContainerId; address: string }> {
    const { ring, self } = this.context;
    return [...this.byKey.values()].filter((a) => ring.ownerOf(a.address) !== self).map((a) => ({ containerId: a.containerId, address: formatAddress(a.address) }));
  }

  /** Forgets every allocation, here and in the store (reset). */
  clear(): void {
    this.byKey.clear();
    this.keyByAddress.clear();
    this.context.store.clearAllocations();
  }

  ownNumbers(): OwnNumbers {
    const { context } = this;
    let inUse = 0;
    let inGrace = 0;
    let takenInOwn = 0;
    for (const a of this.byKey.values()) {
      if (a.releasedAt === null) inUse++;
      else inGrace++;
      if (context.ring.ownerOf(a.address) === context.self) takenInOwn++;
    }
    const free = Math.max(0, totalSize(context.ownUsableRuns(context.range)) - takenInOwn);
    return { free, inUse, inGrace };
  }

  private isTaken = (a: Address): boolean => {
    const key = this.keyByAddress.get(a);
    if (key === undefined) return false;
    return !this.purgeIfExpired(key);
  };

  /** Drops a released allocation whose grace period is over; returns true if it did. */
  private purgeIfExpired(key: string): boolean {
    const { context } = this;
    const a = this.byKey.get(key);
    if (!a || a.releasedAt === null || context.clock.now() - a.releasedAt < context.settings.releaseGraceMs) return false;
    this.byKey.delete(key);
    this.keyByAddress.delete(a.address);
    context.store.deleteAllocation(a.containerId, formatCidr(a.subnet));
    return true;
  }

  private record(key: string, a: Allocation): void {
    this.persist(a);
    this.byKey.set(key, a);
    this.keyByAddress.set(a.address, key);
    this.numbersChanged();
  }

  private persist(a: Allocation): void {
    this.context.store.putAllocation({ containerId: a.containerId, subnet: formatCidr(a.subnet), address: a.address, released: a.releasedAt !== null });
  }
}

function resultOf(a: Allocation): AllocationResult {
  const value: CoreCidr = { address: a.address as Ipv4Address, prefix: a.subnet.prefix };
  return { containerId: a.containerId, address: formatAddress(a.address), cidr: formatCoreCidr(value), value };
}

function inUsable(c: Cidr, a: Address): boolean {
  const u = usableInterval(c);
  return cidrContains(c, a) && a >= u.lo && a < u.hi;
}
