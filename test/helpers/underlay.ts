/**
 * Helpers for end-to-end tests of the data plane on a poor underlay (test/e2e/dataplane-underlay
 * and -failover): containers run by `loom run` and driven by `loom exec`, a bounded TCP transfer
 * with an exact byte count, each router's per-peer data path read from `loom report` and
 * `loom status connections`, and ping logs parsed for gaps. Reads the daemon's JSON loosely (as
 * `unknown`), so these tests follow the data plane's status as it grows without breaking on it.
 */
import { readFileSync } from 'node:fs';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { LabHost } from '../../src/lab/index.js';
import type { CommandResult } from '../../src/os/runner.js';
import { pollUntil } from '../../src/demo/poll.js';

export interface Box {
  host: LabHost;
  name: string;
  ip: string;
}

/** PIDs of the containers' first processes: killed at the end of each test (the lab kills the rest). */
const containerPids = new Set<number>();

export function killContainers(): void {
  for (const pid of containerPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  containerPids.clear();
}

async function trackContainers(cli: LoomCli, h: LabHost): Promise<void> {
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  const list = JSON.parse(out.stdout) as { containers?: Array<{ pid?: unknown }> };
  for (const c of list.containers ?? []) if (typeof c.pid === 'number') containerPids.add(c.pid);
}

/** `loom run --name NAME IP/24 -- command` in the box's host (a sleeper by default). */
export async function runContainer(cli: LoomCli, box: Box, command: string[] = ['sleep', '3600']): Promise<Box> {
  await cli.run(box.host, ['run', '--name', box.name, `${box.ip}/24`, '--', ...command]);
  await trackContainers(cli, box.host);
  return box;
}

/** `loom exec NAME -- command`, never throwing on the command's exit code. */
export function execIn(cli: LoomCli, box: Box, command: string[], timeoutMs = 20_000): Promise<CommandResult> {
  return cli.run(box.host, ['exec', box.name, '--', ...command], { allowFailure: true, timeoutMs });
}

export const TRANSFER_PORT = 7000;

/** A TCP sink on TRANSFER_PORT: counts each connection's bytes and answers the count when the sender ends. */
export const TCP_SINK = `
  require('node:net').createServer((s) => { let n = 0; s.on('data', (d) => (n += d.length)); s.on('end', () => s.end(String(n))); s.on('error', () => {}); }).listen(${TRANSFER_PORT});
`;

/**
 * Sends `bytes` to the sink with backpressure, then half-closes and waits for the sink's count.
 * Prints one JSON line {sent, received, ms, error?}; exits 0 only when the sink got every byte.
 * Bounded by `limitMs` (exit 4, with how far it got).
 */
export function tcpSender(ip: string, bytes: number, limitMs: number): string {
  return `
  const t0 = Date.now(); const s = require('node:net').connect(${TRANSFER_PORT}, '${ip}');
  const chunk = Buffer.alloc(65536, 7); let sent = 0; let answer = '';
  const done = (code, error) => { console.log(JSON.stringify({ sent, received: Number(answer) || 0, ms: Date.now() - t0, ...(error ? { error } : {}) })); process.exit(code); };
  const pump = () => { while (sent < ${bytes}) { const n = Math.min(chunk.length, ${bytes} - sent); sent += n; if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return; } s.end(); };
  s.on('connect', pump); s.on('drain', pump);
  s.on('data', (d) => (answer += d)); s.on('end', () => done(Number(answer) === ${bytes} ? 0 : 3));
  s.on('error', (e) => done(2, e.message));
  setTimeout(() => done(4, 'time limit'), ${limitMs});
`;
}

export interface TransferResult {
  ok: boolean;
  sent: number;
  received: number;
  ms: number;
  mbps: number;
  error?: string;
}

/** Runs tcpSender in `from` against the sink in `to`; never throws on a failed transfer. */
export async function transfer(cli: LoomCli, from: Box, to: Box, bytes: number, limitMs: number): Promise<TransferResult> {
  const r = await execIn(cli, from, [process.execPath, '-e', tcpSender(to.ip, bytes, limitMs)], limitMs + 15_000);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let parsed: { sent?: number; received?: number; ms?: number; error?: string } = {};
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    parsed = { error: `no result (exit ${String(r.code)}): ${(r.stdout + r.stderr).trim().slice(0, 200)}` };
  }
  const ms = parsed.ms ?? limitMs;
  const received = parsed.received ?? 0;
  return {
    ok: r.code === 0 && received === bytes,
    sent: parsed.sent ?? 0,
    received,
    ms,
    mbps: (received * 8) / (ms * 1000),
    ...(parsed.error === undefined ? {} : { error: parsed.error }),
  };
}

/** One peer's data path as `loom report` gives it, read loosely. */
export interface PeerPath {
  peer: string;
  path: string;
  encrypted?: boolean;
  mtu?: number;
  via?: string;
  macs?: number;
  reason?: string;
}

/** The data plane's per-peer rows of `loom report` (empty when there is no dataplane section). */
export async function peerPaths(cli: LoomCli, h: LabHost): Promise<PeerPath[]> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dataplane?: { peers?: unknown } };
  const peers = report.dataplane?.peers;
  if (!Array.isArray(peers)) return [];
  return peers.filter((p): p is PeerPath => typeof p === 'object' && p !== null && typeof (p as PeerPath).peer === 'string' && typeof (p as PeerPath).path === 'string');
}

/** True when frames to the peer go by the relay (whatever the path is called), not by kernel VXLAN. */
export function isRelayed(p: PeerPath | undefined): boolean {
  return p !== undefined && p.path !== 'fastdp' && p.path !== 'unreachable';
}

/** Waits until `accept` holds for the rows of every host; returns the rows by host name. */
export async function waitPeerPaths(cli: LoomCli, hosts: readonly LabHost[], what: string, accept: (h: LabHost, rows: PeerPath[]) => boolean, timeoutMs = 45_000): Promise<Map<string, PeerPath[]>> {
  return pollUntil(
    async () => {
      const all = new Map<string, PeerPath[]>();
      for (const h of hosts) {
        const rows = await peerPaths(cli, h);
        if (!accept(h, rows)) return undefined;
        all.set(h.name, rows);
      }
      return all;
    },
    { what, timeoutMs, intervalMs: 300 },
  );
}

/** The line of `loom status connections` that shows the data path to `peer`, or undefined. */
export function dataPathLine(statusText: string, peer: string): string | undefined {
  const lines = statusText.split('\n');
  const start = lines.findIndex((l) => /^data plane\b/.test(l.trim()));
  return (start < 0 ? lines : lines.slice(start + 1)).find((l) => l.trim().startsWith(peer));
}

/** The `pmtu=N` field of a data-path line, or null when there is none. */
export function pmtuOf(line: string | undefined): number | null {
  const m = line === undefined ? null : /\bpmtu=(\d+)\b/.exec(line);
  return m ? Number(m[1]) : null;
}

/** One reply of `ping -D`: the epoch time it arrived and its sequence number. */
export interface PingReply {
  atMs: number;
  seq: number;
}

export interface PingLog {
  replies: PingReply[];
  /** Sequence numbers `ping -O` reported as unanswered when it sent the next one. */
  unanswered: number[];
}

/** A `ping -D -O` log: "[epoch.micros] 64 bytes from ...: icmp_seq=N ..." and "... no answer yet for icmp_seq=N". */
export function parsePingLog(text: string): PingLog {
  const replies: PingReply[] = [];
  for (const m of text.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+)/gm)) replies.push({ atMs: Number(m[1]) * 1000, seq: Number(m[2]) });
  const unanswered = [...text.matchAll(/no answer yet for icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
  return { replies, unanswered };
}

export interface PingOutage {
  /** From the block to the first reply after the outage it caused; 0 when none was lost; null while still out (or too early to say). */
  resumedAfterMs: number | null;
  /** Every probe that never got a reply, over the whole log. */
  lostSeqs: number;
  /** The highest sequence number seen. */
  lastSeq: number;
}

/**
 * The outage a block at `blockedAtMs` caused in a steady ping: the first lost probe sent after
 * the block (send times estimated from the replies before it), and the first reply after it.
 */
export function pingOutage(log: PingLog, blockedAtMs: number, intervalMs: number): PingOutage {
  const sorted = [...log.replies].sort((a, b) => a.seq - b.seq);
  const replied = new Set(sorted.map((r) => r.seq));
  const lost = [...new Set(log.unanswered)].filter((s) => !replied.has(s)).sort((a, b) => a - b);
  const lastSeq = Math.max(0, ...sorted.map((r) => r.seq), ...lost);
  const sentAt = (seq: number): number => {
    const before = sorted.filter((r) => r.seq < seq).at(-1);
    return before === undefined ? Number.NEGATIVE_INFINITY : before.atMs + (seq - before.seq) * intervalMs;
  };
  const firstLost = lost.find((s) => sentAt(s) >= blockedAtMs - intervalMs);
  if (firstLost === undefined) {
    return { resumedAfterMs: sorted.some((r) => r.atMs > blockedAtMs + 1_000) ? 0 : null, lostSeqs: lost.length, lastSeq };
  }
  const resumed = sorted.find((r) => r.seq > firstLost);
  return { resumedAfterMs: resumed === undefined ? null : Math.max(0, Math.round(resumed.atMs - blockedAtMs)), lostSeqs: lost.length, lastSeq };
}

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
