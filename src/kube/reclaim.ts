/**
 * Reclaiming the address space of peers whose nodes were deleted, one at a time, by exactly one
 * router (the idea of Weave Net's kube-utils, rebuilt on Loom's ConfigMap registry and rmpeer).
 *
 * A peer P on node N is a candidate when P is not us, P is unreachable in the mesh, and either
 * N is gone from the API (the watcher's synced view, then confirmed by a fresh GET answering
 * 404) or N now runs another peer that we can reach (the node was wiped and rejoined under a
 * new peer name). Then:
 *   1. take the lock: a CAS on the ConfigMap from "no lock" (or a stale one) to {P, by: us};
 *      whoever loses the CAS re-reads, sees the lock, and backs off;
 *   2. `rmpeer P` in our IPAM (which itself refuses while P is reachable);
 *   3. remove P's record and the lock in one CAS.
 * A failure at 2 releases the lock. A lock is stale when its holder's node is gone, or it is
 * older than the lease (the holder crashed between 1 and 3); rmpeer of an already reclaimed peer
 * moves nothing, so finishing someone else's stale reclaim is harmless.
 *
 * IPAM refuses rmpeer (ERR_CONFLICT) while any OTHER owner of space is unreachable, because two
 * halves of a partition could pick two heirs. When every such owner is itself a peer whose node
 * is confirmed deleted, they are gone for good, not partitioned: we then force.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { isLoomError, LoomError, toLoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { MeshView } from '../mesh/types.js';
import { type KubeApi, statusMessage } from './client.js';
import { NODES_PATH } from './node-watcher.js';
import { type PeerRecord, type PeerRegistry, type ReclaimLock, type RegistryState, withSelf } from './peer-registry.js';

/** What reclaim needs of IPAM (the ipam subsystem's rmpeer). */
export interface PeerSpaceReclaimer {
  rmpeer(names: readonly string[], options?: { force?: boolean }): Promise<{ heir: string; moved: number }>;
}

export const DEFAULT_RECLAIM_LEASE_MS = 5 * 60_000;
export const DEFAULT_RECLAIM_INTERVAL_MS = 60_000;

export interface ReclaimView {
  self: PeerName;
  /** Node names from a synced watcher. */
  liveNodes: ReadonlySet<string>;
  isReachable(peer: PeerName): boolean;
  /** Wall-clock ms. */
  now: number;
  leaseMs: number;
}

export type ReclaimReason = 'node-deleted' | 'node-taken-over';

export interface ReclaimCandidate extends PeerRecord {
  reason: ReclaimReason;
}

/** The peers we may reclaim now, in a stable order (by peer name). Pure. */
export function reclaimCandidates(state: RegistryState, view: ReclaimView): ReclaimCandidate[] {
  const out: ReclaimCandidate[] = [];
  for (const p of state.peers) {
    if (p.peer === view.self || view.isReachable(p.peer)) continue;
    if (!view.liveNodes.has(p.node)) out.push({ ...p, reason: 'node-deleted' });
    else if (state.peers.some((q) => q.node === p.node && q.peer !== p.peer && (q.peer === view.self || view.isReachable(q.peer)))) out.push({ ...p, reason: 'node-taken-over' });
  }
  return out.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
}

/** True when nobody holds the lock, we do, or its holder is gone (node deleted, lease over). Pure. */
export function lockIsFree(state: RegistryState, view: ReclaimView): boolean {
  const lock = state.reclaim;
  if (lock === null || lock.by === view.self) return true;
  if (view.now - lock.since > view.leaseMs) return true;
  const holder = state.peers.find((p) => p.peer === lock.by);
  return holder !== undefined && !view.liveNodes.has(holder.node);
}

/** The state with the lock taken by us for `candidate`, or null (lock busy, or the candidate is no longer one). Pure. */
export function takeLock(state: RegistryState, candidate: PeerRecord, view: ReclaimView): RegistryState | null {
  if (!reclaimCandidates(state, view).some((c) => c.peer === candidate.peer && c.node === candidate.node)) return null;
  if (!lockIsFree(state, view)) return null;
  return { ...state, reclaim: { peer: candidate.peer, node: candidate.node, by: view.self, since: view.now } };
}

/** The record of the reclaimed peer and our lock removed; null when neither is there. Pure. */
export function finishReclaim(state: RegistryState, lock: ReclaimLock): RegistryState | null {
  const peers = state.peers.filter((p) => !(p.peer === lock.peer && p.node === lock.node));
  const ours = state.reclaim !== null && state.reclaim.by === lock.by && state.reclaim.peer === lock.peer;
  if (peers.length === state.peers.length && !ours) return null;
  return { peers, reclaim: ours ? null : state.reclaim };
}

/** Our lock dropped (the record stays); null when it is not ours any more. Pure. */
export function releaseLock(state: RegistryState, lock: ReclaimLock): RegistryState | null {
  if (state.reclaim === null || state.reclaim.by !== lock.by || state.reclaim.peer !== lock.peer) return null;
  return { ...state, reclaim: null };
}

export type ReclaimOutcome =
  | { kind: 'idle' }
  | { kind: 'busy'; heldBy: PeerName | null }
  | { kind: 'reclaimed'; peer: PeerName; node: string; reason: ReclaimReason; heir: string; moved: number; forced: boolean }
  /** `peer` is null when the pass failed before choosing one (API unreachable, say). */
  | { kind: 'failed'; peer: PeerName | null; error: string };

export interface ReclaimerComponents {
  registry: PeerRegistry;
  api: KubeApi;
  ipam: PeerSpaceReclaimer;
  mesh: Pick<MeshView, 'self' | 'isReachable'>;
  logger: Logger;
  /** Wall clock for the lock's `since` (shared between hosts); default Date.now. */
  wallNow?: () => number;
}

export interface ReclaimerInit {
  selfNode: string;
  leaseMs?: number;
}

export interface ReclaimerStatus {
  passes: number;
  reclaimed: { peer: string; node: string; moved: number }[];
  lastOutcome: ReclaimOutcome['kind'] | null;
  lastError: string | null;
}

export class Reclaimer {
  private readonly leaseMs: number;
  private readonly wallNow: () => number;
  /** Candidates whose last attempt failed: tried after the others, so one stuck peer does not starve the rest. */
  private readonly failedLast = new Set<PeerName>();
  private readonly stats: ReclaimerStatus = { passes: 0, reclaimed: [], lastOutcome: null, lastError: null };

  constructor(
    private readonly c: ReclaimerComponents,
    private readonly init: ReclaimerInit,
  ) {
    this.leaseMs = init.leaseMs ?? DEFAULT_RECLAIM_LEASE_MS;
    this.wallNow = c.wallNow ?? Date.now;
  }

  status(): ReclaimerStatus {
    return { ...this.stats, reclaimed: [...this.stats.reclaimed] };
  }

  /** Records our peer on our node (no write when it is already there). */
  async register(): Promise<RegistryState> {
    return (await this.c.registry.update((s) => withSelf(s, { peer: this.c.mesh.self, node: this.init.selfNode }))).state;
  }

  /** One pass: register, then reclaim at most one peer. Never throws; the outcome says what happened. */
  async runOnce(liveNodes: ReadonlySet<string>): Promise<ReclaimOutcome> {
    this.stats.passes++;
    let outcome: ReclaimOutcome;
    try {
      outcome = await this.pass(liveNodes);
    } catch (err) {
      outcome = { kind: 'failed', peer: null, error: toLoomError(err).message };
    }
    this.stats.lastOutcome = outcome.kind;
    if (outcome.kind === 'failed') {
      this.stats.lastError = outcome.error;
      this.c.logger.warn({ peer: outcome.peer, err: outcome.error }, 'reclaim failed; will try again');
    }
    return outcome;
  }

  private view(liveNodes: ReadonlySet<string>): ReclaimView {
    return { self: this.c.mesh.self, liveNodes, isReachable: (p) => this.c.mesh.isReachable(p), now: this.wallNow(), leaseMs: this.leaseMs };
  }

  private async pass(liveNodes: ReadonlySet<string>): Promise<ReclaimOutcome> {
    const state = await this.register();
    const view = this.view(liveNodes);
    const candidates = reclaimCandidates(state, view);
    if (candidates.length === 0) {
      this.failedLast.clear();
      return { kind: 'idle' };
    }
    if (!lockIsFree(state, view)) return { kind: 'busy', heldBy: state.reclaim?.by ?? null };
    const ordered = [...candidates.filter((c) => !this.failedLast.has(c.peer)), ...candidates.filter((c) => this.failedLast.has(c.peer))];
    for (const candidate of ordered) {
      if (candidate.reason === 'node-deleted' && (await this.nodeExists(candidate.node))) continue; // the watch lags; not ours to judge yet
      return this.reclaim(candidate, state, liveNodes);
    }
    return { kind: 'idle' };
  }

  private async reclaim(candidate: ReclaimCandidate, seen: RegistryState, liveNodes: ReadonlySet<string>): Promise<ReclaimOutcome> {
    const taken = await this.c.registry.update((s) => takeLock(s, candidate, this.view(liveNodes)));
    if (!taken.written) return { kind: 'busy', heldBy: taken.state.reclaim?.by ?? null };
    const lock = taken.state.reclaim!;
    this.c.logger.warn({ peer: candidate.peer, node: candidate.node, reason: candidate.reason }, 'reclaiming the address space of a removed peer');
    let result: { heir: string; moved: number };
    let forced = false;
    try {
      try {
        result = await this.c.ipam.rmpeer([candidate.peer]);
      } catch (err) {
        if (!this.mayForce(err, seen, liveNodes)) throw err;
        forced = true;
        result = await this.c.ipam.rmpeer([candidate.peer], { force: true });
      }
    } catch (err) {
      this.failedLast.add(candidate.peer);
      await this.c.registry.update((s) => releaseLock(s, lock)).catch(() => undefined); // else it goes stale after the lease
      return { kind: 'failed', peer: candidate.peer, error: toLoomError(err).message };
    }
    this.failedLast.delete(candidate.peer);
    await this.c.registry.update((s) => finishReclaim(s, lock));
    this.stats.reclaimed.push({ peer: candidate.peer, node: candidate.node, moved: result.moved });
    this.c.logger.warn({ peer: candidate.peer, node: candidate.node, heir: result.heir, moved: result.moved, forced }, 'reclaimed the address space of a removed peer');
    return { kind: 'reclaimed', peer: candidate.peer, node: candidate.node, reason: candidate.reason, heir: result.heir, moved: result.moved, forced };
  }

  /** rmpeer refused only because other owners are unreachable, and each of them is a peer whose node is deleted. */
  private mayForce(err: unknown, state: RegistryState, liveNodes: ReadonlySet<string>): boolean {
    if (!isLoomError(err, 'ERR_CONFLICT')) return false;
    const owners = err.detail?.['unreachableOwners'];
    if (!Array.isArray(owners) || owners.length === 0) return false;
    const deadPeers = new Set(state.peers.filter((p) => !liveNodes.has(p.node)).map((p) => p.peer as string));
    return owners.every((o) => typeof o === 'string' && deadPeers.has(o));
  }

  private async nodeExists(name: string): Promise<boolean> {
    const res = await this.c.api.request('GET', `${NODES_PATH}/${name}`);
    if (res.status === 404) return false;
    if (res.status === 200) return true;
    throw new LoomError('ERR_UNAVAILABLE', `get node ${name}: ${res.status} ${statusMessage(res.body)}`);
  }
}

/** Runs reclaim passes every `intervalMs` and soon after `poke` (a node was deleted), never two at once. */
export class ReclaimLoop {
  private timer: TimerHandle | null = null;
  private running = false;
  private inPass: Promise<unknown> | null = null;
  private again = false;

  constructor(
    private readonly c: { reclaimer: Reclaimer; clock: Clock; liveNodes: () => ReadonlySet<string> | null },
    private readonly intervalMs: number = DEFAULT_RECLAIM_INTERVAL_MS,
  ) {}

  start(): void {
    this.running = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    await this.inPass;
  }

  /** Run a pass soon (a node went away). */
  poke(): void {
    if (!this.running) return;
    if (this.inPass) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    this.timer?.cancel();
    this.timer = this.c.clock.setTimeout(() => void this.runPass(), ms);
  }

  private async runPass(): Promise<void> {
    if (!this.running || this.inPass) return;
    const live = this.c.liveNodes();
    if (live !== null) {
      const pass = this.c.reclaimer.runOnce(live);
      this.inPass = pass;
      const outcome = await pass;
      this.inPass = null;
      if (outcome.kind === 'reclaimed') this.again = true; // there may be more: one at a time, but without waiting a whole interval
    }
    if (!this.running) return;
    const soon = this.again;
    this.again = false;
    this.schedule(soon ? 0 : this.intervalMs);
  }
}
