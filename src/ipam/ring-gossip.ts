/**
 * The "ipam" gossip channel as this peer sees it: the ring we send, rings we receive and merge,
 * and the unicast donation messages, handed to `Donations`.
 *
 * Contract: bad bytes, a ring of another range (ERR_RANGE_MISMATCH) or of another bootstrap
 * (ERR_CONFLICT) are logged and change nothing; a merged ring is saved before it is passed on;
 * nothing is received before start or after stop (anti-entropy repeats it).
 */
import { LoomError, toLoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { GossipData } from '../mesh/types.js';
import type { AllocationTable } from './allocations.js';
import { formatAddress, formatCidr } from './cidr.js';
import type { IpamContext } from './context.js';
import type { Donations } from './donations.js';
import { RingGossipData } from './gossip-data.js';
import { decodeIpamMessage } from './messages.js';
import type { Interval, Ring } from './ring.js';
import { decodeRing } from './ring-codec.js';
import { clip, totalSize } from './space.js';
import type { RangeMismatch } from './status.js';

/** Bounds on what status keeps about peers of other ranges. */
const MAX_MISMATCH_RANGES = 16;
const MAX_MISMATCH_PEERS = 64;

export class RingGossip {
  private readonly mismatches = new Map<string, RangeMismatch>();

  constructor(
    private readonly context: IpamContext,
    private readonly allocations: AllocationTable,
    private readonly donations: Donations,
    /** Called after a received ring changed ours (and was saved). */
    private readonly ringChanged: () => void,
  ) {}

  /** Our full state for a new neighbour and anti-entropy; null while we have nothing to say. */
  fullState(): GossipData | null {
    const { ring } = this.context;
    if ((ring.isEmpty() && ring.stats.size === 0) || this.context.unsavedBecause !== null) return null;
    return new RingGossipData(ring.clone());
  }

  /** A donation request or refusal; malformed bytes are logged and ignored. */
  receiveMessage(src: PeerName, msg: Uint8Array): void {
    const { context } = this;
    let decoded;
    try {
      decoded = decodeIpamMessage(msg);
    } catch (err) {
      const e = toLoomError(err, 'ERR_PROTOCOL');
      context.log.warn({ code: e.code, src, err: e.message }, 'ignored malformed ipam message');
      return;
    }
    if (!context.running) return;
    switch (decoded.type) {
      case 'donate-request':
        this.donations.answer(src, decoded.subnet ?? context.range);
        return;
      case 'donate-none':
        this.donations.refused(src, decoded.subnet ?? context.range);
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
    const { context } = this;
    if (!context.running) return null;
    let incoming: Ring;
    try {
      incoming = decodeRing(update);
    } catch (err) {
      const e = toLoomError(err, 'ERR_PROTOCOL');
      context.log.warn({ code: e.code, src, err: e.message }, 'ignored malformed ring update');
      return null;
    }
    const wasEmpty = context.ring.isEmpty();
    const ownedBefore = context.ring.ownedBy(context.self);
    const sizeBefore = totalSize(ownedBefore);
    let result;
    try {
      result = context.ring.merge(incoming);
    } catch (err) {
      const e = toLoomError(err);
      if (e.code === 'ERR_RANGE_MISMATCH') {
        this.noteRangeMismatch(incoming, src, e);
        return null;
      }
      context.log.error({ code: e.code, src, detail: e.detail, err: e.message }, 'rejected ring update');
      return null;
    }
    for (const c of result.conflicts) {
      context.log.warn({ code: 'ERR_CONFLICT', token: formatAddress(c.token), winner: c.winner, loser: c.loser }, 'two owners for one ring entry at the same version; the smaller name wins');
      context.events.emit({ kind: 'ipam-conflict', peer: c.loser, text: `IPAM conflict at ${formatAddress(c.token)}: ${c.winner} and ${c.loser} both claim it; ${c.winner} keeps it` });
    }
    if (!result.changed) return null;
    const saved = context.saveRing();
    this.reportLostSpace(ownedBefore);
    if (wasEmpty && !context.ring.isEmpty()) context.log.info({ seeds: context.ring.seeds, src }, 'ipam ring received');
    if (context.ring.ownedSize(context.self) > sizeBefore) this.donations.arrived();
    this.ringChanged();
    // Not passed on while unsaved: the peer that sent it passes it on itself.
    return saved ? new RingGossipData(context.ring.clone()) : null;
  }

  /** Peers whose gossip was refused for another range, for status (copies). */
  rangeMismatches(): RangeMismatch[] {
    return [...this.mismatches.values()].map((m) => ({ ...m, peers: [...m.peers] }));
  }

  /**
   * Remembers who gossips another range, for status (peers named by the broadcast source, or
   * else by the foreign ring's owners and reporters). Logged at error level once per range and
   * peer set, then at debug level, so anti-entropy does not flood the log.
   */
  private noteRangeMismatch(incoming: Ring, src: PeerName | null, e: LoomError): void {
    const { context } = this;
    const range = formatCidr(incoming.range);
    const named = src !== null ? [src] : [...new Set([...incoming.owners(), ...incoming.stats.keys()])];
    const known = this.mismatches.get(range);
    const peers = [...new Set([...(known?.peers ?? []), ...named])].sort().slice(0, MAX_MISMATCH_PEERS);
    const isNew = !known || peers.length !== known.peers.length;
    this.mismatches.set(range, { range, peers, count: (known?.count ?? 0) + 1, lastSeenAt: context.clock.now() });
    while (this.mismatches.size > MAX_MISMATCH_RANGES) this.mismatches.delete(this.mismatches.keys().next().value!);
    const fields = { code: e.code, ours: formatCidr(context.range), theirs: range, peers: named };
    if (isNew) context.log.error(fields, 'refused IPAM gossip from peers with another allocation range: give every peer the same --ipalloc-range');
    else context.log.debug(fields, 'refused IPAM gossip of another range again');
  }

  /** Space we owned that the ring now gives to someone else: only legal if we were rmpeer'd. */
  private reportLostSpace(ownedBefore: Interval[]): void {
    if (ownedBefore.length === 0) return;
    const after = this.context.ring.ownedBy(this.context.self);
    let kept = 0;
    for (const r of ownedBefore) kept += totalSize(clip(after, r));
    if (kept === totalSize(ownedBefore)) return;
    this.context.log.error(
      { code: 'ERR_CONFLICT', orphaned: this.allocations.orphaned() },
      'another peer took over space this peer owned (was it removed with rmpeer while alive?)',
    );
  }
}
