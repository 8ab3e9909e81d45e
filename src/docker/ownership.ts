/**
 * Whose Docker is this? Several routers may share one machine (tests), each in its own network
 * namespace, all seeing the same socket files. Only the router in the Docker daemon's network
 * namespace may serve it: Docker looks the interface a Join names up in its own namespace.
 *
 * /proc/self/net/unix lists the unix sockets of the reader's network namespace only, so a
 * listening socket bound at the API path in that list is a Docker daemon in our namespace. A
 * path that exists but is not listed is someone else's (answer: 'other'); no file: 'absent'.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';

export type SocketOwner = 'ours' | 'other' | 'absent';

const ACCEPTCON = 0x10000;

/** Paths of listening unix sockets in a /proc/net/unix text (exported for tests). */
export function listeningPaths(procNetUnix: string): Set<string> {
  const out = new Set<string>();
  for (const line of procNetUnix.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode [Path]
    if (f.length < 8) continue;
    const flags = parseInt(f[3] ?? '0', 16);
    if ((flags & ACCEPTCON) !== 0 && f[7] !== undefined) out.add(f[7]);
  }
  return out;
}

export function socketOwner(path: string, readProc: () => string = () => readFileSync('/proc/self/net/unix', 'utf8')): SocketOwner {
  if (!existsSync(path)) return 'absent';
  const listening = listeningPaths(readProc());
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // gone meanwhile
  }
  for (const p of listening) {
    if (p === path || p === real) return 'ours';
    try {
      if (realpathSync(p) === real) return 'ours';
    } catch {
      // a stale path in the list
    }
  }
  return 'other';
}
