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
