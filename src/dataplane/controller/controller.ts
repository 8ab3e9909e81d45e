/**
 * The data plane controller: the thin I/O shell around computeDesired. It gathers facts from the
 * router (reachable peers, direct connections) and the "dataplane" gossip (remote MACs), and
 * applies the result with the dataplane, debounced, after every mesh, gossip or container change.
 *
 * Contracts:
 * - apply is idempotent, so a redundant run costs one read of the kernel state and nothing else.
 * - At most one apply runs at a time; changes during a run cause exactly one more run after it.
 * - A failed apply is logged and retried after `retryMs` (the mesh may not change again soon).
 * - `stop` never removes the bridge, the vxlan device or its FDB: established flows keep going
 *   while the router is down or restarting, and the next start converges from what is there.
 *   Only `teardown` (explicit: `loom reset`) removes them.
 */
import { nullEventSink, type EventSink } from '../../core/events.js';
import { macMoveEvents, macOwners, pathEvents } from './path-events.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { toLoomError } from '../../core/errors.js';
import type { PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import { hostOf } from '../../mesh/address.js';
import type { RouterApi } from '../../mesh/types.js';
import { parseIpv4 } from '../addresses.js';
import type { DataplaneOp, DesiredDataplane, PeerSpec, RemoteMac } from '../types.js';
import {
  computeDesired,
  DEFAULT_POLICY,
  holdFastPaths,
  relayForwarding,
  retainPrevious,
  type ControllerFacts,
  type NeighbourFact,
  type PathPolicy,
  type PeerPathStatus,
  type RelayFacts,
  type RelayForwardingTable,
  type RememberedDataplane,
} from './desired.js';
import { DATAPLANE_CHANNEL } from './gossip-data.js';
import { MacGossip } from './mac-gossip.js';
import { DEFAULT_SETTINGS, VXLAN_OVERHEAD, type DataplaneSettings } from './settings.js';

/** The part of LinuxDataplane the controller uses; tests pass a recorder. */
export interface DataplaneApplier {
  apply(desired: DesiredDataplane): Promise<DataplaneOp[]>;
  teardown(names: { bridge: string; vxlan: string }): Promise<DataplaneOp[]>;
}

export interface DataplaneControllerComponents {
  router: Pick<RouterApi, 'mesh' | 'connectionTo' | 'newGossipChannel' | 'status'>;
  dataplane: DataplaneApplier;
  clock: Clock;
  logger: Logger;
  /** The relay's current facts, when the user-space relay runs; absent = fast path only. */
  relay?: () => RelayFacts | null;
  /** Milliseconds since the epoch, for the gossip version; default Date.now. */
  wallClock?: () => number;
  /** Keeps the last applied peers across restarts (see retainPrevious); absent = nothing kept. */
  memory?: DataplaneMemory;
  /** What the relay adds to `loom report` (its counters), when it runs. */
  relayStatus?: () => unknown;
  /** Where path changes are told (the daemon's event log); default nowhere. */
  events?: EventSink;
  /**
   * Tells the relay (tap mode) which peer each MAC read from the tap belongs to, and whom to flood
   * to. Called with relayForwarding(desired) on every apply, before the kernel is changed, so the
   * relay knows a peer as soon as the bridge may send it frames (and even if the kernel apply
   * fails). Must not throw; if it does, the error is logged and the apply goes on.
   */
  relayForwarding?: (table: RelayForwardingTable) => void;
}

export interface DataplaneMemory {
  load(): RememberedDataplane | null;
  save(applied: RememberedDataplane): void;
}

export interface DataplaneControllerInit extends Partial<DataplaneSettings> {
  /** Coalesces bursts of changes into one apply (default 100 ms). */
  debounceMs?: number;
  /** Delay before retrying a failed apply (default 5,000 ms). */
  retryMs?: number;
  /**
   * A peer that disappears from the mesh (its router crashed or restarts; a partition) keeps its
   * FDB entries this long after it was last seen, so established flows to its containers go on;
   * after a restart of ours, the peers applied before are kept as long (default 30,000 ms).
   */
  peerGraceMs?: number;
  /** `--no-fastdp` and `--trusted-subnets` (default: fastdp allowed, nothing trusted). */
  policy?: PathPolicy;
}

export interface DataplaneStatus {
  bridge: string;
  vxlan: string;
  /** The relay's tap, when the last computed state had one (relay in tap mode). */
  tap?: string;
  vni: number;
  port: number;
  mtu: number;
  localMacs: string[];
  peers: PeerPathStatus[];
  applies: number;
  lastApplyOps: number;
  lastError: string | null;
  /** The relay's counters and neighbours, when it runs. */
  relay?: unknown;
}

/** A peer's underlay IPv4 from "host:port" as the stream reports it (IPv4-mapped IPv6 unwrapped). */
export function underlayIpOf(remoteAddress: string): string | null {
  let host = hostOf(remoteAddress);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.toLowerCase().startsWith('::ffff:')) host = host.slice(7);
  try {
    return parseIpv4(host);
  } catch {
    return null;
  }
}

/** How long a peer keeps its fast path after its direct connection goes (see heldPeers). */
export const HOLD_FAST_PATH_MS = 2_000;

export class DataplaneController {
  readonly gossip: MacGossip;
  readonly settings: DataplaneSettings;
  private readonly router: DataplaneControllerComponents['router'];
  private readonly dataplane: DataplaneApplier;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly relay: () => RelayFacts | null;
  private readonly debounceMs: number;
  private readonly retryMs: number;
  private readonly peerGraceMs: number;
  private readonly memory: DataplaneMemory | undefined;
  private readonly policy: PathPolicy;
  private readonly relayStatus: (() => unknown) | undefined;
  private readonly events: EventSink;
  private readonly relayForwardingSink: ((table: RelayForwardingTable) => void) | undefined;
  private lastTap: string | null = null;
  /** Last applied spec and MACs per peer, and until when to keep them once the peer is gone. */
  private readonly retained = new Map<PeerName, { spec: PeerSpec; macs: RemoteMac[]; until: number }>();
  private graceTimer: TimerHandle | null = null;
  /** True while saving the memory fails (so the failure is logged once). */
  private memorySaveFailing = false;
  private localMacs: string[] = [];
  private timer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  /** Direct neighbours at the last apply, and when each one we lost since went away (see heldPeers). */
  private connected = new Set<PeerName>();
  private readonly connectionLostAt = new Map<PeerName, number>();
  private holdTimer: TimerHandle | null = null;
  /** When the last apply ended (clock ms); the debounce window is counted from it. */
  private lastApplyAt = -Infinity;
  private started = false;
  private unsubscribe: Array<() => void> = [];
  private lastPeers: PeerPathStatus[] = [];
  /** Container MAC -> peer at the last apply, to tell a container that moved. */
  private macOwners = new Map<string, string>();
  private applies = 0;
  private lastApplyOps = 0;
  private lastError: string | null = null;

  constructor(components: DataplaneControllerComponents, init: DataplaneControllerInit = {}) {
    this.router = components.router;
    this.dataplane = components.dataplane;
    this.clock = components.clock;
    this.logger = components.logger.child({ component: 'dataplane' });
    this.relay = components.relay ?? (() => null);
    this.debounceMs = init.debounceMs ?? 100;
    this.retryMs = init.retryMs ?? 5_000;
    this.peerGraceMs = init.peerGraceMs ?? 30_000;
    this.memory = components.memory;
    this.relayStatus = components.relayStatus;
    this.events = components.events ?? nullEventSink;
    this.relayForwardingSink = components.relayForwarding;
    this.policy = init.policy ?? DEFAULT_POLICY;
    this.settings = {
      bridge: init.bridge ?? DEFAULT_SETTINGS.bridge,
      vxlan: init.vxlan ?? DEFAULT_SETTINGS.vxlan,
      tap: init.tap ?? DEFAULT_SETTINGS.tap,
      vni: init.vni ?? DEFAULT_SETTINGS.vni,
      port: init.port ?? DEFAULT_SETTINGS.port,
      mtu: init.mtu ?? DEFAULT_SETTINGS.mtu,
    };
    this.gossip = new MacGossip({ self: this.router.mesh.self, logger: this.logger, ...(components.wallClock ? { wallClock: components.wallClock } : {}) });
    // Opened here, before the router starts, so the first full state to each neighbour has it.
    this.gossip.attach(this.router.newGossipChannel(DATAPLANE_CHANNEL, this.gossip));
  }

  /** Follows the mesh and the gossip, and schedules the first apply. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const remembered = this.loadMemory();
    if (remembered) this.retain(remembered, this.clock.now() + this.peerGraceMs);
    this.unsubscribe.push(this.router.mesh.onChange(() => this.schedule()), this.gossip.onChange(() => this.schedule()));
    this.schedule();
  }

  /** Stops following changes and waits for a running apply. Leaves the kernel state as it is. */
  async stop(): Promise<void> {
    this.started = false;
    for (const u of this.unsubscribe.splice(0)) u();
    this.timer?.cancel();
    this.timer = null;
    this.graceTimer?.cancel();
    this.graceTimer = null;
    this.holdTimer?.cancel();
    this.holdTimer = null;
    this.again = false;
    await this.running;
  }

  /** Our containers' MACs changed: gossip them and re-apply (remote MACs must not shadow local ones). */
  setLocalMacs(macs: Iterable<string>): void {
    this.gossip.setLocalMacs(macs);
    this.localMacs = [...this.gossip.own.macs];
    this.schedule();
  }

  /**
   * Something changed: re-apply soon. Leading edge first: after a quiet debounce window the apply
   * runs on the next timer tick (changes made in the same event still go together), so a new
   * container's MAC reaches the kernel FDB at once instead of 100 ms later; during a burst at
   * most one apply per window (`again` folds in what arrives while one runs). `delayMs` given:
   * exactly that wait (the retry after a failure).
   */
  schedule(delayMs?: number): void {
    if (!this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const wait = delayMs ?? Math.max(0, Math.min(this.debounceMs, this.lastApplyAt + this.debounceMs - this.clock.now()));
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.runApply();
    }, wait);
  }

  /** The facts as the router and gossip know them now. */
  facts(): ControllerFacts {
    const mesh = this.router.mesh;
    const reachable = mesh.reachablePeers();
    const neighbours = new Map<PeerName, NeighbourFact>();
    const macs = new Map<PeerName, readonly string[]>();
    for (const peer of reachable) {
      if (peer === mesh.self) continue;
      const conn = this.router.connectionTo(peer);
      if (conn) neighbours.set(peer, { underlayIp: underlayIpOf(conn.remoteAddress), encrypted: conn.encrypted });
      const entry = this.gossip.entryOf(peer);
      if (entry) macs.set(peer, entry.macs);
    }
    const relay = this.relay();
    const udpBlocked = new Set<PeerName>();
    if (relay) for (const [peer, ok] of relay.open) if (!ok && neighbours.has(peer)) udpBlocked.add(peer);
    const fastdpFrameBytes = this.settings.mtu + VXLAN_OVERHEAD;
    return { self: mesh.self, reachable, neighbours, macs, localMacs: this.localMacs, udpBlocked, relay, fastdpFrameBytes, policy: this.policy };
  }

  /** Computes and applies now (the debounce's target; also for tests). Never throws. */
  async applyNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    return this.runApply();
  }

  private runApply(): Promise<void> {
    // `.then` runs after this function returns, so `running` is always set before it is cleared.
    const run = this.applyOnce().then((ok) => {
      this.running = null;
      this.lastApplyAt = this.clock.now();
      const again = this.again;
      this.again = false;
      if (!ok) this.schedule(this.retryMs);
      else if (again) this.schedule();
    });
    this.running = run;
    return run;
  }

  /**
   * One info line per peer whose data path changed (fastdp, sleeve, unreachable, or through
   * another relay hop), with the reason; a peer that appears or goes counts as a change from or
   * to `none`. Nothing when an apply recomputes the same paths.
   */
  private logPathChanges(before: readonly PeerPathStatus[], after: readonly PeerPathStatus[]): void {
    const describe = (p: PeerPathStatus | undefined): string => (p === undefined ? 'none' : p.via === undefined ? p.path : `${p.path} via ${p.via}`);
    const old = new Map(before.map((p) => [p.peer, p]));
    const seen = new Set<PeerName>();
    for (const p of after) {
      seen.add(p.peer);
      const from = describe(old.get(p.peer));
      const to = describe(p);
      if (from === to) continue;
      this.logger.info({ peer: p.peer, nickname: this.router.mesh.nicknameOf(p.peer) ?? null, from, to, reason: p.reason ?? 'direct UDP reaches the peer', encrypted: p.encrypted }, 'data path changed');
    }
    for (const p of before) {
      if (!seen.has(p.peer)) this.logger.info({ peer: p.peer, nickname: this.router.mesh.nicknameOf(p.peer) ?? null, from: describe(p), to: 'none', reason: 'no longer in the mesh' }, 'data path changed');
    }
  }

  /** One compute + apply; true on success. Failures are logged once per distinct message. */
  private async applyOnce(): Promise<boolean> {
    try {
      const facts = this.facts();
      const now = this.clock.now();
      const held = this.heldPeers(facts, now);
      const computed = holdFastPaths(computeDesired(this.settings, facts), this.remembered(), held);
      // A held peer's grace period runs from when it was last really there, not from the holds.
      this.retain({ peers: computed.desired.peers.filter((p) => !held.has(p.name)), remoteMacs: computed.desired.remoteMacs.filter((r) => !held.has(r.peer)) }, now + this.peerGraceMs);
      for (const [peer, r] of this.retained) if (r.until <= now) this.retained.delete(peer);
      const { desired, peers } = retainPrevious(computed, this.remembered());
      this.scheduleGraceEnd(now, new Set(computed.peers.map((p) => p.peer)));
      this.logPathChanges(this.lastPeers, peers);
      const nicknameOf = (peer: string): string | undefined => this.router.mesh.nicknameOf(peer as PeerName);
      for (const e of pathEvents(this.lastPeers, peers, nicknameOf)) this.events.emit(e);
      const owners = macOwners(this.gossip.entries());
      for (const e of macMoveEvents(this.macOwners, owners, nicknameOf)) this.events.emit(e);
      this.macOwners = owners;
      this.lastPeers = peers;
      this.lastTap = desired.tap?.name ?? null;
      this.updateRelayForwarding(desired);
      const ops = await this.dataplane.apply(desired);
      this.saveMemory({ peers: desired.peers, remoteMacs: desired.remoteMacs });
      this.applies++;
      this.lastApplyOps = ops.length;
      if (this.lastError !== null) this.logger.info({}, 'dataplane apply recovered');
      this.lastError = null;
      return true;
    } catch (err) {
      const e = toLoomError(err, 'ERR_OS_COMMAND');
      if (this.lastError !== e.message) this.logger.error({ code: e.code, err: e.message }, 'dataplane apply failed; will retry');
      this.lastError = e.message;
      return false;
    }
  }

  private updateRelayForwarding(desired: DesiredDataplane): void {
    if (!this.relayForwardingSink) return;
    try {
      this.relayForwardingSink(relayForwarding(desired));
    } catch (err) {
      this.logger.error({ err: toLoomError(err).message }, 'relay forwarding table not updated');
    }
  }

  /**
   * Peers whose direct connection went away less than HOLD_FAST_PATH_MS ago. For a moment after
   * a router dies, the others' topology can still show it reachable through a third peer (whose
   * own report of the loss is on its way), so the computed path flips to the relay; applied, that
   * flip would also become the path kept for the restart grace period, and every fast-path flow
   * to the restarting router's containers would stall. Held, the peer keeps its fast path until
   * the topology settles: unreachable (the grace period keeps the fast path), or still reachable
   * after the hold (the relay takes over, as before).
   */
  private heldPeers(facts: ControllerFacts, now: number): Set<PeerName> {
    for (const peer of this.connected) if (!facts.neighbours.has(peer)) this.connectionLostAt.set(peer, now);
    this.connected = new Set(facts.neighbours.keys());
    const held = new Set<PeerName>();
    for (const [peer, at] of this.connectionLostAt) {
      if (facts.neighbours.has(peer) || now - at >= HOLD_FAST_PATH_MS) this.connectionLostAt.delete(peer);
      else held.add(peer);
    }
    if (held.size > 0) this.holdTimer ??= this.clock.setTimeout(() => {
      this.holdTimer = null;
      this.schedule();
    }, HOLD_FAST_PATH_MS + 1);
    return held;
  }

  /** Records `applied` peers (and their MACs) as kept until `until`. */
  private retain(applied: RememberedDataplane, until: number): void {
    for (const spec of applied.peers) this.retained.set(spec.name, { spec, macs: applied.remoteMacs.filter((r) => r.peer === spec.name), until });
  }

  private remembered(): RememberedDataplane {
    const all = [...this.retained.values()];
    return { peers: all.map((r) => r.spec), remoteMacs: all.flatMap((r) => r.macs) };
  }

  /** Re-applies when the earliest kept peer that is gone (not in `present`) expires. */
  private scheduleGraceEnd(now: number, present: ReadonlySet<PeerName>): void {
    this.graceTimer?.cancel();
    this.graceTimer = null;
    let earliest = Infinity;
    for (const [peer, r] of this.retained) if (!present.has(peer)) earliest = Math.min(earliest, r.until);
    if (earliest === Infinity || !this.started) return;
    this.graceTimer = this.clock.setTimeout(() => {
      this.graceTimer = null;
      this.schedule();
    }, Math.max(0, earliest - now) + 1);
  }

  private loadMemory(): RememberedDataplane | null {
    try {
      return this.memory?.load() ?? null;
    } catch (err) {
      this.logger.warn({ err: toLoomError(err).message }, 'dataplane memory unreadable; starting from the mesh alone');
      return null;
    }
  }

  /** Best effort (the memory only speeds up a restart); a failing disk is said once, not per apply. */
  private saveMemory(applied: RememberedDataplane): void {
    try {
      this.memory?.save(applied);
    } catch (err) {
      const e = toLoomError(err);
      if (!this.memorySaveFailing) this.logger.warn({ code: e.code, err: e.message }, 'dataplane memory not saved (said once until a save works again)');
      this.memorySaveFailing = true;
      return;
    }
    if (this.memorySaveFailing) this.logger.info({}, 'dataplane memory saved again');
    this.memorySaveFailing = false;
  }

  /** Removes bridge, vxlan device and FDB (`loom reset`). Stops following changes first. */
  async teardown(): Promise<DataplaneOp[]> {
    await this.stop();
    return this.dataplane.teardown({ bridge: this.settings.bridge, vxlan: this.settings.vxlan });
  }

  status(): DataplaneStatus {
    return {
      bridge: this.settings.bridge,
      vxlan: this.settings.vxlan,
      ...(this.lastTap !== null ? { tap: this.lastTap } : {}),
      vni: this.settings.vni,
      port: this.settings.port,
      mtu: this.settings.mtu,
      localMacs: [...this.localMacs],
      peers: this.lastPeers.map((p) => ({ ...p })),
      applies: this.applies,
      lastApplyOps: this.lastApplyOps,
      lastError: this.lastError,
      ...(this.relayStatus ? { relay: this.relayStatus() } : {}),
    };
  }
}
