/**
 * Points a Docker container on a Loom network at the host's Loom DNS: Docker's remote network
 * driver protocol has no DNS field, so the router rewrites the file at the container's
 * `ResolvConfPath` (Engine API inspect), which Docker bind-mounts as the container's
 * /etc/resolv.conf.
 *
 * Contracts:
 * - `resolvConfDecision` is pure: nothing to do when the user gave `--dns` or `--dns-search`
 *   (HostConfig.Dns / DnsSearch non-empty), when Docker gave no path, or when the host's DNS is
 *   not serving yet (no resolver); otherwise the content `nameserver <host address>`,
 *   `search <domain>`, `options ndots:1`. Loom's DNS forwards other names upstream.
 * - `writeInPlace` keeps the inode: a bind mount pins the inode it was made from, so a
 *   write-then-rename would leave the container reading the old file. It writes the whole
 *   content at offset 0 in one write, then truncates to its length (the file is never empty; a
 *   reader racing the truncate can see a tail of the old content), and does nothing when the
 *   file already holds it (idempotent across resyncs).
 */
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

/** The host's Loom DNS for containers (src/daemon/host-address.ts `resolver()`). */
export interface LoomResolver {
  nameserver: string;
  domain: string;
}

export interface ResolvConfTarget {
  resolvConfPath?: string;
  dns?: string[];
  dnsSearch?: string[];
}

export type ResolvConfDecision = { action: 'write'; path: string; content: string } | { action: 'leave'; why: string };

export function resolvConfContent(r: LoomResolver): string {
  return `# written by Loom: the host's Loom DNS (other names are forwarded upstream)\nnameserver ${r.nameserver}\nsearch ${r.domain}\noptions ndots:1\n`;
}

export function resolvConfDecision(c: ResolvConfTarget, resolver: LoomResolver | null): ResolvConfDecision {
  if ((c.dns?.length ?? 0) > 0 || (c.dnsSearch?.length ?? 0) > 0) return { action: 'leave', why: 'the container was given --dns/--dns-search' };
  if (!c.resolvConfPath) return { action: 'leave', why: 'Docker gave no ResolvConfPath' };
  if (!resolver) return { action: 'leave', why: "the host's Loom DNS is not serving yet" };
  return { action: 'write', path: c.resolvConfPath, content: resolvConfContent(resolver) };
}

/** Replaces the file's content keeping its inode; false when it already held `content`. */
export function writeInPlace(path: string, content: string): boolean {
  if (readFileSync(path, 'utf8') === content) return false;
  const data = Buffer.from(content, 'utf8');
  const fd = openSync(path, 'r+');
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
    ftruncateSync(fd, data.length);
  } finally {
    closeSync(fd);
  }
  return true;
}
