/**
 * Chaos scenario "soak" (issue 12, Faults): container churn across three hosts for `churnMs`
 * (start, stop, move to another host, rename in DNS), one operation at a time at a bounded rate,
 * with long-lived containers pinging each other the whole time and `dig` queries against each
 * host's DNS after every operation. A fourth lab host runs the routers' upstream DNS (nothing
 * leaves the lab).
 *
 * Counted on every host before the churn (after a quiet period) and after it (every churned
 * container removed, then polled until the counts return, at most `settleMs`):
 *   veth links in the host, container network namespaces still held by a process, addresses in
 *   use in IPAM (`allocations`), live DNS records, Loom's FDB entries (vx-loom's own table and
 *   the bridge's static ones), the router's open fds and sockets (/proc/PID/fd).
 * Invariants: each count back to its baseline; no long-lived pair's pings interrupted for longer
 * than `maxPingGapMs`; every dig answered; every churned container reached a long-lived one
 * within 10 s of its start; after the settle, every host resolves the long-lived names and none
 * of the churned ones; router RSS growth (start -> end) at most `maxRssGrowthMb` when that limit
 * is given (the long form; the short form prints it only).
 *
 * RSS, like with like: "start" is read after a warm-up churn (`warmupMs`, the same operations:
 * the code the churn runs gets compiled, rings and caches fill; its containers removed again) and
 * "end" after the churn, the removal of every churned container and the settle; each only once
 * every router reports itself *settled* (`/report` memory.quietGc: quiet for its quiet time with
 * nothing more to give back, after its quiet GC if the heap had grown, src/daemon/quiet-gc.ts),
 * plus 2 s for V8 to unmap what it freed. So both figures are a quiet router after churn, and
 * what a leak keeps still shows (`rssGrowthProblems`; `leak` injects one to prove it). Sampled
 * every 2 s from /proc/PID/status for the peak, over the whole run.
 *
 * Bounded: operations are sequential with a pause between them, container count per host capped,
 * pings stop by themselves (`-w`), every wait has a timeout; the caller destroys the lab.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { pollUntil } from '../../src/demo/poll.js';
import { processStartTime, type Lab, type LabHost } from '../../src/lab/index.js';
import { seededRandom } from '../helpers/random.js';
import { execIn, parsePingLog, readText, type Box } from '../helpers/underlay.js';
import { useUpstream } from '../helpers/upstream-dns.js';
import { fdCounts } from '../helpers/proc.js';

export interface SoakOptions {
  churnMs: number;
  /** The churn goes on past churnMs until this many operations ran (a slow machine), at most until maxChurnMs. */
  minOps?: number;
  maxChurnMs?: number;
  /** Quiet time before the leak counts' baseline. */
  quietMs: number;
  /** Churn before the RSS start figure (warm-up), at least `warmupMinOps` operations; its containers are removed before the reading. */
  warmupMs: number;
  warmupMinOps?: number;
  /** The routers' quiet time in seconds (LOOM_QUIET_GC); default theirs (20 s). */
  quietGcSeconds?: number;
  /** How long each RSS reading waits for every router to be settled. */
  settledTimeoutMs: number;
  /** A deliberate leak in one router (test/chaos/leak-preload.ts): KiB kept per mutating API request. */
  leak?: { host: number; kbPerRequest: number };
  /** How long counts may take to return to the baseline after the churn. */
  settleMs: number;
  /** Pause between two operations (the rate bound). */
  pauseMs: number;
  maxChurnPerHost: number;
  maxPingGapMs: number;
  /** Checked when given; always printed. */
  maxRssGrowthMb?: number;
  /** Goal only (issue 12 and 14): printed, never an invariant here. */
  rssGoalMb: number;
  seed: number;
  log: (line: string) => void;
}

export interface HostCounts {
  veths: number;
  /** Of the container namespaces seen during the run, those a process still holds. */
  containerNetns: number;
  ipamInUse: number;
  ipamInGrace: number;
  dnsLive: number;
  dnsTombstones: number;
  fdbVxlan: number;
  fdbBridgeStatic: number;
  routerFds: number;
  routerSockets: number;
}

/** Counts that must come back to their baseline (the others are printed). */
export const LEAK_COUNTS = ['veths', 'containerNetns', 'ipamInUse', 'dnsLive', 'fdbVxlan', 'fdbBridgeStatic', 'routerFds', 'routerSockets'] as const;

export interface RssFigures {
  startMb: number;
  peakMb: number;
  endMb: number;
  /** V8's used heap (nodejs_heap_size_used_bytes of the router's metrics), garbage not yet collected included. */
  heapStartMb: number;
  heapEndMb: number;
  /** The rest of the breakdown at start and end: RSS's anonymous part, V8's committed heap, external (Buffers' backing stores). */
  anonStartMb: number;
  anonEndMb: number;
  heapTotalStartMb: number;
  heapTotalEndMb: number;
  externalStartMb: number;
  externalEndMb: number;
  /** The router's quiet GC at each reading (null: it reported none). */
  quietGcStart: QuietGcReading | null;
  quietGcEnd: QuietGcReading | null;
}

/** What the soak reads of a router's `/report` memory.quietGc (src/daemon/quiet-gc.ts, QuietGcStatus). */
export interface QuietGcReading {
  settled: boolean;
  quietForMs: number;
  collections: number;
  lastPauseMs: number | null;
  lastGcMs?: number | null;
  lastTrimMs?: number | null;
  maxPauseMs: number;
  totalPauseMs: number;
}

/**
 * The RSS invariant: each router's growth from the start to the end figure at most `limitMb`.
 * A reading taken while the router was not settled is a problem of its own (not like with like).
 */
export function rssGrowthProblems(rss: Readonly<Record<string, RssFigures>>, limitMb: number): string[] {
  const problems: string[] = [];
  for (const [name, f] of Object.entries(rss)) {
    const growth = f.endMb - f.startMb;
    if (!(growth <= limitMb)) problems.push(`${name}: router RSS grew ${growth.toFixed(1)} MB (${f.startMb} -> ${f.endMb}; limit ${limitMb} MB)`);
    for (const [when, q] of [['start', f.quietGcStart], ['end', f.quietGcEnd]] as const) {
      if (q === null || !q.settled) problems.push(`${name}: RSS ${when} figure read on a router that was not settled (${q === null ? 'no quiet GC status' : `quiet ${q.quietForMs} ms`})`);
    }
  }
  return problems;
}

async function quietGcReading(lab: Lab, h: LabHost): Promise<QuietGcReading | null> {
  const out = await lab.exec(h, process.execPath, ['-e', "fetch('http://127.0.0.1:6784/report').then(r=>r.json()).then(j=>process.stdout.write(JSON.stringify(j.memory?.quietGc ?? null)))"], { timeoutMs: 10_000 });
  return JSON.parse(out.stdout) as QuietGcReading | null;
}

interface HeapFigures {
  usedMb: number;
  totalMb: number;
  externalMb: number;
}

async function heapMb(lab: Lab, h: LabHost): Promise<HeapFigures> {
  const out = await lab.exec(h, process.execPath, ['-e', "fetch('http://127.0.0.1:6784/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"], { timeoutMs: 10_000 });
  const read = (name: string): number => {
    const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)$`, 'm').exec(out.stdout);
    return m ? Math.round(Number(m[1]) / 104857.6) / 10 : NaN;
  };
  return { usedMb: read('nodejs_heap_size_used_bytes'), totalMb: read('nodejs_heap_size_total_bytes'), externalMb: read('nodejs_external_memory_bytes') };
}

export interface SoakResult {
  ops: Record<string, number>;
  before: Record<string, HostCounts>;
  after: Record<string, HostCounts>;
  rss: Record<string, RssFigures>;
  maxPingGapMs: number;
  digs: { answered: number; failed: number };
  reach: { ok: number; failed: number };
  problems: string[];
}

const PING_INTERVAL_MS = 200;
/**
 * A container that exits at once on SIGTERM (a bare `sleep` as PID 1 of its namespace ignores it,
 * and every `loom rm` would wait out the runtime's 2 s grace before SIGKILL).
 */
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];

/** First PIDs of the containers this scenario started (the lab's sweep does not look in their namespaces). */
const containerPids = new Map<number, number | null>();

/** SIGKILLs what is left of the containers the soak started (for exit handlers too); a reused PID is never hit. */
export function killSoakContainers(): void {
  for (const [pid, startTime] of containerPids) {
    if (startTime === null || processStartTime(pid) !== startTime) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  containerPids.clear();
}
const DOMAIN = 'loom.local';


export function rssMb(pid: number, field: 'VmRSS' | 'RssAnon' = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}


/** Net namespace inodes held by any process now ("net:[4026...]"). */
function liveNetns(): Set<string> {
  const out = new Set<string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      out.add(readlinkSync(`/proc/${entry}/ns/net`));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

interface ApiCounts {
  ipam: { allocations: number; releasedInGrace: number };
  dns: { counts: { live: number; tombstones: number } };
}

const API_COUNTS = `Promise.all(['/ipam/status','/dns/status'].map((p)=>fetch('http://127.0.0.1:6784'+p).then((r)=>r.json()))).then(([ipam,dns])=>process.stdout.write(JSON.stringify({ipam,dns})))`;

async function countHost(lab: Lab, cli: LoomCli, h: LabHost, netnsSeen: ReadonlySet<string>): Promise<HostCounts> {
  const api = JSON.parse((await lab.exec(h, process.execPath, ['-e', API_COUNTS], { timeoutMs: 15_000 })).stdout) as ApiCounts;
  const veths = (await lab.exec(h, 'ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout.split('\n').filter((l) => l.trim() !== '').length;
  const fdbLines = async (args: string[]): Promise<string[]> => (await lab.exec(h, 'bridge', ['fdb', 'show', ...args], { allowFailure: true })).stdout.split('\n').filter((l) => l.trim() !== '');
  const fdbVxlan = (await fdbLines(['dev', 'vx-loom'])).filter((l) => / self\b/.test(l)).length;
  const fdbBridgeStatic = (await fdbLines(['br', 'loom'])).filter((l) => / master loom\b/.test(l) && / static\b/.test(l)).length;
  const live = liveNetns();
  const pid = cli.pid(h)!;
  const { fds, sockets } = fdCounts(pid);
  return {
    veths,
    containerNetns: [...netnsSeen].filter((ns) => live.has(ns)).length,
    ipamInUse: api.ipam.allocations,
    ipamInGrace: api.ipam.releasedInGrace,
    dnsLive: api.dns.counts.live,
    dnsTombstones: api.dns.counts.tombstones,
    fdbVxlan,
    fdbBridgeStatic,
    routerFds: fds,
    routerSockets: sockets,
  };
}

interface DigAnswer {
  status: string;
  addresses: string[];
}

async function dig(lab: Lab, h: LabHost, server: string, name: string): Promise<DigAnswer> {
  const r = await lab.exec(h, 'dig', ['+time=2', '+tries=1', '+noall', '+comments', '+answer', `@${server}`, name], { allowFailure: true, timeoutMs: 10_000 });
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? 'no reply';
  const addresses = r.stdout
    .split('\n')
    .filter((l) => l.length > 0 && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).at(-1) ?? '');
  return { status, addresses };
}

/** The longest time between two replies of one ping log within [fromMs, toMs]. */
function longestGap(text: string, fromMs: number, toMs: number): number {
  const at = parsePingLog(text).replies.map((r) => r.atMs).filter((t) => t >= fromMs && t <= toMs).sort((a, b) => a - b);
  if (at.length === 0) return toMs - fromMs;
  let gap = Math.max(at[0]! - fromMs, toMs - at.at(-1)!);
  for (let i = 1; i < at.length; i++) gap = Math.max(gap, at[i]! - at[i - 1]!);
  return Math.round(gap);
}

interface Churned {
  name: string;
  host: LabHost;
  id: string;
  ip: string;
  /** The name DNS has for it now (changed by "rename"). */
  dnsName: string;
}

export async function soak(lab: Lab, cli: LoomCli, options: SoakOptions): Promise<SoakResult> {
  if (lab.hosts.length < 4) throw new Error('soak needs four lab hosts: three routers and their upstream DNS');
  const routers = lab.hosts.slice(0, 3);
  const problems: string[] = [];
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  await useUpstream(lab, lab.hosts[3]!, routers);
  for (const h of routers) {
    const env: Record<string, string> = {};
    if (options.quietGcSeconds !== undefined) env['LOOM_QUIET_GC'] = String(options.quietGcSeconds);
    if (options.leak?.host === h.index) {
      env['NODE_OPTIONS'] = `${process.env['NODE_OPTIONS'] ?? ''} --import=${fileURLToPath(new URL('./leak-preload.js', import.meta.url))}`.trim();
      env['LOOM_TEST_LEAK_KB'] = String(options.leak.kbPerRequest);
      options.log(`a deliberate leak in ${h.name}'s router: ${options.leak.kbPerRequest} KiB kept per mutating API request`);
    }
    await cli.launch(h, { peers: routers.filter((o) => o !== h).map((o) => o.address), env });
  }
  const dnsServer = new Map<LabHost, string>();
  for (const h of routers) {
    const cidr = await pollUntil(
      async () => {
        const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: { cidr?: string | null; dns?: unknown } };
        const s = report['host-address'];
        return s?.dns && s.cidr ? s.cidr : undefined;
      },
      { what: `${h.name}'s host address and DNS`, timeoutMs: 45_000, intervalMs: 300 },
    );
    dnsServer.set(h, cidr.split('/')[0]!);
  }

  const netnsSeen = new Set<string>();
  const netnsOf = (pid: number): void => {
    containerPids.set(pid, processStartTime(pid));
    try {
      netnsSeen.add(readlinkSync(`/proc/${pid}/ns/net`));
    } catch {
      // gone already
    }
  };
  /** `loom run` on `h`; the container's id, address and PID from the router's list. */
  async function start(h: LabHost, name: string): Promise<{ id: string; ip: string; pid: number }> {
    const id = (await cli.run(h, ['run', '--name', name, 'net:default', '--', ...SLEEPER], { timeoutMs: 30_000 })).stdout.trim();
    const row = (await cli.containers(h)).find((c) => c.id === id);
    if (row === undefined || row.cidrs[0] === undefined) throw new Error(`${name} on ${h.name}: not listed with an address after loom run`);
    netnsOf(row.pid);
    return { id, ip: row.cidrs[0].split('/')[0]!, pid: row.pid };
  }

  // Long-lived containers, one per router host, pinging each other for the whole run.
  const keep: Box[] = [];
  const keepPid = new Map<string, number>();
  for (const h of routers) {
    const name = `keep${h.index}`;
    const c = await start(h, name);
    keep.push({ host: h, name, ip: c.ip });
    keepPid.set(name, c.pid);
  }
  await Promise.all(
    keep.flatMap((from) =>
      keep
        .filter((to) => to !== from)
        .map((to) => pollUntil(async () => ((await execIn(cli, from, ['ping', '-c', '1', '-W', '1', to.ip])).code === 0 ? true : undefined), { what: `${from.name} -> ${to.name} before the churn`, timeoutMs: 45_000, intervalMs: 300 })),
    ),
  );
  const pingSeconds = Math.ceil((options.warmupMs + options.churnMs + options.settleMs + options.quietMs + 2 * options.settledTimeoutMs + 180_000) / 1000);
  const pingLogs: Array<{ pair: string; log: string }> = [];
  for (const from of keep) {
    for (const to of keep) {
      if (from === to) continue;
      const log = join(lab.workDir, `soak-ping-${from.name}-${to.name}.txt`);
      lab.start(from.host, 'nsenter', ['--target', String(keepPid.get(from.name)!), '--net', 'ping', '-D', '-O', '-i', String(PING_INTERVAL_MS / 1000), '-W', '1', '-w', String(pingSeconds), to.ip], { logFile: log });
      pingLogs.push({ pair: `${from.name}->${to.name}`, log });
    }
  }

  // RSS sampled over the whole run.
  const pids = new Map(routers.map((h) => [h.name, cli.pid(h)!]));
  const peak = new Map<string, number>();
  const sample = (): void => {
    for (const [name, pid] of pids) {
      const mb = rssMb(pid);
      if (mb > (peak.get(name) ?? 0)) peak.set(name, mb);
    }
  };
  const sampler = setInterval(sample, 2_000);
  try {
    await new Promise((r) => setTimeout(r, options.quietMs));
    const before: Record<string, HostCounts> = {};
    for (const h of routers) before[h.name] = await countHost(lab, cli, h, netnsSeen);
    options.log(`baseline: ${JSON.stringify(before)}`);

    const digs = { answered: 0, failed: 0 };
    const reach = { ok: 0, failed: 0 };
    const live: Churned[] = [];
    const gone = new Set<string>();
    let serial = 0;
    let started = 0;
    const remove = async (c: Churned): Promise<void> => {
      await cli.run(c.host, ['rm', c.id], { timeoutMs: 30_000 });
      live.splice(live.indexOf(c), 1);
      gone.add(c.dnsName);
    };
    const startOn = async (h: LabHost, name: string): Promise<Churned> => {
      const c = await start(h, name);
      started++;
      const churned: Churned = { name, host: h, id: c.id, ip: c.ip, dnsName: name };
      live.push(churned);
      gone.delete(name);
      // Traffic from the new container: it reaches a long-lived one within 10 s of its start.
      const target = pick(keep);
      // nsenter, not `loom exec`: no CLI start-up per try.
      const pingOnce = async (): Promise<true | undefined> =>
        (await lab.exec(h, 'nsenter', ['--target', String(c.pid), '--net', 'ping', '-c', '1', '-W', '1', target.ip], { allowFailure: true, timeoutMs: 5_000 })).code === 0 ? true : undefined;
      const reached = await pollUntil(pingOnce, { what: `${name} -> ${target.name}`, timeoutMs: 10_000, intervalMs: 200 }).catch(() => false);
      if (reached) reach.ok++;
      else {
        reach.failed++;
        problems.push(`${name} on ${h.name} did not reach ${target.name} within 10 s of its start`);
      }
      return churned;
    };
    /** Operations, one at a time, until `forMs` is over and at least `minOps` ran (at most until `capMs`); then every churned container removed. */
    const churn = async (forMs: number, minOps: number, capMs: number): Promise<{ ops: Record<string, number>; opMs: Record<string, number>; startedAt: number; stoppedAt: number }> => {
      const ops: Record<string, number> = { start: 0, stop: 0, move: 0, rename: 0 };
      const opMs: Record<string, number> = { start: 0, stop: 0, move: 0, rename: 0, dig: 0 };
      const startedAt = Date.now();
      const endAt = startedAt + forMs;
      const cap = startedAt + Math.max(forMs, capMs);
      const done = (): number => Object.values(ops).reduce((a, b) => a + b, 0);
      while (Date.now() < endAt || (done() < minOps && Date.now() < cap)) {
        const t0 = Date.now();
        const perHost = (h: LabHost): number => live.filter((c) => c.host === h).length;
        const roomy = routers.filter((h) => perHost(h) < options.maxChurnPerHost);
        const r = random();
        if (live.length === 0 || (r < 0.4 && roomy.length > 0)) {
          if (roomy.length === 0) break;
          await startOn(pick(roomy), `s${++serial}`);
          ops['start']!++;
          opMs['start']! += Date.now() - t0;
        } else if (r < 0.65) {
          await remove(pick(live));
          ops['stop']!++;
          opMs['stop']! += Date.now() - t0;
        } else if (r < 0.85) {
          // Move: the same name stops here and starts on another host (a new address from IPAM).
          const c = pick(live);
          const to = pick(routers.filter((h) => h !== c.host && perHost(h) < options.maxChurnPerHost));
          if (to === undefined) continue;
          await remove(c);
          await startOn(to, c.name);
          ops['move']!++;
          opMs['move']! += Date.now() - t0;
        } else {
          // Rename: the container's DNS record gets another name.
          const c = pick(live);
          const renamed = `r${++serial}`;
          await cli.run(c.host, ['dns-remove', c.ip, c.id, '-h', c.dnsName], { timeoutMs: 30_000 });
          await cli.run(c.host, ['dns-add', c.ip, c.id, '-h', renamed], { timeoutMs: 30_000 });
          gone.add(c.dnsName);
          c.dnsName = renamed;
          ops['rename']!++;
          opMs['rename']! += Date.now() - t0;
        }
        // A query against a random host's DNS after every operation: it must answer (any status).
        const t1 = Date.now();
        const h = pick(routers);
        const name = live.length > 0 && random() < 0.7 ? pick(live).dnsName : pick(keep).name;
        const answer = await dig(lab, h, dnsServer.get(h)!, `${name}.${DOMAIN}`);
        if (answer.status === 'NOERROR' || answer.status === 'NXDOMAIN') digs.answered++;
        else {
          digs.failed++;
          problems.push(`dig ${name} on ${h.name}: ${answer.status}`);
        }
        opMs['dig']! += Date.now() - t1;
        await new Promise((res) => setTimeout(res, options.pauseMs));
      }
      const stoppedAt = Date.now();
      while (live.length > 0) await remove(live[0]!);
      return { ops, opMs, startedAt, stoppedAt };
    };
    /** RSS and heap of every router once each is settled (bounded wait; a reading not settled is a problem: rssGrowthProblems). */
    const readSettled = async (when: string): Promise<Map<string, { rssMb: number; anonMb: number; heap: HeapFigures; quietGc: QuietGcReading | null }>> => {
      const t0 = Date.now();
      const settled = await pollUntil(
        async () => {
          const readings = await Promise.all(routers.map((h) => quietGcReading(lab, h)));
          return readings.every((q) => q?.settled === true) ? true : undefined;
        },
        // Every 2 s: the polls are requests the routers serve, and must not make them busy.
        { what: `every router settled (${when})`, timeoutMs: options.settledTimeoutMs, intervalMs: 2_000 },
      ).catch(() => false);
      // V8 unmaps the pages a collection freed from a background thread, within about a second.
      await new Promise((r) => setTimeout(r, 2_000));
      sample();
      const out = new Map<string, { rssMb: number; anonMb: number; heap: HeapFigures; quietGc: QuietGcReading | null }>();
      const read = await Promise.all(routers.map(async (h) => ({ h, rss: rssMb(pids.get(h.name)!), anon: rssMb(pids.get(h.name)!, 'RssAnon'), heap: await heapMb(lab, h), quietGc: await quietGcReading(lab, h) })));
      for (const r of read) out.set(r.h.name, { rssMb: r.rss, anonMb: r.anon, heap: r.heap, quietGc: r.quietGc });
      options.log(`${when} figures ${settled ? `read ${Math.round((Date.now() - t0) / 1000)} s after asking, every router settled` : `read after ${options.settledTimeoutMs / 1000} s without every router settled`}: ${[...out].map(([n, f]) => `${n} RSS ${f.rssMb} MB, quiet GC ${JSON.stringify(f.quietGc)}`).join('; ')}`);
      return out;
    };

    // Warm-up: the same churn, before the RSS start figure.
    const warm = await churn(options.warmupMs, options.warmupMinOps ?? 0, Math.max(options.warmupMs, 3 * options.warmupMs));
    options.log(`warm-up: ${Math.round((warm.stoppedAt - warm.startedAt) / 1000)} s, ops ${JSON.stringify(warm.ops)}`);
    const startFigures = await readSettled('start');

    // The churn.
    const main = await churn(options.churnMs, options.minOps ?? 0, options.maxChurnMs ?? 0);
    const { ops, opMs } = main;
    const churnStart = main.startedAt;
    const churnStop = main.stoppedAt;
    options.log(`churn: ${Math.round((churnStop - churnStart) / 1000)} s, ops ${JSON.stringify(ops)}, ${started} containers started (warm-up included); digs ${digs.answered} answered, ${digs.failed} failed; new containers reached a long-lived one: ${reach.ok} of ${reach.ok + reach.failed}; mean ms per op: ${Object.entries(opMs).map(([k, ms]) => `${k} ${Math.round(ms / Math.max(1, k === 'dig' ? Object.values(ops).reduce((a, b) => a + b, 0) : ops[k]!))}`).join(', ')}`);

    // Settle: every count back to its baseline (polled), then DNS checked everywhere.
    let after: Record<string, HostCounts> = {};
    const settled = await pollUntil(
      async () => {
        after = {};
        for (const h of routers) after[h.name] = await countHost(lab, cli, h, netnsSeen);
        return routers.every((h) => LEAK_COUNTS.every((k) => after[h.name]![k] === before[h.name]![k])) ? true : undefined;
      },
      { what: 'every count back to its baseline', timeoutMs: options.settleMs, intervalMs: 1_000 },
    ).catch(() => false);
    const settledAfterMs = Date.now() - churnStop;
    options.log(`after (${settled ? `back ${Math.round(settledAfterMs / 1000)} s after the churn stopped, removals included` : `not back within ${options.settleMs / 1000} s of the removals`}): ${JSON.stringify(after)}`);
    for (const h of routers) {
      for (const k of LEAK_COUNTS) {
        const b = before[h.name]![k];
        const a = after[h.name]![k];
        if (a !== b) problems.push(`${h.name}: ${k} ${b} before, ${a} after the churn (leak)`);
      }
    }
    // Every host, four digs at a time each (hundreds of removed names after ten minutes).
    await Promise.all(
      routers.map(async (h) => {
        for (const k of keep) {
          const a = await dig(lab, h, dnsServer.get(h)!, `${k.name}.${DOMAIN}`);
          if (a.status !== 'NOERROR' || a.addresses.join(',') !== k.ip) problems.push(`${h.name}: ${k.name} resolves to ${a.status} ${a.addresses.join(',')}, expected ${k.ip}`);
        }
        const names = [...gone];
        for (let i = 0; i < names.length; i += 4) {
          await Promise.all(
            names.slice(i, i + 4).map(async (name) => {
              const a = await dig(lab, h, dnsServer.get(h)!, `${name}.${DOMAIN}`);
              if (a.status !== 'NXDOMAIN') problems.push(`${h.name}: the removed name ${name} still resolves (${a.status} ${a.addresses.join(',')})`);
            }),
          );
        }
      }),
    );

    const endFigures = await readSettled('end');
    const rss: Record<string, RssFigures> = {};
    for (const h of routers) {
      const s0 = startFigures.get(h.name)!;
      const s1 = endFigures.get(h.name)!;
      rss[h.name] = {
        startMb: s0.rssMb,
        peakMb: peak.get(h.name)!,
        endMb: s1.rssMb,
        heapStartMb: s0.heap.usedMb,
        heapEndMb: s1.heap.usedMb,
        anonStartMb: s0.anonMb,
        anonEndMb: s1.anonMb,
        heapTotalStartMb: s0.heap.totalMb,
        heapTotalEndMb: s1.heap.totalMb,
        externalStartMb: s0.heap.externalMb,
        externalEndMb: s1.heap.externalMb,
        quietGcStart: s0.quietGc,
        quietGcEnd: s1.quietGc,
      };
    }
    const rssLine = Object.entries(rss)
      .map(([n, f]) => `${n} ${f.startMb} -> ${f.endMb} (peak ${f.peakMb}; anonymous ${f.anonStartMb} -> ${f.anonEndMb}; V8 heap used ${f.heapStartMb} -> ${f.heapEndMb}, committed ${f.heapTotalStartMb} -> ${f.heapTotalEndMb}; external ${f.externalStartMb} -> ${f.externalEndMb}; quiet GCs ${f.quietGcEnd?.collections ?? '?'}, longest pause ${f.quietGcEnd?.maxPauseMs ?? '?'} ms)`)
      .join(', ');
    const over = Object.entries(rss).filter(([, f]) => f.endMb > options.rssGoalMb);
    options.log(`router RSS start -> end (MB): ${rssLine}; ${over.length === 0 ? `every router under the ${options.rssGoalMb} MB goal` : `over the ${options.rssGoalMb} MB goal: ${over.map(([n]) => n).join(', ')} (known miss, issue 14)`}`);
    if (options.maxRssGrowthMb !== undefined) problems.push(...rssGrowthProblems(rss, options.maxRssGrowthMb));

    // Pings of the long-lived containers over the churn and the settle.
    let maxPingGapMs = 0;
    const gaps: string[] = [];
    for (const p of pingLogs) {
      const gap = longestGap(readText(p.log), churnStart, churnStop + settledAfterMs);
      maxPingGapMs = Math.max(maxPingGapMs, gap);
      gaps.push(`${p.pair} ${gap}`);
    }
    options.log(`longest ping gap per long-lived pair (ms): ${gaps.join(', ')}`);
    if (maxPingGapMs > options.maxPingGapMs) problems.push(`long-lived pings interrupted for ${maxPingGapMs} ms (limit ${options.maxPingGapMs})`);
    return { ops, before, after, rss, maxPingGapMs, digs, reach, problems };
  } finally {
    clearInterval(sampler);
    killSoakContainers();
  }
}
