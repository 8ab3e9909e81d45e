/**
 * One peer's self-description, as gossiped. Only the peer itself creates new versions of its
 * entry; everyone else only stores and forwards them.
 */
import type { PeerName, PeerUid } from '../core/ids.js';

export interface PeerConnectionEntry {
  /** The neighbour. */
  name: PeerName;
  /** Dialable "ip:port" of the neighbour: remote IP + the neighbour's listen port. */
  address: string;
  /** True when the owner of the entry dialled this connection. */
  outbound: boolean;
  /** Handshake completed. Routes use a connection only when both ends list it. */
  established: boolean;
}

export interface PeerEntry {
  name: PeerName;
  nickname: string;
  /** Changes on every restart of the peer. */
  uid: PeerUid;
  /** Grows with every change the peer makes to its entry. */
  version: number;
  connections: PeerConnectionEntry[];
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareConnection(a: PeerConnectionEntry, b: PeerConnectionEntry): number {
  return compareText(a.name, b.name) || compareText(a.address, b.address) || Number(a.outbound) - Number(b.outbound) || Number(a.established) - Number(b.established);
}

/** Lexicographic over the lists (a proper prefix sorts first). */
function compareConnections(a: readonly PeerConnectionEntry[], b: readonly PeerConnectionEntry[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareConnection(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/**
 * Total order on entries for the same peer: (version, uid), and, only for the impossible-in-
 * practice case of two different contents under one (version, uid), the content itself, so that
 * merge stays commutative even for corrupt or adversarial input.
 */
export function compareEntries(a: PeerEntry, b: PeerEntry): number {
  if (a === b) return 0;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  const byUid = compareText(a.uid, b.uid);
  if (byUid !== 0) return byUid;
  const byNick = compareText(a.nickname, b.nickname);
  if (byNick !== 0) return byNick;
  return compareConnections(a.connections, b.connections);
}

/** The entry a merge keeps: the greater of the two. */
export function newerEntry(a: PeerEntry, b: PeerEntry): PeerEntry {
  return compareEntries(a, b) >= 0 ? a : b;
}

/**
 * Merges `incoming` into `into` (mutating it) and returns the entries that replaced or added
 * something. Commutative, associative and idempotent on the resulting map.
 */
export function mergeEntryMaps(into: Map<PeerName, PeerEntry>, incoming: Iterable<PeerEntry>): PeerEntry[] {
  const changed: PeerEntry[] = [];
  for (const entry of incoming) {
    const current = into.get(entry.name);
    if (current === undefined || compareEntries(entry, current) > 0) {
      into.set(entry.name, entry);
      changed.push(entry);
    }
  }
  return changed;
}
