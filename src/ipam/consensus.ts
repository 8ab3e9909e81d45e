/**
 * How this peer gets its first ring (bootstrap.ts parses the mode): a seed computes the initial
 * split on its own; in consensus mode the smallest of a stable quorum of participants proposes
 * it; an observer waits for a donation. Participants are the reachable peers whose stats we have
 * seen, so taking part is announced by gossiping our (empty) stats.
 *
 * Contract: a proposal is made only by a running peer whose ring is still empty, after the same
 * participants were seen for `consensusSettleMs`; `ringArrived` cancels a proposal in waiting.
 */
import type { TimerHandle } from '../core/clock.js';
import { LoomError } from '../core/errors.js';
import type { PeerName } from '../core/ids.js';
import { quorumOf, shouldPropose } from './bootstrap.js';
import type { IpamContext } from './context.js';
import { Ring } from './ring.js';

export class Consensus {
  private proposalTimer: TimerHandle | null = null;
  /** The participants (joined names) the waiting proposal was planned for. */
  private plannedParticipants = '';

  constructor(
    private readonly context: IpamContext,
    /** Called after the initial ring was adopted (saved and broadcast). */
    private readonly ringChanged: () => void,
  ) {}

  /** Starts bootstrap for a peer whose ring is empty. */
  begin(): void {
    const { context } = this;
    const mode = context.settings.mode;
    switch (mode.kind) {
      case 'seed':
        if (mode.seeds.includes(context.self)) this.adoptInitialRing(Ring.initial(context.range, mode.seeds));
        return;
      case 'consensus':
        // Announce that we take part: participants are the peers whose stats we have seen.
        context.ring.setStats(context.self, 0, 0);
        context.saveRing();
        context.broadcastRing();
        this.evaluate();
        return;
      case 'observer':
        return;
      default: {
        const never: never = mode;
        throw new LoomError('ERR_INTERNAL', `unknown bootstrap mode ${String(never)}`);
      }
    }
  }

  /** Re-checks whether to propose (after a mesh or ring change). Idempotent. */
  evaluate(): void {
    const { context } = this;
    if (!context.running || context.settings.mode.kind !== 'consensus' || !context.ring.isEmpty()) return;
    const participants = this.participants();
    const key = participants.join(',');
    if (key === this.plannedParticipants && this.proposalTimer) return;
    this.proposalTimer?.cancel();
    this.proposalTimer = null;
    this.plannedParticipants = key;
    if (!shouldPropose(context.self, participants, this.quorum())) return;
    // Propose only if the same participants are still there after the settle period.
    this.proposalTimer = context.clock.setTimeout(() => {
      this.proposalTimer = null;
      if (!context.running || !context.ring.isEmpty()) return;
      const now = this.participants();
      if (now.join(',') !== key || !shouldPropose(context.self, now, this.quorum())) {
        this.evaluate();
        return;
      }
      context.log.info({ participants: now, quorum: this.quorum() }, 'consensus: proposing the initial split');
      this.adoptInitialRing(Ring.initial(context.range, now));
    }, context.settings.consensusSettleMs);
  }

  /** The ring is no longer empty: a proposal in waiting is dropped. */
  ringArrived(): void {
    if (this.context.ring.isEmpty()) return;
    this.proposalTimer?.cancel();
    this.proposalTimer = null;
  }

  stop(): void {
    this.proposalTimer?.cancel();
  }

  /** `idle`, `awaiting consensus (quorum Q, known K)` or `ready`. */
  stateText(): string {
    if (!this.context.ring.isEmpty()) return 'ready';
    if (this.context.settings.mode.kind === 'consensus') return `awaiting consensus (quorum ${this.quorum()}, known ${this.participants().length})`;
    return 'idle';
  }

  private quorum(): number {
    const mode = this.context.settings.mode;
    return mode.kind === 'consensus' ? quorumOf(mode.clusterSize ?? this.context.settings.expectedPeers) : 0;
  }

  private participants(): PeerName[] {
    const { context } = this;
    return context.mesh.reachablePeers().filter((p) => p === context.self || context.ring.stats.has(p)).sort();
  }

  private adoptInitialRing(initial: Ring): void {
    const { context } = this;
    context.ring.merge(initial);
    context.saveRing();
    context.log.info({ seeds: initial.seeds, owned: context.ring.ownedSize(context.self) }, 'ipam ring initialised');
    context.events.emit({ kind: 'ipam-claimed', peer: context.self, text: `IPAM ring initialised by ${initial.seeds.length} seed(s); this peer owns ${context.ring.ownedSize(context.self)} addresses` });
    context.broadcastRing();
    this.ringChanged();
  }
}
