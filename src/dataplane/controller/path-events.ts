/**
 * `path-changed` events (issue 13): how frames reach each peer, before and after an apply. Pure;
 * the controller calls it once per apply with the paths it computed, so an event means the
 * desired path really changed (fast path <-> relay, another relay hop, unreachable).
 */
import type { EventInput } from '../../core/events.js';
import type { PeerPathStatus } from './desired.js';

/** One phrase per path: "fastdp", "relay", "relay via NAME", "unreachable". */
export function describePath(p: Pick<PeerPathStatus, 'path' | 'via'>, nicknameOf: (peer: string) => string | undefined = () => undefined): string {
  switch (p.path) {
    case 'fastdp':
      return 'fastdp';
    case 'sleeve':
      return p.via === undefined ? 'relay' : `relay via ${nicknameOf(p.via) ?? p.via}`;
    case 'unreachable':
      return 'unreachable';
    default: {
      const never: never = p.path;
      return String(never);
    }
  }
}

/** Which peer each container MAC is on (the gossip's view, ours included). */
export function macOwners(entries: Iterable<{ peer: string; macs: readonly string[] }>): Map<string, string> {
  const owners = new Map<string, string>();
  for (const e of entries) for (const mac of e.macs) owners.set(mac, e.peer);
  return owners;
}

/**
 * `container-moved`: a MAC that was on one peer and is now on another (a container restarted
 * elsewhere with its address and MAC, or a migration). A MAC that appears or disappears is not a
 * move (container-started/stopped are told by the host that runs it).
 */
export function macMoveEvents(prev: ReadonlyMap<string, string>, next: ReadonlyMap<string, string>, nicknameOf: (peer: string) => string | undefined): EventInput[] {
  const out: EventInput[] = [];
  for (const [mac, peer] of next) {
    const was = prev.get(mac);
    if (was === undefined || was === peer) continue;
    out.push({ kind: 'container-moved', peer, container: mac, text: `container MAC ${mac} moved from ${nicknameOf(was) ?? was} to ${nicknameOf(peer) ?? peer}` });
  }
  return out;
}

export function pathEvents(prev: readonly PeerPathStatus[], next: readonly PeerPathStatus[], nicknameOf: (peer: string) => string | undefined): EventInput[] {
  const before = new Map(prev.map((p) => [p.peer as string, p]));
  const out: EventInput[] = [];
  for (const p of next) {
    const now = describePath(p, nicknameOf);
    const old = before.get(p.peer);
    const was = old === undefined ? null : describePath(old, nicknameOf);
    if (was === now) continue;
    const who = nicknameOf(p.peer) ?? p.peer;
    const why = p.reason === undefined ? '' : ` (${p.reason})`;
    out.push({ kind: 'path-changed', peer: p.peer, text: was === null ? `data path to ${who}: ${now}${why}` : `data path to ${who}: ${was} -> ${now}${why}` });
  }
  return out;
}
