/**
 * The underlay conditions the data-plane benchmark runs under, and what Loom must reach under each
 * (issue 9). Every condition is built by the lab itself (src/lab/netns.ts): its MTU on the underlay
 * bridge and veths, its drops as nft rules on the underlay bridge, applied before the path is set
 * up, so a path's own MTU discovery meets the condition as it would in production. Pure data.
 */
import type { DegradeSpec } from '../../src/lab/index.js';
import type { DataPath, PathTarget } from './types.js';

export type ConditionId = 'clean' | 'nofrag' | 'loss1' | 'mtu1400';

export interface UnderlayCondition {
  id: ConditionId;
  label: string;
  /** The lab's underlay MTU. */
  mtu: number;
  /** Applied to the underlay before the path is built; none on a clean underlay. */
  degrade?: DegradeSpec;
  /** Every default path, or only the encrypted peers and Loom's relay (what the condition is about). */
  paths: 'all' | 'relay-and-peers';
}

export const CONDITIONS: readonly UnderlayCondition[] = [
  { id: 'clean', label: 'clean underlay, MTU 1500', mtu: 1500, paths: 'all' },
  { id: 'nofrag', label: 'IPv4 fragments dropped', mtu: 1500, degrade: { dropFragments: true }, paths: 'relay-and-peers' },
  { id: 'loss1', label: '1 % random loss', mtu: 1500, degrade: { lossPercent: 1 }, paths: 'relay-and-peers' },
  { id: 'mtu1400', label: 'underlay MTU 1400', mtu: 1400, paths: 'relay-and-peers' },
];

export const CONDITION_IDS: readonly ConditionId[] = CONDITIONS.map((c) => c.id);

const RELAY_IDS = ['loom-relay', 'loom-relay-enc'];

/** Whether `path` runs under `condition` by default (opt-in paths run only when named in --only). */
export function runsUnder(path: DataPath, condition: UnderlayCondition, only: readonly string[]): boolean {
  if (only.length > 0 && !only.includes(path.id)) return false;
  if (path.optIn === true && !only.includes(path.id)) return false;
  if (condition.paths === 'all') return true;
  return path.group === 'peer' || RELAY_IDS.includes(path.id);
}

/** The sealed relay's throughput floor against the best encrypted peer, per condition. */
const SEALED_VS_BEST_PEER: Record<ConditionId, number> = { clean: 2.0, nofrag: 1.5, mtu1400: 1.5, loss1: 1.0 };

/**
 * Loom's targets for one path under one condition: none for the reference rows. Every Loom row
 * must put no IPv4 fragment on the underlay; the relay's RTT stays within 2x the best peer's.
 */
export function targetFor(pathId: string, condition: ConditionId): PathTarget | undefined {
  switch (pathId) {
    case 'loom-fast':
      return { minMbpsVsVxlan: 0.95, maxRttVsVxlan: 1.2, maxFragments: 0 };
    case 'loom-relay-enc':
      return { minMbpsVsBestPeer: SEALED_VS_BEST_PEER[condition], maxRttVsBestPeer: 2, maxFragments: 0 };
    case 'loom-relay':
      return { minMbpsVsBestPeer: 1.0, maxRttVsBestPeer: 2, maxFragments: 0 };
    default:
      return undefined;
  }
}

/**
 * A peer's container MTU under a condition: its clean-underlay MTU lowered by what the underlay
 * lost (1400 -> 1300 for tinc, 1420 -> 1320 for nebula and wireguard-go at an underlay MTU of 1400).
 */
export function peerMtu(cleanMtu: number, underlayMtu: number): number {
  return cleanMtu - Math.max(0, 1500 - underlayMtu);
}
