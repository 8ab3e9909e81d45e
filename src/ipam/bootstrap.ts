/**
 * How a peer gets its first share of the range. Parsed once from the user's text:
 *   seed=NAME,NAME,...  every listed peer computes the same split on its own (Ring.initial)
 *   consensus[=N]       N = expected cluster size; a quorum floor(N/2)+1 must be reachable
 *   observer            never owns space until some is donated
 *
 * Consensus safety argument (docs/IPAM.md has the long form): a proposal needs a quorum of
 * the N expected peers to be reachable from the proposer and the proposer to be the smallest
 * name among them, stable for a settle period. Two components that do not see each other cannot
 * both hold a majority of N peers, so at most one component can propose; within one component
 * views converge, and only the smallest name proposes. A peer that already has a ring never
 * proposes. The residual risk (more than N peers started, or views that disagree for longer
 * than the settle period) is caught when the two rings meet: different seeds are never merged
 * (ERR_CONFLICT, logged), so it cannot silently hand one address out twice.
 */
import { LoomError } from '../core/errors.js';
import { type PeerName, parsePeerName } from '../core/ids.js';

export type BootstrapMode =
  | { kind: 'seed'; seeds: PeerName[] }
  | { kind: 'consensus'; clusterSize: number | null }
  | { kind: 'observer' };

export const MAX_CLUSTER_SIZE = 10_000;

export function parseBootstrap(text: unknown): BootstrapMode {
  if (typeof text !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', 'ipalloc-init must be a string');
  if (text === 'observer') return { kind: 'observer' };
  if (text === 'consensus') return { kind: 'consensus', clusterSize: null };
  if (text.startsWith('consensus=')) {
    const n = text.slice('consensus='.length);
    if (!/^\d{1,5}$/.test(n) || Number(n) < 1 || Number(n) > MAX_CLUSTER_SIZE) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `invalid cluster size in "${text.slice(0, 40)}": expected 1..${MAX_CLUSTER_SIZE}`);
    }
    return { kind: 'consensus', clusterSize: Number(n) };
  }
  if (text.startsWith('seed=')) {
    const names = text.slice('seed='.length).split(',');
    if (names.length > 1024) throw new LoomError('ERR_INVALID_ARGUMENT', 'too many seeds');
    const seeds = [...new Set(names.map((n) => parsePeerName(n.trim())))].sort();
    return { kind: 'seed', seeds };
  }
  throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ipalloc-init "${text.slice(0, 40)}": expected seed=NAME,..., consensus[=N] or observer`);
}

export function quorumOf(clusterSize: number): number {
  return Math.floor(clusterSize / 2) + 1;
}

/** Whether `self` should propose the initial split now, given the participants it can reach. */
export function shouldPropose(self: PeerName, participants: readonly PeerName[], quorum: number): boolean {
  if (participants.length < quorum) return false;
  return participants.every((p) => p >= self);
}
