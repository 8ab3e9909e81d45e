/**
 * Probes between relays: reachability (driven by the controller through `Relay.probe`) and path
 * MTU discovery (driven here, per neighbour, on the relay's clock).
 *
 * - `direct`: from the data port; answered = the relay can use this neighbour as a hop.
 * - `open`: from a separate check port (flag PROBE_FLAG_UNSOLICITED), padded to the size of the
 *   fast path's full-size VXLAN frame, DF set: answered = unsolicited UDP of that size reaches the
 *   peer, which is what kernel VXLAN needs (Weave's "full-size heartbeats"). The peer answers to
 *   the check port and never learns it as our data address.
 * - `pmtu`: from the data port, padded to each size `PathMtu.probeSizes()` asks for, DF set. A
 *   round also carries one minimal probe as its anchor: losses of big probes only count when the
 *   anchor (or any probe) of the same round came back, so an unreachable peer does not drag its
 *   path MTU down. EMSGSIZE from our own stack is certain and counts at once.
 *
 * Probes are sealed whenever the neighbour has keys; answers go to the address and port the probe
 * came from (so they cross a NAT), and are never padded. An authenticated probe from a new address
 * (not the check port) teaches us the neighbour's NAT-mapped data address.
 */
import type { TimerHandle } from '../../core/clock.js';
import { u32ToIpv4 } from '../../os/udp-endpoint.js';
import type { PeerName } from '../../core/ids.js';
import { formatUdpAddress } from './address.js';
import type { DatagramEndpoint } from './endpoint.js';
import { UNDERLAY_OVERHEAD_BYTES, type NeighbourState, type ProbeKind } from './neighbour.js';
import { sealInPlace } from './seal.js';
import type { RelayState } from './state.js';
import { MAX_COUNTER, PacketType, PROBE_BODY_BYTES, RELAY_HEADER_BYTES, RELAY_TAG_BYTES, writeHeader } from './wire.js';

/** Bit 0 of a probe body's second word: sent from a check port; answer it, never learn its address. */
export const PROBE_FLAG_UNSOLICITED = 1;
/** Path MTU rounds while discovery is unsettled, and once settled (re-checks and growth). */
export const PMTU_ROUND_MS = 500;
export const PMTU_STEADY_MS = 10_000;
/** A round's probes not answered after this long are lost. */
const PMTU_ROUND_TIMEOUT_MS = 400;
const ERRNO_EMSGSIZE = 90;

/**
 * `rttMs` is null when the probe timed out. `unsolicited`: the probe was sent from the check port,
 * so its answer proves the peer accepts UDP nobody asked for.
 */
export type ReachabilityListener = (peer: PeerName, ok: boolean, rttMs: number | null, unsolicited: boolean) => void;

export class Prober {
  private readonly scratch = Buffer.allocUnsafeSlow(RELAY_HEADER_BYTES + 9000 + RELAY_TAG_BYTES);
  private nextProbeId = 0;
  private readonly listeners: ReachabilityListener[] = [];
  private tick: TimerHandle | null = null;
  /** When `tick` fires (clock ms), while set. */
  private tickAt = Infinity;
  private running = false;
  dataEndpoint: DatagramEndpoint | null = null;
  checkEndpoint: DatagramEndpoint | null = null;

  constructor(
    private readonly state: RelayState,
    private readonly probeTimeoutMs: number,
  ) {
    state.onTooBig = (ip, port, size) => {
      const n = state.neighbourAt(ip, port);
      if (n) this.refused(n, size);
    };
  }

  onReachability(listener: ReachabilityListener): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.running = true;
    this.scheduleTick();
  }

  stop(): void {
    this.running = false;
    this.tick?.cancel();
    this.tick = null;
    this.tickAt = Infinity;
    for (const n of this.state.neighbours.values()) n.cancelProbes();
  }

  /** A neighbour was added or re-keyed: discover its path MTU now. */
  neighbourAdded(n: NeighbourState): void {
    n.nextPmtuRoundAt = this.state.clock.now();
    if (!this.running) return;
    this.pmtuRound(n);
    this.scheduleTick();
  }

  /**
   * One reachability probe; listeners hear the answer or a timeout after probeTimeoutMs. `size`:
   * pad to this underlay IP packet size (the open probe's full-size heartbeat).
   */
  probe(n: NeighbourState, unsolicited: boolean, size = 0): void {
    const kind: ProbeKind = unsolicited ? 'open' : 'direct';
    const id = this.newId();
    const timer = this.state.clock.setTimeout(() => this.finish(n, id, false), this.probeTimeoutMs);
    n.pendingProbes.set(id, { sentAt: this.state.clock.now(), timer, kind, size });
    const endpoint = unsolicited ? this.checkEndpoint : this.dataEndpoint;
    const errno = this.send(n, PacketType.probe, id, unsolicited ? PROBE_FLAG_UNSOLICITED : 0, size, n.ipNumber, n.address.port, endpoint);
    this.state.counters.probesSent++;
    // Refused by our own stack (too big with DF, no route): the answer is known now.
    if (errno !== 0) this.finish(n, id, false);
  }

  /** An authenticated probe arrived from ip:port on `endpoint`: answer it there. */
  answer(n: NeighbourState, body: Buffer, ip: number, port: number, endpoint: DatagramEndpoint | null, authenticated: boolean): void {
    const flags = body.readUInt32BE(4);
    if (authenticated && (flags & PROBE_FLAG_UNSOLICITED) === 0 && (ip !== n.ipNumber || port !== n.address.port)) {
      n.address = { ip: u32ToIpv4(ip), port };
      this.state.counters.addressesLearned++;
      this.state.logger.info({ peer: n.name, address: formatUdpAddress(n.address) }, 'learned neighbour data address from its probe');
    }
    this.send(n, PacketType.probeReply, body.readUInt32BE(0), flags, 0, ip, port, endpoint);
    this.state.counters.probesAnswered++;
    // The neighbour knows us now: if our first round went out before it did (and was dropped
    // there as from an unknown peer), probe again at once rather than at the next round.
    if (!n.pmtu.isVerified() && n.pmtuRound.length === 0 && n.nextPmtuRoundAt > this.state.clock.now()) {
      n.nextPmtuRoundAt = this.state.clock.now();
      this.scheduleTick();
    }
  }

  /** An answer to probe `id` arrived. */
  replied(n: NeighbourState, id: number): void {
    this.state.counters.probeRepliesReceived++;
    this.finish(n, id, true);
  }

  private finish(n: NeighbourState, id: number, ok: boolean): void {
    const pending = n.pendingProbes.get(id);
    if (!pending) return;
    n.pendingProbes.delete(id);
    pending.timer?.cancel();
    if (pending.kind === 'pmtu') {
      if (ok) this.acknowledged(n, pending.size);
      return;
    }
    const rttMs = ok ? this.state.clock.now() - pending.sentAt : null;
    for (const listener of this.listeners) {
      try {
        listener(n.name, ok, rttMs, pending.kind === 'open');
      } catch (err) {
        this.state.logger.warn({ err, peer: n.name }, 'reachability listener threw');
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Path MTU
  // ---------------------------------------------------------------------------------------

  /**
   * Sets the path MTU timer to the earliest neighbour due (a round to end or to start), not a
   * poll: an idle router with settled paths wakes for this once per PMTU_STEADY_MS per neighbour.
   */
  private scheduleTick(): void {
    if (!this.running) return;
    const now = this.state.clock.now();
    let due = Infinity;
    for (const n of this.state.neighbours.values()) due = Math.min(due, n.pmtuRound.length > 0 ? n.pmtuRoundEndsAt : n.nextPmtuRoundAt);
    if (this.tick !== null && this.tickAt <= due) return;
    this.tick?.cancel();
    this.tick = null;
    this.tickAt = Infinity;
    if (due === Infinity) return;
    this.tickAt = due;
    this.tick = this.state.clock.setTimeout(() => {
      this.tick = null;
      this.tickAt = Infinity;
      const at = this.state.clock.now();
      for (const n of this.state.neighbours.values()) {
        if (n.pmtuRound.length > 0 && at >= n.pmtuRoundEndsAt) this.endPmtuRound(n);
        if (n.pmtuRound.length === 0 && at >= n.nextPmtuRoundAt) this.pmtuRound(n);
      }
      this.scheduleTick();
    }, Math.max(0, due - now));
  }

  private pmtuRound(n: NeighbourState): void {
    if (n.pmtuRound.length > 0) return;
    const now = this.state.clock.now();
    n.pmtuRoundEndsAt = now + PMTU_ROUND_TIMEOUT_MS;
    const sizes = n.pmtu.probeSizes();
    // The anchor: the smallest probe, so losses of big ones count only when the peer answers.
    sizes.push(0);
    for (const size of sizes) {
      const id = this.newId();
      n.pendingProbes.set(id, { sentAt: now, timer: null, kind: 'pmtu', size });
      n.pmtuRound.push(id);
      const errno = this.send(n, PacketType.probe, id, 0, size, n.ipNumber, n.address.port, this.dataEndpoint);
      this.state.counters.probesSent++;
      if (errno === -ERRNO_EMSGSIZE) this.refused(n, size);
    }
    n.nextPmtuRoundAt = now + (n.pmtu.isSettled() ? PMTU_STEADY_MS : PMTU_ROUND_MS);
  }

  private endPmtuRound(n: NeighbourState): void {
    let answered = false;
    for (const id of n.pmtuRound) if (!n.pendingProbes.has(id)) answered = true;
    let changed = false;
    for (const id of n.pmtuRound) {
      const pending = n.pendingProbes.get(id);
      if (!pending) continue;
      n.pendingProbes.delete(id);
      if (answered && pending.size > 0) changed = n.pmtu.lost(pending.size) || changed;
    }
    n.pmtuRound = [];
    if (changed) this.mtuChanged(n, 'probes lost');
  }

  private acknowledged(n: NeighbourState, size: number): void {
    if (size === 0) return;
    const before = n.pmtu.current();
    n.pmtu.acknowledged(size);
    if (n.pmtu.current() !== before) this.mtuChanged(n, 'probe answered');
  }

  private refused(n: NeighbourState, size: number): void {
    if (n.pmtu.refused(size)) this.mtuChanged(n, 'EMSGSIZE');
  }

  private mtuChanged(n: NeighbourState, reason: string): void {
    n.mtuChanged();
    this.state.logger.info({ peer: n.name, pmtu: n.pmtu.current(), verified: n.pmtu.isVerified(), reason }, 'path MTU to neighbour changed');
  }

  /**
   * Builds, seals (when the neighbour has keys) and sends one probe or answer now. `size`: pad
   * the probe to this underlay IP packet size (0 = no padding). Returns 0 or a negative errno.
   */
  private send(n: NeighbourState, type: number, id: number, flags: number, size: number, ip: number, port: number, endpoint: DatagramEndpoint | null): number {
    if (endpoint === null || n.sendCounter > MAX_COUNTER) {
      this.state.drop('send-failed');
      return -1;
    }
    const sealed = n.dataKeys !== null;
    const tag = sealed ? RELAY_TAG_BYTES : 0;
    const padded = size - UNDERLAY_OVERHEAD_BYTES - RELAY_HEADER_BYTES - tag;
    const bodyBytes = Math.min(Math.max(PROBE_BODY_BYTES, padded), this.scratch.length - RELAY_HEADER_BYTES - RELAY_TAG_BYTES);
    const out = this.scratch;
    writeHeader(out, type, sealed, 1, this.state.selfBytes, n.nameBytes, this.state.selfBytes, n.sendCounter++);
    out.writeUInt32BE(id, RELAY_HEADER_BYTES);
    out.writeUInt32BE(flags, RELAY_HEADER_BYTES + 4);
    out.fill(0, RELAY_HEADER_BYTES + PROBE_BODY_BYTES, RELAY_HEADER_BYTES + bodyBytes);
    const length = sealed ? sealInPlace(n.dataKeys.send, out, 0, bodyBytes) : RELAY_HEADER_BYTES + bodyBytes;
    const errno = endpoint.sendNow(out.subarray(0, length), ip, port);
    if (errno !== 0) {
      if (errno !== -ERRNO_EMSGSIZE) this.state.drop('send-failed');
      return errno;
    }
    n.sent++;
    n.bytesSent += length;
    this.state.counters.toNeighbours++;
    this.state.counters.bytesToNeighbours += length;
    return 0;
  }

  private newId(): number {
    this.nextProbeId = (this.nextProbeId + 1) >>> 0 || 1;
    return this.nextProbeId;
  }
}
