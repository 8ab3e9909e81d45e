/**
 * Upstream resolvers from a resolv.conf file. Re-read only when the file's identity (mtime, size,
 * inode) changes; a missing or unreadable file means "no upstreams" (queries then get SERVFAIL).
 */
import { readFile as readFileCallback, stat as statCallback } from 'node:fs';
import { isIP } from 'node:net';
import { promisify } from 'node:util';

// node:fs's callback forms, not node:fs/promises: that module is the router's only user of it,
// and it loads ten more builtins (fs/promises, its FileHandle, readline for readLines, watchers)
// that stay in the router's memory (docs/BENCHMARKS.md, issue 14 "Memory").
const stat = promisify(statCallback);
const readFile = promisify(readFileCallback);

/** At most this many nameservers are used (glibc uses 3; we allow a few more). */
export const MAX_NAMESERVERS = 8;

/** The `nameserver` addresses of a resolv.conf text, in order, without duplicates. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/[#;].*$/, '').trim();
    const [keyword, value] = line.split(/\s+/);
    if (keyword !== 'nameserver' || value === undefined) continue;
    const address = value.replace(/%.*$/, '');
    if (isIP(address) === 0 || out.includes(address)) continue;
    out.push(address);
    if (out.length >= MAX_NAMESERVERS) break;
  }
  return out;
}

export class ResolvConfWatcher {
  private identity = '';
  private servers: string[] = [];

  constructor(private readonly path: string) {}

  /** Current nameservers; re-parses the file when it changed since the last call. */
  async nameservers(): Promise<string[]> {
    let identity: string;
    try {
      const s = await stat(this.path);
      identity = `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      this.identity = '';
      this.servers = [];
      return this.servers;
    }
    if (identity !== this.identity) {
      try {
        this.servers = parseResolvConf(await readFile(this.path, 'utf8'));
        this.identity = identity;
      } catch {
        this.servers = [];
        this.identity = '';
      }
    }
    return this.servers;
  }
}
