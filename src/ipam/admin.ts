/**
 * The two admin operations that change other peers' space or give ours away: `rmpeer` (take
 * over the space of peers gone for good) and `reset` (this peer is leaving). Both save the ring
 * before they broadcast it and return what moved.
 */
import { LoomError } from '../core/errors.js';
import { type PeerName, parsePeerName } from '../core/ids.js';
import type { AllocationTable } from './allocations.js';
import type { IpamContext } from './context.js';
import { totalSize } from './space.js';

/**
 * Takes over the space of peers that are gone for good (list them all at once).
 *
 * Safe when run on several peers at once: the heir is the smallest name among the peers
 * reachable from here, so runners of one component make identical changes. Runners in two
 * components could pick two heirs, so rmpeer is refused (ERR_CONFLICT) while any other peer
 * that owns space is unreachable: two disjoint components cannot both reach every owner.
 * `force` skips that check; a resulting tie is then resolved by the ring (smaller heir wins)
 * and the loser logs the allocations it lost. Refused while a listed peer is reachable.
 */
export function removePeers(
  context: IpamContext,
  deadNames: string | readonly string[],
  options: { force?: boolean },
  ringChanged: () => void,
): { heir: PeerName; moved: number } {
  const { mesh, ring } = context;
  const dead = [...new Set((typeof deadNames === 'string' ? [deadNames] : deadNames).map((n) => parsePeerName(n)))];
  context.requireRunning();
  if (dead.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'name at least one peer to remove');
  if (dead.includes(context.self)) throw new LoomError('ERR_INVALID_ARGUMENT', 'cannot rmpeer ourselves; use reset');
  const reachable = dead.filter((p) => mesh.isReachable(p));
  if (reachable.length > 0) throw new LoomError('ERR_CONFLICT', `peer ${reachable.join(', ')} is reachable; stop it before removing it`);
  if (ring.isEmpty()) throw new LoomError('ERR_UNAVAILABLE', 'IPAM is not ready: no address ring yet');
  const unreachableOwners = ring.owners().filter((p) => !dead.includes(p) && !mesh.isReachable(p));
  if (unreachableOwners.length > 0 && !options.force) {
    throw new LoomError('ERR_CONFLICT', `other owners of space are unreachable (${unreachableOwners.join(', ')}): remove them too if they are gone, or heal the network first`, {
      detail: { unreachableOwners },
    });
  }
  const heir = mesh.reachablePeers().filter((p) => !dead.includes(p)).sort()[0] ?? context.self;
  let moved = 0;
  for (const d of dead) moved += ring.reassign(d, heir);
  if (moved > 0) {
    context.saveRing();
    context.log.warn({ dead, heir, moved }, 'rmpeer: took over the space of removed peers');
    context.events.emit({ kind: 'ipam-claimed', peer: heir, text: `rmpeer: ${heir} took over ${moved} addresses of ${dead.join(', ')}` });
    context.broadcastRing();
    ringChanged();
    context.requireSaved();
  }
  return { heir, moved };
}

/**
 * Hands all our space to the smallest reachable other peer and forgets our allocations (the
 * peer is leaving). Refused while containers hold addresses unless `force`.
 */
export function resetPeer(context: IpamContext, allocations: AllocationTable, options: { force?: boolean }): { heir: PeerName | null; moved: number } {
  const { ring, self } = context;
  context.requireRunning();
  const live = allocations.liveCount();
  if (live > 0 && !options.force) throw new LoomError('ERR_CONFLICT', `${live} containers still hold addresses; release them or force`);
  const owned = ring.ownedBy(self);
  const heir = context.mesh.reachablePeers().filter((p) => p !== self).sort()[0];
  if (owned.length > 0 && heir === undefined) throw new LoomError('ERR_UNAVAILABLE', 'no reachable peer to hand our space to');
  for (const r of owned) ring.transfer(r.start, r.end, self, heir!);
  allocations.clear();
  ring.setStats(self, 0, 0);
  context.saveRing();
  const moved = totalSize(owned);
  context.log.warn({ heir, moved }, 'reset: handed our space to another peer');
  context.broadcastRing();
  context.requireSaved();
  return { heir: heir ?? null, moved };
}
