/**
 * Drives the user-space relay from the mesh: one relay neighbour per established connection (its
 * data address = the peer's IP as we see it + its listen port; keys = the connection's session
 * keys, from which the relay derives its data keys), one local port per reachable peer, next hops
 * from the mesh routes corrected by what the probes found, and periodic probes of two kinds:
 *
 * - from the data port (`direct`): can the relay use this neighbour as a hop? Through a NAT this
 *   works as long as the peer behind it keeps its mapping open by probing us (it does, every
 *   `probeIntervalMs`), and our relay learns the mapped address from those probes.
 * - from a check port (`open`): does UDP nobody asked for reach the peer, at the size of the fast
 *   path's full-size VXLAN frames and with DF (`openProbeBytes`; Weave's full-size heartbeats)?
 *   Only then can the kernel's VXLAN packets (fresh source ports, port 4789, every size up to
 *   the segment MTU) reach it: the fast path's condition. An underlay that drops big frames, or
 *   has a smaller MTU, fails it, and the peer goes by the relay, which cuts to the path MTU.
 *
 * Contracts:
 * - `facts()` is what choosePath sees; `onChange` fires (synchronously, after the state changed)
 *   whenever it may have changed, so the controller re-applies.
 * - The first result of each kind decides at once; afterwards a path is marked down only after
 *   `failuresToDown` consecutive failures and up again at the first success.
 * - Two probe rates per neighbour: `steadyProbeIntervalMs` (1 s) while both kinds are settled (up
 *   with no failure since the last success, or down), `probeIntervalMs` (200 ms) while a kind is
 *   unknown or a known-good path has started failing, from the moment the first failure is heard.
 *   Why: an idle router spent most of its CPU on probes at 200 ms (issue 14: 120 datagrams/s with
 *   three peers); a settled path only needs to be re-checked, a suspect one needs its failures
 *   confirmed fast. With 4 failures and the subsystem's 400 ms timeout, a blocked path is noticed
 *   1.2-2.2 s after the block (was 1.0-1.2 s at 200 ms throughout), and 1 % loss (about 2 % per
 *   probe round trip) still needs 4 losses in a row to flap a path: about once in 14 days per
 *   peer at the fast rate, less at the steady one. A down path is re-checked at the steady rate:
 *   back within 1 s + a round trip of the underlay healing.
 * - One timer for all neighbours, set to the earliest one due, and settled neighbours share one
 *   round per steady interval: an idle router wakes once a second for all its probes.
 * - A peer's local port outlives the peer's absence by `portGraceMs`, so a router restart on the
 *   other side does not renumber the FDB entries that the controller keeps for its grace period.
 * - All timers run on the component clock; `stop` cancels them and leaves the relay to its owner.
 */
import type { Clock, TimerHandle } from '../../core/clock.js';
import { toLoomError } from '../../core/errors.js';
import type { PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { RouterApi, SessionKeys } from '../../mesh/types.js';
import type { Relay } from '../relay/relay.js';
import type { RelayFacts } from './desired.js';
import { underlayIpOf } from './controller.js';
import type { RelayPath } from './launch-options.js';

/** The part of Relay the driver uses; tests pass a fake. */
export type RelayPort = Pick<Relay, 'setNeighbour' | 'removeNeighbour' | 'setRoutes' | 'setLocalPort' | 'removeLocalPort' | 'localPortOf' | 'probe' | 'onReachability' | 'stats'>;

/** How relayed frames meet the kernel (defined with the launch options that choose it). */
export type { RelayPath };

export interface RelayDriverComponents {
  router: Pick<RouterApi, 'mesh' | 'connectionTo' | 'status'>;
  relay: RelayPort;
  clock: Clock;
  logger: Logger;
  /** The facts changed (reachability, ports, next hops): the controller should re-apply. */
  onChange: () => void;
}

export interface RelayDriverInit {
  /** Whether the relay seals data (the mesh has a password). */
  encrypted: boolean;
  /** Default 'vxlan-port'. */
  path?: RelayPath;
  /** Probes of both kinds to a neighbour whose paths are unknown or suspect this often (default 200 ms). */
  probeIntervalMs?: number;
  /** ... and to a neighbour whose paths are settled (default 1000 ms; never below probeIntervalMs). */
  steadyProbeIntervalMs?: number;
  /** Consecutive failed probes that mark a known-good path down (default 4). */
  failuresToDown?: number;
  /**
   * Underlay IP packet size of the unsolicited (`open`) probe: the fast path's full-size frame,
   * segment MTU + 50 (default 1500). 0 = unpadded.
   */
  openProbeBytes?: number;
  /** How long a gone peer keeps its local port (default 60,000 ms). */
  portGraceMs?: number;
}

/** Neighbours due this close to a probe round go in it (fewer wake-ups, same rates). */
const PROBE_SLACK_MS = 20;

interface NeighbourRecord {
  keys: SessionKeys;
  address: string;
}

interface ProbeState {
  ok: boolean | undefined;
  failures: number;
  rttMs: number | null;
}

export interface RelayNeighbourStatus {
  peer: PeerName;
  address: string;
  /** Probe from our data port answered: the relay can hop through it. */
  direct: boolean | null;
  /** Probe from a fresh port answered: unsolicited UDP (kernel VXLAN) reaches it. */
  open: boolean | null;
  rttMs: number | null;
  /** Path MTU to it (underlay IP bytes) and whether a probe confirmed it; null before the relay knows it. */
  pmtu: number | null;
  pmtuVerified: boolean;
}

export interface RelayDriverStatus {
  encrypted: boolean;
  neighbours: RelayNeighbourStatus[];
  /** Destination -> neighbour, for every peer the relay can deliver to. */
  nextHops: Record<string, string>;
  ports: Record<string, number>;
}

export class RelayDriver {
  private readonly router: RelayDriverComponents['router'];
  private readonly relay: RelayPort;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly notify: () => void;
  private readonly encrypted: boolean;
  private readonly path: RelayPath;
  /** The peers of the last sync (reachable, not us). */
  private peers = new Set<PeerName>();
  private readonly probeIntervalMs: number;
  private readonly steadyProbeIntervalMs: number;
  /** When each neighbour's next probes are due (clock ms). */
  private readonly probeDueAt = new Map<PeerName, number>();
  /** When the shared round of settled neighbours' probes is (clock ms; see nextSteadyRound). */
  private steadyRoundAt = -Infinity;
  /** When the probe timer fires (clock ms), while it is set. */
  private probeTimerAt = Infinity;
  private readonly failuresToDown: number;
  private readonly openProbeBytes: number;
  private readonly portGraceMs: number;

  private readonly neighbours = new Map<PeerName, NeighbourRecord>();
  private readonly direct = new Map<PeerName, ProbeState>();
  private readonly open = new Map<PeerName, ProbeState>();
  private readonly ports = new Map<PeerName, number>();
  /** Peers with a port that are no longer reachable, and when they were last seen. */
  private readonly goneSince = new Map<PeerName, number>();
  private nextHops = new Map<PeerName, PeerName>();
  private probeTimer: TimerHandle | null = null;
  private unsubscribe: (() => void) | null = null;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;
  private started = false;

  constructor(components: RelayDriverComponents, init: RelayDriverInit) {
    this.router = components.router;
    this.relay = components.relay;
    this.clock = components.clock;
    this.logger = components.logger.child({ component: 'relay-driver' });
    this.notify = components.onChange;
    this.encrypted = init.encrypted;
    this.path = init.path ?? 'vxlan-port';
    this.probeIntervalMs = init.probeIntervalMs ?? 200;
    this.steadyProbeIntervalMs = Math.max(this.probeIntervalMs, init.steadyProbeIntervalMs ?? 1000);
    this.failuresToDown = init.failuresToDown ?? 4;
    this.openProbeBytes = init.openProbeBytes ?? 1500;
    this.portGraceMs = init.portGraceMs ?? 60_000;
    this.relay.onReachability((peer, ok, rttMs, unsolicited) => this.onProbeResult(peer, ok, rttMs, unsolicited));
  }

  /** Follows the mesh; syncs once and waits for it. The relay must be running. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.unsubscribe = this.router.mesh.onChange(() => void this.sync());
    await this.sync();
    this.scheduleProbes();
  }

  async stop(): Promise<void> {
    this.started = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.probeTimer?.cancel();
    this.probeTimer = null;
    this.probeTimerAt = Infinity;
    await this.syncing;
  }

  /** Brings neighbours, ports and routes in line with the mesh. Coalesces: one run at a time. */
  sync(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    const run = (async () => {
      do {
        this.syncAgain = false;
        try {
          await this.syncOnce();
        } catch (err) {
          this.logger.error({ err: toLoomError(err).message }, 'relay sync failed; next mesh change or probe round retries');
        }
      } while (this.syncAgain && this.started);
    })().finally(() => {
      this.syncing = null;
    });
    this.syncing = run;
    return run;
  }

  facts(): RelayFacts {
    const reachable = new Map<PeerName, boolean>();
    for (const peer of this.path === 'tap' ? this.peers : this.ports.keys()) reachable.set(peer, this.nextHops.has(peer));
    const open = new Map<PeerName, boolean>();
    for (const [peer, s] of this.open) if (s.ok !== undefined) open.set(peer, s.ok);
    const pmtu = new Map<PeerName, number>();
    for (const n of this.relay.stats().neighbours) if (n.pmtuVerified) pmtu.set(n.peer, n.pmtu);
    return { mode: this.path, ports: new Map(this.ports), reachable, open, nextHops: new Map(this.nextHops), encrypted: this.encrypted, pmtu };
  }

  status(): RelayDriverStatus {
    const known = (s: ProbeState | undefined): boolean | null => s?.ok ?? null;
    const relayed = new Map(this.relay.stats().neighbours.map((n) => [n.peer, n]));
    return {
      encrypted: this.encrypted,
      neighbours: [...this.neighbours.keys()].sort().map((peer) => ({
        peer,
        address: relayed.get(peer)?.address ?? this.neighbours.get(peer)!.address,
        direct: known(this.direct.get(peer)),
        open: known(this.open.get(peer)),
        rttMs: this.direct.get(peer)?.rttMs ?? null,
        pmtu: relayed.get(peer)?.pmtu ?? null,
        pmtuVerified: relayed.get(peer)?.pmtuVerified ?? false,
      })),
      nextHops: Object.fromEntries(this.nextHops),
      ports: Object.fromEntries(this.ports),
    };
  }

  private async syncOnce(): Promise<void> {
    const mesh = this.router.mesh;
    const peers = mesh.reachablePeers().filter((p) => p !== mesh.self);
    const connected = new Set<PeerName>();
    const fresh: PeerName[] = [];
    for (const peer of peers) {
      const conn = this.router.connectionTo(peer);
      const ip = conn ? underlayIpOf(conn.remoteAddress) : null;
      if (!conn || ip === null) continue;
      connected.add(peer);
      const address = `${ip}:${conn.remoteListenPort}`;
      const known = this.neighbours.get(peer);
      if (known && known.keys === conn.sessionKeys && known.address === address) continue;
      this.relay.setNeighbour(peer, { address, keys: conn.sessionKeys });
      this.neighbours.set(peer, { keys: conn.sessionKeys, address });
      if (!known || known.keys !== conn.sessionKeys) {
        // A new connection: what we knew about the path may be stale (the peer moved, restarted).
        this.direct.set(peer, { ok: undefined, failures: 0, rttMs: null });
        this.open.set(peer, { ok: undefined, failures: 0, rttMs: null });
        fresh.push(peer);
      }
    }
    for (const peer of [...this.neighbours.keys()]) {
      if (connected.has(peer)) continue;
      this.relay.removeNeighbour(peer);
      this.neighbours.delete(peer);
      this.direct.delete(peer);
      this.open.delete(peer);
      this.probeDueAt.delete(peer);
    }
    this.peers = new Set(peers);
    const now = this.clock.now();
    for (const peer of this.path === 'tap' ? [] : peers) {
      this.goneSince.delete(peer);
      await this.relay.setLocalPort(peer, 0);
      const port = this.relay.localPortOf(peer);
      if (port !== undefined) this.ports.set(peer, port);
    }
    const present = new Set(peers);
    for (const peer of [...this.ports.keys()]) {
      if (present.has(peer)) continue;
      const since = this.goneSince.get(peer) ?? now;
      this.goneSince.set(peer, since);
      if (now - since < this.portGraceMs) continue;
      await this.relay.removeLocalPort(peer);
      this.ports.delete(peer);
      this.goneSince.delete(peer);
    }
    this.recomputeRoutes();
    for (const peer of fresh) this.probe(peer);
    if (fresh.length > 0) this.scheduleProbes();
    this.notify();
  }

  /**
   * Next hop per destination: the destination itself when it is a neighbour whose data port is
   * not known to fail; else the mesh's next hop if the relay can use it; else the smallest-named
   * neighbour that answers our probes and has a connection to the destination. Loops while this
   * settles are cut by the relay's TTL.
   */
  private recomputeRoutes(): void {
    const status = this.router.status();
    const usable = (n: PeerName): boolean => this.neighbours.has(n) && this.direct.get(n)?.ok !== false;
    const linked = new Map<PeerName, Set<PeerName>>();
    const link = (a: PeerName, b: PeerName): void => {
      let set = linked.get(a);
      if (!set) linked.set(a, (set = new Set()));
      set.add(b);
    };
    for (const p of status.peers) {
      for (const c of p.connections) {
        if (!c.established) continue;
        link(p.name, c.name);
        link(c.name, p.name);
      }
    }
    const hops = new Map<PeerName, PeerName>();
    const candidates = [...this.neighbours.keys()].filter((n) => this.direct.get(n)?.ok === true).sort();
    for (const row of status.routes.unicast) {
      const dst = row.destination;
      let hop: PeerName | undefined;
      if (usable(dst)) hop = dst;
      else if (row.via !== dst && usable(row.via)) hop = row.via;
      else hop = candidates.find((n) => n !== dst && linked.get(n)?.has(dst) === true);
      if (hop !== undefined) hops.set(dst, hop);
    }
    this.nextHops = hops;
    this.relay.setRoutes((destination) => hops.get(destination));
  }

  /**
   * Sets the one probe timer to the earliest neighbour due (the steady interval when there is
   * none, so ports of gone peers are still retired). Keeps an earlier timer.
   */
  private scheduleProbes(): void {
    if (!this.started) return;
    const now = this.clock.now();
    let due = now + this.steadyProbeIntervalMs;
    for (const at of this.probeDueAt.values()) due = Math.min(due, at);
    if (this.probeTimer !== null && this.probeTimerAt <= due) return;
    this.probeTimer?.cancel();
    this.probeTimerAt = due;
    this.probeTimer = this.clock.setTimeout(() => {
      this.probeTimer = null;
      this.probeTimerAt = Infinity;
      const at = this.clock.now();
      // Neighbours due within a few ms go now too, so their probes share this wake-up.
      for (const peer of this.neighbours.keys()) if ((this.probeDueAt.get(peer) ?? at) <= at + PROBE_SLACK_MS) this.probe(peer);
      // Also retires local ports of peers gone longer than the grace period.
      if (this.goneSince.size > 0) void this.sync();
      this.scheduleProbes();
    }, Math.max(0, due - now));
  }

  /** True while a probe kind to `peer` is unknown, or up but failing (not yet down). */
  private suspect(peer: PeerName): boolean {
    const unsettled = (s: ProbeState | undefined): boolean => s === undefined || s.ok === undefined || (s.ok && s.failures > 0);
    return unsettled(this.direct.get(peer)) || unsettled(this.open.get(peer));
  }

  /**
   * When settled neighbours are probed next: one shared round every steady interval, so that an
   * idle router wakes once per interval for all of them. A neighbour joining the rounds waits at
   * most one steady interval.
   */
  private nextSteadyRound(now: number): number {
    if (this.steadyRoundAt <= now + PROBE_SLACK_MS) this.steadyRoundAt = now + this.steadyProbeIntervalMs;
    return this.steadyRoundAt;
  }

  private probe(peer: PeerName): void {
    const now = this.clock.now();
    this.probeDueAt.set(peer, this.suspect(peer) ? now + this.probeIntervalMs : this.nextSteadyRound(now));
    try {
      this.relay.probe(peer);
      this.relay.probe(peer, { unsolicited: true, size: this.openProbeBytes });
    } catch (err) {
      this.logger.warn({ peer, err: toLoomError(err).message }, 'relay probe not sent');
    }
  }

  /** The next probes to `peer` now (a failure was just heard: the probes after it go at the fast rate). */
  private probeSoon(peer: PeerName): void {
    const due = this.probeDueAt.get(peer);
    if (due === undefined || !this.neighbours.has(peer)) return;
    const soon = this.clock.now();
    if (soon >= due) return;
    this.probeDueAt.set(peer, soon);
    this.scheduleProbes();
  }

  private onProbeResult(peer: PeerName, ok: boolean, rttMs: number | null, unsolicited: boolean): void {
    const state = (unsolicited ? this.open : this.direct).get(peer);
    if (!state) return; // no longer a neighbour
    const before = state.ok;
    if (ok) {
      state.failures = 0;
      state.ok = true;
      if (!unsolicited) state.rttMs = rttMs;
    } else {
      state.failures++;
      if (before === undefined || state.failures >= this.failuresToDown) state.ok = false;
      // A known-good path started failing: confirm (or clear) it at the fast rate from now on.
      else this.probeSoon(peer);
    }
    if (state.ok === before) return;
    this.logger.info({ peer, kind: unsolicited ? 'open' : 'direct', ok: state.ok, rttMs }, unsolicited ? 'unsolicited UDP to peer changed' : 'relay hop to peer changed');
    if (!unsolicited) this.recomputeRoutes();
    this.notify();
  }
}
