import type { IpamStatus } from '../../ipam/daemon-types.js';
import { peerLabel, table } from '../format-status.js';

/**
 * `loom status ipam`, as `weave status ipam`: a header (range, bootstrap mode and state, so an
 * IPAM waiting for consensus says so instead of hanging silently), then one line per owner of
 * space: size, share of the range, addresses in use (as last reported), and "unreachable!".
 * Peers refused for another range, and rmpeer candidates, follow.
 */
export function formatIpam(s: IpamStatus): string {
  const head = [
    `range ${s.range} (${s.rangeSize} addresses)${s.defaultSubnet === null ? '' : `, default subnet ${s.defaultSubnet}`}`,
    `bootstrap ${s.mode}: ${s.state}`,
    `this peer: ${s.allocations} in use, ${s.releasedInGrace} released in grace, ${s.pendingAllocations} pending`,
  ];
  const rows = s.peers.map((p) => [
    p.nickname === undefined ? p.name : peerLabel(p.name, p.nickname),
    `${p.owned} IPs`,
    `(${share(p.owned, s.rangeSize)} of total)`,
    p.reachable ? (p.inUse === null ? '' : `(${p.inUse} active)`) : '- unreachable!',
  ]);
  const tail: string[] = [];
  for (const m of s.rangeMismatches) {
    tail.push(`refused: ${m.peers.join(', ') || 'a peer'} use range ${m.range}, not ${s.range} (ERR_RANGE_MISMATCH, ${m.count} updates)`);
  }
  if (s.unreachableOwners.length > 0) tail.push(`owners not reachable: ${s.unreachableOwners.join(', ')} (if gone for good: loom rmpeer NAME...)`);
  return head.join('\n') + '\n' + (rows.length > 0 ? table(rows) : '') + tail.map((t) => t + '\n').join('');
}

function share(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : '0.0%';
}
