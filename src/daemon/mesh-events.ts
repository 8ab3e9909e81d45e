/**
 * Events of the mesh (issue 13), found by comparing two router status snapshots: a connection to
 * a neighbour established or ended (with the reason the router recorded), a peer that joined or
 * left the mesh (reachable through anyone). Pure: the events subsystem calls it on each mesh
 * change (router.mesh.onChange), so nothing here runs per packet or on a timer.
 */
import type { EventInput } from '../core/events.js';
import type { RouterStatus } from '../mesh/types.js';

export interface MeshFacts {
  /** Established connections by peer name. */
  readonly connections: ReadonlyMap<string, { nickname: string; address: string; encrypted: boolean }>;
  /** Every peer of the topology but us, name -> nickname. */
  readonly peers: ReadonlyMap<string, string>;
}

export const NO_MESH_FACTS: MeshFacts = { connections: new Map(), peers: new Map() };

export function meshFacts(status: RouterStatus): MeshFacts {
  const connections = new Map<string, { nickname: string; address: string; encrypted: boolean }>();
  for (const c of status.connections) {
    if (c.state !== 'established' || c.peer === undefined) continue;
    connections.set(c.peer.name, { nickname: c.peer.nickname, address: c.address, encrypted: c.encrypted ?? false });
  }
  const peers = new Map<string, string>();
  for (const p of status.peers) if (p.name !== status.name) peers.set(p.name, p.nickname);
  return { connections, peers };
}

/** Why a connection to `peer` ended, as the router's status says now (its entry for that address, retrying or failed). */
function endReason(status: RouterStatus, address: string): string {
  const entry = status.connections.find((c) => c.address === address && c.state !== 'established');
  if (!entry) return 'closed';
  const reason = entry.info.trim();
  return reason === '' ? entry.state : reason.slice(0, 200);
}

const label = (name: string, nickname: string | undefined): string => (nickname === undefined || nickname === '' ? name : `${nickname} (${name})`);

export function meshEvents(prev: MeshFacts, next: MeshFacts, status: RouterStatus): EventInput[] {
  const out: EventInput[] = [];
  for (const [peer, p] of next.peers) if (!prev.peers.has(peer)) out.push({ kind: 'peer-joined', peer, text: `peer ${label(peer, p)} joined the mesh` });
  for (const [peer, c] of next.connections) {
    if (prev.connections.has(peer)) continue;
    out.push({ kind: 'connection-up', peer, text: `connection to ${label(peer, c.nickname)} at ${c.address} established${c.encrypted ? ' (encrypted)' : ''}` });
  }
  for (const [peer, c] of prev.connections) {
    if (next.connections.has(peer)) continue;
    out.push({ kind: 'connection-down', peer, text: `connection to ${label(peer, c.nickname)} at ${c.address} ended: ${endReason(status, c.address)}` });
  }
  for (const [peer, nickname] of prev.peers) if (!next.peers.has(peer)) out.push({ kind: 'peer-left', peer, text: `peer ${label(peer, nickname)} left the mesh` });
  return out;
}
