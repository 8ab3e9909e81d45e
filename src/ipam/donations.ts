/**
 * Donations: how a peer short of space in a subnet gets some from another peer, and how it
 * answers such a request. A donation is not a message: the donor moves the upper half of its
 * largest free run to the requester in the ring and broadcasts the ring; the unicast messages
 * (messages.ts) are only the request and the refusal.
 *
 * Contract: at most one donor is asked per subnet at a time; one that refuses, becomes
 * unreachable or stays silent for `donationTimeoutMs` is not asked again for that request; when
 * no candidate is left, the waiting allocations of that subnet fail with ERR_EXHAUSTED.
 */
import type { TimerHandle } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { AllocationTable } from './allocations.js';
import { type Cidr, cidrEquals, cidrWithin, formatAddress, formatCidr, usableInterval } from './cidr.js';
import type { IpamContext } from './context.js';
import { encodeIpamMessage } from './messages.js';
import { clip, largestFreeRun, totalSize } from './space.js';

/** Outstanding donation request for one subnet (at most one donor asked at a time). */
interface DonationRequest {
  subnet: Cidr;
  asked: PeerName | null;
  tried: Set<PeerName>;
  timer: TimerHandle | null;
}

export class Donations {
  private readonly requests = new Map<string, DonationRequest>();

  constructor(
    private readonly context: IpamContext,
    private readonly allocations: AllocationTable,
    private readonly hooks: {
      /** No reachable peer is left to ask for space in `subnet`: fail its waiters with `error()`. */
      noDonorLeft: (subnet: Cidr, error: () => LoomError) => void;
      /** We gave space away: our numbers changed. */
      numbersChanged: () => void;
    },
  ) {}

  /** Asks a donor for space in `subnet` unless one is being asked already. */
  request(subnet: Cidr): void {
    const k = formatCidr(subnet);
    let d = this.requests.get(k);
    if (d && d.asked) return;
    if (!d) {
      d = { subnet, asked: null, tried: new Set(), timer: null };
      this.requests.set(k, d);
    }
    this.askNextDonor(d, null);
  }

  /** Drops the requests for subnets nobody waits for any more. */
  retainOnly(stillWanted: (subnet: Cidr) => boolean): void {
    for (const [k, d] of this.requests) {
      if (!stillWanted(d.subnet)) {
        d.timer?.cancel();
        this.requests.delete(k);
      }
    }
  }

  /** We gained space: outstanding requests are answered; the waiters ask again if still short. */
  arrived(): void {
    for (const d of this.requests.values()) {
      d.timer?.cancel();
      d.timer = null;
      d.asked = null;
    }
  }

  /** A donor we asked has nothing for us: ask the next one. */
  refused(src: PeerName, subnet: Cidr): void {
    const d = this.requests.get(formatCidr(subnet));
    if (d && d.asked === src) this.askNextDonor(d, src);
  }

  /** A donor we asked became unreachable: ask the next one. */
  meshChanged(): void {
    for (const d of this.requests.values()) {
      if (d.asked && !this.context.mesh.isReachable(d.asked)) this.askNextDonor(d, d.asked);
    }
  }

  /** Gives the upper half of our largest free run in `subnet` to `requester`, or says none. */
  answer(requester: PeerName, subnet: Cidr): void {
    const { context } = this;
    const refuse = (): void => context.channel?.gossipUnicast(requester, encodeIpamMessage({ type: 'donate-none', subnet: this.wireSubnet(subnet) }));
    if (context.ring.isEmpty() || !cidrWithin(subnet, context.range) || requester === context.self) return refuse();
    const taken = this.allocations.takenAfterPurge();
    const run = largestFreeRun(context.ownUsableRuns(subnet), taken);
    if (!run) return refuse();
    const start = run.start + Math.floor((run.end - run.start) / 2);
    try {
      context.ring.transfer(start, run.end, context.self, requester);
    } catch (err) {
      context.log.error({ err: toLoomError(err).message }, 'donation failed');
      return refuse();
    }
    context.saveRing();
    context.log.info({ to: requester, from: formatAddress(start), count: run.end - start }, 'donated address space');
    context.events.emit({ kind: 'ipam-claimed', peer: requester, text: `${requester} claimed ${run.end - start} addresses from ${formatAddress(start)} (donated by this peer)` });
    context.broadcastRing();
    this.hooks.numbersChanged();
  }

  stop(): void {
    for (const d of this.requests.values()) d.timer?.cancel();
    this.requests.clear();
  }

  /**
   * Donor candidates: reachable owners of space in the subnet, most reported free first. The
   * reported numbers may be stale, so a peer that reported none is still asked, last.
   */
  private donorsFor(subnet: Cidr, tried: Set<PeerName>): PeerName[] {
    const { context } = this;
    const u = usableInterval(subnet);
    const limit = { start: u.lo, end: u.hi };
    const candidates = context.mesh
      .reachablePeers()
      .filter((p) => p !== context.self && !tried.has(p))
      .map((p) => ({ p, size: totalSize(clip(context.ring.ownedBy(p), limit)), free: context.ring.stats.get(p)?.free }))
      .filter((x) => x.size > 0);
    candidates.sort((x, y) => (y.free ?? y.size) - (x.free ?? x.size) || (x.p < y.p ? -1 : 1));
    return candidates.map((x) => x.p);
  }

  private askNextDonor(d: DonationRequest, failed: PeerName | null): void {
    const { context } = this;
    if (failed) d.tried.add(failed);
    d.timer?.cancel();
    d.timer = null;
    d.asked = null;
    const next = this.donorsFor(d.subnet, d.tried)[0];
    if (next === undefined) {
      this.requests.delete(formatCidr(d.subnet));
      this.hooks.noDonorLeft(d.subnet, () => new LoomError('ERR_EXHAUSTED', `no free address in ${formatCidr(d.subnet)} on any reachable peer`));
      return;
    }
    d.asked = next;
    d.timer = context.clock.setTimeout(() => this.askNextDonor(d, next), context.settings.donationTimeoutMs);
    context.log.debug({ donor: next, subnet: formatCidr(d.subnet) }, 'asking for a donation');
    context.channel?.gossipUnicast(next, encodeIpamMessage({ type: 'donate-request', subnet: this.wireSubnet(d.subnet) }));
  }

  /** The whole range goes on the wire as "no subnet". */
  private wireSubnet(subnet: Cidr): Cidr | null {
    return cidrEquals(subnet, this.context.range) ? null : subnet;
  }
}
