/**
 * DNS benchmark: dnsperf against Loom's DnsServer and against dnsmasq serving the same names,
 * same machine, same run. Queries per second at saturation, and latency percentiles at a fixed
 * offered rate below both servers' limits. Loom runs twice: with the native responder (its C
 * thread answers the cache's hot path, native/loom-dns.c; the default when the library loads)
 * and with the JS path (batched recvmmsg/sendmmsg on the main thread; LOOM_DNS_NATIVE=0), so
 * the two are compared in the same run too. A server whose label says another path than its
 * name could not open that path (the ready file reports the path really used).
 *
 *   npm run build && sudo node dist/bench/dns.js [--seconds 8] [--rounds 3] [--latency-seconds 5]
 *        [--latency-rounds 3] [--latency-qps 10000] [--names 1000] [--clients 4] [--outstanding 100]
 *        [--pin] [--no-timing] [--slice-us N] [--json FILE]
 *
 * Setup (why): a lab (src/lab/netns.ts) with two hosts on one bridge. Both servers run in h1, each
 * in its own process on its own port of h1's address; dnsperf runs in h2. Client and servers are
 * apart, as a container and its host's resolver are (veth + bridge, like real queries), and both
 * servers are reached over exactly the same path. dnsmasq runs with its default cache: the names
 * come from an addn-hosts file, which it answers from its hosts table whatever the cache size,
 * and nothing is forwarded (--no-resolv, --local=/<domain>/ makes unknown names NXDOMAIN, as Loom
 * does). Both are single-threaded servers on a 2-vCPU machine: one core for the server, one for
 * dnsperf (-T 1).
 *
 * Method: throughput = dnsperf's qps with no rate limit (-q outstanding), median of --rounds runs,
 * servers alternating so drifting machine load hits both. dnsperf prints no percentiles, so the
 * latency run uses -Q <rate> -v and percentiles come from its per-query lines (microsecond
 * resolution). The rate is --latency-qps, lowered to half of the slower server's throughput if
 * that is less, so neither server is measured while saturated. Latency is --latency-rounds rounds
 * (servers alternating, order rotated each round) and each percentile is the median over the
 * rounds: on a shared 2-vCPU machine one round's p99 can be 10x another's, for either server.
 *
 * Inside the servers (why: to split time in the server from queueing in the kernel and dnsperf),
 * per latency round, read the same way for every server: each thread's scheduler counters from
 * /proc (time on a CPU, time runnable but waiting for one, preemptions), and for the batched Loom
 * server (unless --no-timing) every reply's time from the kernel's receive timestamp of its query
 * to the sendmmsg that sent it (bench/dns/loom-server.ts --timing). And for every server alike,
 * from outside: bench/dns/dns-tap.c (compiled here with gcc) stamps each query as it enters the
 * servers' host and its reply as it leaves (AF_PACKET ring, kernel timestamps), so a server's
 * time is measured without its help; it reads its ring 20 times a second, on dnsperf's CPU when
 * pinned. --slice-us N (off by default: the run takes ~1.7x longer) adds two servers: the batched
 * Loom with its main thread on an N µs scheduler slice (src/os/sched-slice.ts), and a second
 * dnsmasq given the same slice by the bench (so the slice's effect is seen on both). --pin puts
 * every server (all threads) on CPU 1 and dnsperf on CPU 0, both servers alike.
 *
 * Cleanup: one namespace prefix lm<6 hex> per run; the lab kills the PIDs it started and removes
 * its namespaces at the end, on failure, and on exit/SIGINT/SIGTERM. Bounded: every dnsperf run
 * has -l and a process timeout; readiness waits are bounded in time and count.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomError, toLoomError } from '../src/core/errors.js';
import { Lab, type LabProcess } from '../src/lab/index.js';
import { systemRunner } from '../src/os/runner.js';
import { buildNameSet, DEFAULT_NAME_SET } from './dns/names.js';
import { dnsperfArgs, latencyStats, parseDnsperfSummary, parseVerboseLatencies, type DnsperfSummary, type LatencyStats } from './dns/dnsperf.js';
import { numberOption, textOption } from './options.js';
import { cpuTicks, threadScheds, type ThreadSched } from '../test/helpers/proc.js';
import { LatencyHistogram } from './dns/histogram.js';
import { setThreadSlice } from '../src/os/sched-slice.js';

interface Options {
  seconds: number;
  rounds: number;
  latencySeconds: number;
  latencyRounds: number;
  latencyQps: number;
  names: number;
  clients: number;
  outstanding: number;
  /** Servers on CPU 1, dnsperf on CPU 0. */
  pin: boolean;
  /** Time inside the batched Loom server per reply (its --timing). */
  timing: boolean;
  /** A fourth server, batched Loom on this scheduler slice (µs); 0: none. */
  sliceUs: number;
  json: string | null;
}

/** What one server's threads did during one latency round (from /proc), and its own timing. */
interface InsideRound {
  threads: number;
  /** Queries answered in the round (dnsperf's samples), for the CPU per query. */
  queries: number;
  /** The answering thread: the main thread, or a native Loom's responder thread ("loom-dns"). */
  mainRunMs: number;
  mainWaitMs: number;
  mainSlices: number;
  mainPreempted: number;
  /** Every other thread together. */
  otherRunMs: number;
  otherSlices: number;
  /** Loom with --timing: per reply, kernel receive -> read (wait), read -> sent (service), and the sum. */
  timing: { wait: LatencyHistogram; service: LatencyHistogram; total: LatencyHistogram } | null;
  /** From dns-tap: query in at the host's interface -> reply out, every server alike. */
  tap: LatencyHistogram | null;
}

interface ServerUnderTest {
  label: string;
  port: number;
  process: LabProcess;
  /** For Loom: the file its server writes `<pid> <udp path>` to once listening. */
  readyFile?: string;
  /** For Loom: its log, where it prints its garbage collections once a second (`gc n total max`). */
  logFile?: string;
  /** Started with --timing: prints `timing ...` on SIGUSR2. */
  timed?: boolean;
}

/** Garbage collections of a Loom server during the latency rounds (from its per-second lines). */
interface GcDuring {
  count: number;
  totalMs: number;
  maxMs: number;
  /** Seconds of lines read (each line covers one second). */
  seconds: number;
}

interface ServerResult {
  label: string;
  throughput: DnsperfSummary[];
  qps: number;
  /** Server CPU over the throughput runs, % of one core. */
  cpuPercent: number;
  /** Per percentile, the median over the latency rounds. */
  latency: LatencyStats;
  latencyRounds: LatencyStats[];
  lostAtRate: number;
  /** Loom only: its collections during the latency rounds. */
  gc: GcDuring | null;
  inside: InsideRound[];
}

/** Sums the `gc n total max` lines written to `logFile` after byte `from`. */
function gcSince(logFile: string, from: number): GcDuring {
  const out: GcDuring = { count: 0, totalMs: 0, maxMs: 0, seconds: 0 };
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8').slice(from);
  } catch {
    return out;
  }
  for (const m of text.matchAll(/^gc (\d+) ([\d.]+) ([\d.]+)$/gm)) {
    out.count += Number(m[1]);
    out.totalMs += Number(m[2]);
    out.maxMs = Math.max(out.maxMs, Number(m[3]));
    out.seconds++;
  }
  return out;
}

function logLength(logFile: string | undefined): number {
  try {
    return logFile === undefined ? 0 : readFileSync(logFile).length;
  } catch {
    return 0;
  }
}

/**
 * Asks a --timing Loom server for its histograms (SIGUSR2: print and start over) and reads the
 * line it appends to its log; bounded in time. Null when no line came.
 */
async function timingDump(server: ServerUnderTest): Promise<InsideRound['timing']> {
  const from = logLength(server.logFile);
  process.kill(server.process.pid, 'SIGUSR2');
  for (let attempt = 0; attempt < 100; attempt++) {
    await new Promise((r) => setTimeout(r, 20));
    const text = readFileSync(server.logFile!, 'utf8').slice(from);
    const m = /^timing (\S+) (\S+) (\S+)$/m.exec(text);
    if (m) return { wait: LatencyHistogram.fromText(m[1]!), service: LatencyHistogram.fromText(m[2]!), total: LatencyHistogram.fromText(m[3]!) };
  }
  return null;
}

/**
 * The threads' scheduler counters over a round: the answering thread (a native Loom's responder
 * thread, named "loom-dns" by native/loom-dns.c; else the main thread, tid = pid) apart from the rest.
 */
function schedDelta(pid: number, before: ThreadSched[], after: ThreadSched[]): Omit<InsideRound, 'timing' | 'tap' | 'queries'> {
  const was = new Map(before.map((t) => [t.tid, t]));
  const out = { threads: after.length, mainRunMs: 0, mainWaitMs: 0, mainSlices: 0, mainPreempted: 0, otherRunMs: 0, otherSlices: 0 };
  const answering = after.find((t) => t.name === 'loom-dns')?.tid ?? pid;
  for (const t of after) {
    const b = was.get(t.tid);
    const run = (t.runNs - (b?.runNs ?? 0)) / 1e6;
    if (t.tid === answering) {
      out.mainRunMs = run;
      out.mainWaitMs = (t.waitNs - (b?.waitNs ?? 0)) / 1e6;
      out.mainSlices = t.slices - (b?.slices ?? 0);
      out.mainPreempted = t.involuntary - (b?.involuntary ?? 0);
    } else {
      out.otherRunMs += run;
      out.otherSlices += t.slices - (b?.slices ?? 0);
    }
  }
  return out;
}

/** Each server's UDP socket receive and send buffer sizes (`rb/tb` from ss's skmem), by port. */
async function socketBuffers(lab: Lab, servers: ServerUnderTest[]): Promise<Map<number, string>> {
  const r = await lab.exec(1, 'ss', ['-uamnH'], { timeoutMs: 5000, allowFailure: true });
  const out = new Map<number, string>();
  const lines = r.stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    // `UNCONN 0 0 ADDR:PORT PEER`, then skmem on the next line.
    const port = /^\S+\s+\d+\s+\d+\s+\S+:(\d+)\s/.exec(lines[i]!)?.[1];
    const mem = /skmem:\(r\d+,rb(\d+),t\d+,tb(\d+)/.exec(`${lines[i]!} ${lines[i + 1] ?? ''}`);
    if (port !== undefined && mem && servers.some((s) => s.port === Number(port))) out.set(Number(port), `rb ${mem[1]} / tb ${mem[2]}`);
  }
  return out;
}

/** Compiles bench/dns/dns-tap.c into `dir`; null (and why, on stderr) when it cannot. */
async function buildTap(dir: string): Promise<string | null> {
  const self = fileURLToPath(import.meta.url);
  // dist/bench/dns.js -> bench/dns/dns-tap.c (tsc does not copy it); bench/dns.ts -> beside it.
  const source = [join(self, '..', 'dns', 'dns-tap.c'), join(self, '..', '..', '..', 'bench', 'dns', 'dns-tap.c')].find((p) => existsSync(p));
  if (source === undefined) {
    progress('  dns-tap.c not found: no outside timing');
    return null;
  }
  const out = join(dir, 'dns-tap');
  const r = await systemRunner.run('gcc', ['-O2', '-Wall', '-o', out, source], { allowFailure: true, timeoutMs: 60_000 }).catch((err: unknown) => ({ code: 1, stdout: '', stderr: String(err) }));
  if (r.code !== 0) {
    progress(`  dns-tap did not compile (${r.stderr.trim().slice(0, 200)}): no outside timing`);
    return null;
  }
  return out;
}

/** With --pin: dnsperf's CPU, and the servers'. */
const CLIENT_CPU = 0;
const SERVER_CPU = 1;
const LOOM_PORT = 5301;
const LOOM_JS_PORT = 5302;
const LOOM_SLICE_PORT = 5303;
const DNSMASQ_SLICE_PORT = 5304;
const DNSMASQ_PORT = 5300;
const READY_LIMIT_MS = 15_000;
const READY_PROBES = 60;

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function parseOptions(argv: string[]): Options {
  const num = (name: string, fallback: number, min: number, max: number): number => numberOption(argv, name, fallback, min, max);
  return {
    seconds: num('seconds', 8, 1, 30),
    rounds: num('rounds', 3, 1, 5),
    latencySeconds: num('latency-seconds', 5, 1, 30),
    latencyRounds: num('latency-rounds', 3, 1, 7),
    latencyQps: num('latency-qps', 10_000, 100, 1_000_000),
    names: num('names', DEFAULT_NAME_SET.names, 10, 100_000),
    clients: num('clients', 4, 1, 64),
    outstanding: num('outstanding', 100, 1, 10_000),
    pin: argv.includes('--pin'),
    timing: !argv.includes('--no-timing'),
    sliceUs: num('slice-us', 0, 0, 100_000),
    json: textOption(argv, 'json'),
  };
}

/** The Loom bench server entry beside this file; run through tsx when this file is TypeScript. */
function loomServerCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  const ts = self.endsWith('.ts');
  const entry = join(self, '..', 'dns', ts ? 'loom-server.ts' : 'loom-server.js');
  return ts ? [process.execPath, '--import', 'tsx', entry] : [process.execPath, entry];
}

class DnsBench {
  private readonly clientHost = 2;
  private readonly serverHost = 1;

  constructor(
    private readonly lab: Lab,
    private readonly options: Options,
    private readonly serverAddress: string,
    private readonly queryFile: string,
    private readonly probeFile: string,
    private readonly clockTicks: number,
  ) {}

  async dnsperf(port: number, extra: { seconds: number; rateQps?: number; verbose?: boolean; dataFile?: string; outstanding?: number }): Promise<string> {
    const args = dnsperfArgs({
      server: this.serverAddress,
      port,
      dataFile: extra.dataFile ?? this.queryFile,
      seconds: extra.seconds,
      clients: this.options.clients,
      outstanding: extra.outstanding ?? this.options.outstanding,
      ...(extra.rateQps === undefined ? {} : { rateQps: extra.rateQps }),
      verbose: extra.verbose ?? false,
    });
    const [cmd, argv] = this.options.pin ? ['taskset', ['-c', String(CLIENT_CPU), 'dnsperf', ...args]] : ['dnsperf', args];
    const r = await this.lab.exec(this.clientHost, cmd, argv, { timeoutMs: (extra.seconds + 15) * 1000 });
    return r.stdout;
  }

  /** Until one probe query is answered; bounded in time and count. */
  async waitReady(server: ServerUnderTest): Promise<void> {
    const deadline = Date.now() + READY_LIMIT_MS;
    for (let probe = 0; probe < READY_PROBES && Date.now() < deadline; probe++) {
      const out = await this.dnsperf(server.port, { seconds: 1, dataFile: this.probeFile, outstanding: 1 }).catch(() => '');
      if (/Queries completed:\s+[1-9]/.test(out)) return;
      if (server.process.child.exitCode !== null) throw new LoomError('ERR_UNAVAILABLE', `${server.label} exited (code ${server.process.child.exitCode})`);
    }
    throw new LoomError('ERR_TIMEOUT', `${server.label} did not answer within ${READY_LIMIT_MS} ms`);
  }

  async throughput(server: ServerUnderTest): Promise<{ summary: DnsperfSummary; ticks: number; seconds: number }> {
    const before = cpuTicks(server.process.pid);
    const t0 = performance.now();
    const summary = parseDnsperfSummary(await this.dnsperf(server.port, { seconds: this.options.seconds }));
    const seconds = (performance.now() - t0) / 1000;
    const after = cpuTicks(server.process.pid);
    return { summary, ticks: before === null || after === null ? NaN : after - before, seconds };
  }

  async latency(server: ServerUnderTest, rateQps: number, tapPath: string | null): Promise<{ stats: LatencyStats; summary: DnsperfSummary; inside: InsideRound }> {
    if (server.timed) await timingDump(server);
    const seconds = this.options.latencySeconds;
    const tapping = tapPath === null ? null : this.tap(tapPath, server.port, seconds + 1);
    // The tap's ring is set up in a few ms; this leaves it ample time before the first query.
    if (tapping !== null) await new Promise((r) => setTimeout(r, 200));
    const before = threadScheds(server.process.pid);
    const out = await this.dnsperf(server.port, { seconds, rateQps, verbose: true });
    const after = threadScheds(server.process.pid);
    const timing = server.timed ? await timingDump(server) : null;
    const tap = tapping === null ? null : await tapping;
    const stats = latencyStats(parseVerboseLatencies(out));
    return { stats, summary: parseDnsperfSummary(out), inside: { ...schedDelta(server.process.pid, before, after), queries: stats.count, timing, tap } };
  }

  /** dns-tap on the servers' host for `seconds`; its histogram, or null when it failed. */
  private async tap(path: string, port: number, seconds: number): Promise<LatencyHistogram | null> {
    const args = ['eth0', String(port), String(seconds)];
    const [cmd, argv] = this.options.pin ? ['taskset', ['-c', String(CLIENT_CPU), path, ...args]] : [path, args];
    const r = await this.lab.exec(this.serverHost, cmd, argv, { timeoutMs: (seconds + 10) * 1000, allowFailure: true });
    const m = /^tap (\S+) (\d+) (\d+)$/m.exec(r.stdout);
    if (!m) {
      progress(`  dns-tap gave nothing: ${r.stderr.trim().slice(0, 200)}`);
      return null;
    }
    const h = LatencyHistogram.fromText(m[1]!);
    if (h.count < Number(m[2])) progress(`  dns-tap: ${m[2]} queries seen, ${h.count} replies matched, ${m[3]} replies unmatched`);
    return h;
  }

  cpuPercent(ticks: number, seconds: number): number {
    return (100 * ticks) / this.clockTicks / seconds;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Each percentile's median over the rounds. */
function medianStats(rounds: LatencyStats[]): LatencyStats {
  const m = (k: keyof LatencyStats): number => median(rounds.map((r) => r[k]));
  return { count: rounds.reduce((n, r) => n + r.count, 0), p50: m('p50'), p90: m('p90'), p99: m('p99'), p999: m('p999'), max: m('max') };
}

/** Results in order; the last one is the baseline (dnsmasq) every other row is divided by. */
function renderTable(results: ServerResult[], rateQps: number, latencyRounds: number): string {
  const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : '-');
  const rows = results.map((r) => {
    const lost = r.throughput.reduce((n, s) => n + s.lost, 0);
    const codes = Object.entries(r.throughput[0]?.rcodes ?? {}).map(([c, n]) => `${c} ${((100 * n) / Math.max(1, r.throughput[0]!.completed)).toFixed(1)}%`).join(', ');
    const qpsRuns = r.throughput.map((s) => Math.round(s.qps)).join(' / ');
    const p99Runs = r.latencyRounds.map((l) => f3(l.p99)).join(' / ');
    return `| ${r.label} | ${Math.round(r.qps)} (${qpsRuns}) | ${r.cpuPercent.toFixed(0)} | ${f3(median(r.throughput.map((s) => s.avgLatencyMs)))} | ${f3(r.latency.p50)} | ${f3(r.latency.p90)} | ${f3(r.latency.p99)} (${p99Runs}) | ${f3(r.latency.p999)} | ${f3(r.latency.max)} | ${lost} / ${r.lostAtRate} | ${codes} |`;
  });
  const baseline = results[results.length - 1]!;
  const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-');
  const ratioRows = results.slice(0, -1).map((r) => `| **${r.label} / ${baseline.label}** | **${ratio(r.qps, baseline.qps)}** | ${ratio(r.cpuPercent, baseline.cpuPercent)} | ${ratio(median(r.throughput.map((s) => s.avgLatencyMs)), median(baseline.throughput.map((s) => s.avgLatencyMs)))} | ${ratio(r.latency.p50, baseline.latency.p50)} | ${ratio(r.latency.p90, baseline.latency.p90)} | **${ratio(r.latency.p99, baseline.latency.p99)}** | ${ratio(r.latency.p999, baseline.latency.p999)} | ${ratio(r.latency.max, baseline.latency.max)} | | |`);
  return [
    `| server | qps at saturation, median (runs) | server CPU % | avg ms at saturation | p50 ms @${rateQps} q/s | p90 ms | p99 ms, median (rounds) | p99.9 ms | max ms | lost (sat. / rate) | response codes |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    ...ratioRows,
    '',
    `Latency: median of ${latencyRounds} rounds per percentile.`,
    '',
  ].join('\n');
}

/**
 * The tail side by side: per server p50 / p99 / p99.9 / max of every latency round, and for Loom
 * the garbage collections during those rounds (the time its main thread stood still).
 */
function renderTail(results: ServerResult[], rateQps: number): string {
  const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : '-');
  const rows = results.map((r) => {
    const rounds = r.latencyRounds.map((l) => `${f3(l.p50)} / ${f3(l.p99)} / ${f3(l.p999)} / ${f3(l.max)}`).join('; ');
    const gc = r.gc === null ? '-' : `${r.gc.count} in ${r.gc.seconds} s, ${r.gc.totalMs.toFixed(1)} ms paused (${((100 * r.gc.totalMs) / 1000 / Math.max(1, r.gc.seconds)).toFixed(2)} % of the time), longest ${r.gc.maxMs.toFixed(2)} ms`;
    return `| ${r.label} | ${f3(r.latency.p50)} | ${f3(r.latency.p99)} | ${f3(r.latency.p999)} | ${f3(r.latency.max)} | ${rounds} | ${gc} |`;
  });
  return [
    `Tail at ${rateQps} q/s, ms (median over rounds; then each round's p50 / p99 / p99.9 / max):`,
    '',
    '| server | p50 | p99 | p99.9 | max | rounds | garbage collections during the rounds |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

/**
 * Inside each server during the latency rounds: its threads' scheduler counters (every server
 * alike) and, for a --timing Loom, the time each reply spent in it (merged over the rounds)
 * beside the end-to-end figure dnsperf saw.
 */
function renderInside(results: ServerResult[], seconds: number): string {
  const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '-');
  const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : '-');
  const sched = results.map((r) => {
    const per = (f: (x: InsideRound) => number): string => r.inside.map((x) => f1(f(x))).join(' / ');
    const us = (f: (x: InsideRound) => number): string => r.inside.map((x) => f1((1000 * f(x)) / Math.max(1, x.queries))).join(' / ');
    return `| ${r.label} | ${r.inside[0]?.threads ?? '-'} | ${per((x) => x.mainRunMs)} | ${per((x) => x.mainWaitMs)} | ${per((x) => x.mainSlices / seconds)} | ${per((x) => x.mainPreempted)} | ${per((x) => x.otherRunMs)} | ${us((x) => x.mainRunMs)} | ${us((x) => x.mainRunMs + x.otherRunMs)} |`;
  });
  const ms = (h: LatencyHistogram, q: number): string => f3(h.percentile(q) / 1000);
  const endToEnd = (r: ServerResult): string => `${f3(r.latency.p50)} / ${f3(r.latency.p90)} / ${f3(r.latency.p99)} / ${f3(r.latency.p999)}`;
  const tapped = results.filter((r) => r.inside.some((x) => x.tap !== null)).map((r) => {
    const merged = new LatencyHistogram();
    for (const x of r.inside) if (x.tap !== null) merged.merge(x.tap);
    const rounds = r.inside.map((x) => (x.tap === null ? '-' : ms(x.tap, 0.99))).join(' / ');
    return `| ${r.label} at the host's interface (query in -> reply out, dns-tap) | ${merged.count} | ${ms(merged, 0.5)} | ${ms(merged, 0.9)} | ${ms(merged, 0.99)} | ${ms(merged, 0.999)} | ${f3(merged.max / 1000)} | ${endToEnd(r)}; p99 per round ${rounds} |`;
  });
  const timed = results.filter((r) => r.inside.some((x) => x.timing !== null));
  const timing = timed.flatMap((r) => {
    const merged = { wait: new LatencyHistogram(), service: new LatencyHistogram(), total: new LatencyHistogram() };
    for (const x of r.inside) {
      if (x.timing === null) continue;
      merged.wait.merge(x.timing.wait);
      merged.service.merge(x.timing.service);
      merged.total.merge(x.timing.total);
    }
    const row = (what: string, h: LatencyHistogram, endToEnd: string): string => `| ${r.label} ${what} | ${h.count} | ${ms(h, 0.5)} | ${ms(h, 0.9)} | ${ms(h, 0.99)} | ${ms(h, 0.999)} | ${f3(h.max / 1000)} | ${endToEnd} |`;
    const rounds = r.inside.map((x) => (x.timing === null ? '-' : ms(x.timing.total, 0.99))).join(' / ');
    return [
      row('in server (kernel receive -> reply sent)', merged.total, `${endToEnd(r)}; p99 per round ${rounds}`),
      row('of which: receive -> read (wake-up, queueing)', merged.wait, ''),
      row('of which: read -> sent (answering)', merged.service, ''),
    ];
  });
  return [
    `Inside each server during the latency rounds (per round, ${seconds} s each; "answering thread" = the main thread, or a native Loom's responder thread):`,
    '',
    '| server | threads | answering thread on CPU ms | answering thread runnable, waiting for a CPU, ms | answering thread wake-ups /s | answering thread preempted | other threads on CPU ms | answering thread CPU per query, us | all threads CPU per query, us |',
    '|---|---|---|---|---|---|---|---|---|',
    ...sched,
    '',
    ...(timing.length + tapped.length === 0
      ? []
      : [
          'Time inside the server per reply (all latency rounds merged), ms:',
          '',
          '| what | replies | p50 | p90 | p99 | p99.9 | max | end to end (dnsperf) p50 / p90 / p99 / p99.9 |',
          '|---|---|---|---|---|---|---|---|',
          ...tapped,
          ...timing,
          '',
        ]),
  ].join('\n');
}

/** `list` rotated left by `by`: round r starts with a different server. */
function rotated<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

async function toolVersion(cmd: string, args: string[]): Promise<string> {
  const r = await systemRunner.run(cmd, args, { allowFailure: true, timeoutMs: 5000 }).catch(() => null);
  return `${r?.stdout ?? ''}\n${r?.stderr ?? ''}`.split('\n').map((l) => l.trim()).find((l) => /version/i.test(l)) ?? 'unknown';
}

async function run(options: Options): Promise<number> {
  if (process.getuid?.() !== 0) throw new LoomError('ERR_UNAVAILABLE', 'the DNS benchmark needs root (network namespaces)');
  process.env['PATH'] = [process.env['PATH'] ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin'].filter((p) => p !== '').join(':');
  const missing = ['/usr/bin/dnsperf', '/usr/sbin/dnsmasq'].filter((p) => !existsSync(p));
  if (missing.length > 0) throw new LoomError('ERR_UNAVAILABLE', `missing ${missing.join(', ')} (Debian packages dnsperf, dnsmasq-base)`);
  const clockTicks = Number((await systemRunner.run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const nameSet = buildNameSet({ ...DEFAULT_NAME_SET, names: options.names });
  const lab = await Lab.create({ hosts: 2 });
  progress(`dns bench, run ${lab.prefix}: ${options.names} names (${nameSet.records} records), ${nameSet.queries} queries in the file`);
  try {
    const server = lab.host(1);
    const dir = lab.workDir;
    const hostsFile = join(dir, 'hosts');
    const queryFile = join(dir, 'queries.txt');
    const probeFile = join(dir, 'probe.txt');
    writeFileSync(hostsFile, nameSet.hostsFile);
    writeFileSync(queryFile, nameSet.queryFile);
    writeFileSync(probeFile, `svc-1.${DEFAULT_NAME_SET.domain} A\n`);
    const startDnsmasq = (label: string, port: number, name: string): ServerUnderTest => ({
      label,
      port,
      process: lab.start(
        server,
        'dnsmasq',
        ['--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, `--local=/${DEFAULT_NAME_SET.domain}/`, '--local-ttl=1', `--port=${port}`, `--listen-address=${server.address}`, '--bind-interfaces', '--pid-file=', '--user=root'],
        { logFile: join(dir, `${name}.log`) },
      ),
    });
    const dnsmasq = startDnsmasq('dnsmasq', DNSMASQ_PORT, 'dnsmasq');
    const [node, ...entry] = loomServerCommand();
    const startLoom = (label: string, port: number, udp: string, name: string, timed: boolean, extra: string[] = []): ServerUnderTest => ({
      label,
      port,
      readyFile: join(dir, `${name}.ready`),
      logFile: join(dir, `${name}.log`),
      timed,
      process: lab.start(server, node!, [...entry, '--hosts', hostsFile, '--host', server.address, '--port', String(port), '--ready', join(dir, `${name}.ready`), '--udp', udp, ...(timed ? ['--timing'] : []), ...extra], { logFile: join(dir, `${name}.log`) }),
    });
    // Loom twice: the native responder (its thread answers the hot path; no --timing, which is
    // the JS batched path's), and the JS path (batched), the reference it must match.
    const loom = startLoom('Loom native', LOOM_PORT, 'native', 'loom', false);
    const loomJs = startLoom('Loom JS', LOOM_JS_PORT, 'batched', 'loom-js', options.timing);
    const loomSlice = options.sliceUs > 0 ? startLoom('Loom slice', LOOM_SLICE_PORT, 'auto', 'loom-slice', options.timing, ['--slice-us', String(options.sliceUs)]) : null;
    const dnsmasqSlice = options.sliceUs > 0 ? startDnsmasq(`dnsmasq, slice ${options.sliceUs} us`, DNSMASQ_SLICE_PORT, 'dnsmasq-slice') : null;
    // dnsmasq last: the baseline every ratio is taken against.
    const servers = [loom, loomJs, ...(loomSlice === null ? [] : [loomSlice]), ...(dnsmasqSlice === null ? [] : [dnsmasqSlice]), dnsmasq];
    const bench = new DnsBench(lab, options, server.address, queryFile, probeFile, clockTicks);
    const tapPath = await buildTap(dir);
    for (const s of servers) await bench.waitReady(s);
    if (dnsmasqSlice !== null) {
      const set = await setThreadSlice(options.sliceUs, dnsmasqSlice.process.pid);
      if ('unavailable' in set) throw new LoomError('ERR_UNAVAILABLE', `slice for dnsmasq: ${set.unavailable}`);
    }
    // Every thread of every server (a Loom server's V8 and libuv threads too), alike.
    if (options.pin) for (const s of servers) await systemRunner.run('taskset', ['-a', '-p', '-c', String(SERVER_CPU), String(s.process.pid)]);
    // Name each Loom by the UDP path it really uses (a batched path that could not open says so).
    for (const s of [loom, loomJs, ...(loomSlice === null ? [] : [loomSlice])]) {
      const ready = existsSync(s.readyFile!) ? readFileSync(s.readyFile!, 'utf8').trim().split(' ') : [];
      s.label = `Loom ${ready[1] === 'batched' ? 'JS (batched)' : (ready[1] ?? '?')}${ready[2] === 'slice' ? `, slice ${ready[3]} us` : ''}`;
    }
    const buffers = await socketBuffers(lab, servers);
    progress(`  servers answer (${servers.map((s) => s.label).join(', ')}); warming up (JIT)`);
    await bench.dnsperf(loom.port, { seconds: 2 });
    await bench.dnsperf(loomJs.port, { seconds: 2 });
    if (loomSlice !== null) await bench.dnsperf(loomSlice.port, { seconds: 2 });
    if (dnsmasqSlice !== null) await bench.dnsperf(dnsmasqSlice.port, { seconds: 1 });
    await bench.dnsperf(dnsmasq.port, { seconds: 1 });

    const runs = new Map<ServerUnderTest, Array<{ summary: DnsperfSummary; ticks: number; seconds: number }>>(servers.map((s) => [s, []]));
    for (let round = 0; round < options.rounds; round++) {
      for (const s of rotated(servers, round)) {
        const r = await bench.throughput(s);
        runs.get(s)!.push(r);
        progress(`  round ${round + 1} ${s.label.padEnd(8)} ${Math.round(r.summary.qps)} q/s, avg ${r.summary.avgLatencyMs.toFixed(3)} ms, lost ${r.summary.lost}, server CPU ${bench.cpuPercent(r.ticks, r.seconds).toFixed(0)} %`);
      }
    }
    const qpsOf = (s: ServerUnderTest): number => median(runs.get(s)!.map((r) => r.summary.qps));
    const rateQps = Math.round(Math.min(options.latencyQps, 0.5 * Math.min(...servers.map(qpsOf))));
    const latencies = new Map<ServerUnderTest, Array<{ stats: LatencyStats; summary: DnsperfSummary; inside: InsideRound }>>(servers.map((s) => [s, []]));
    const gcs = new Map<ServerUnderTest, GcDuring[]>(servers.map((s) => [s, []]));
    for (let round = 0; round < options.latencyRounds; round++) {
      for (const s of rotated(servers, round)) {
        const mark = logLength(s.logFile);
        const l = await bench.latency(s, rateQps, tapPath);
        if (s.logFile !== undefined) gcs.get(s)!.push(gcSince(s.logFile, mark));
        latencies.get(s)!.push(l);
        const inServer = `${l.inside.tap === null ? '' : `, at the host's interface p99 ${(l.inside.tap.percentile(0.99) / 1000).toFixed(3)} ms`}${l.inside.timing === null ? '' : `, in server p99 ${(l.inside.timing.total.percentile(0.99) / 1000).toFixed(3)} ms`}`;
        progress(`  latency round ${round + 1} ${s.label.padEnd(12)} @${rateQps} q/s: p50 ${l.stats.p50.toFixed(3)} ms, p99 ${l.stats.p99.toFixed(3)} ms (${l.stats.count} samples)${inServer}, main thread waited ${l.inside.mainWaitMs.toFixed(1)} ms for a CPU`);
      }
    }
    const results: ServerResult[] = servers.map((s) => {
      const rs = runs.get(s)!;
      const ls = latencies.get(s)!;
      const ticks = rs.reduce((n, r) => n + r.ticks, 0);
      const seconds = rs.reduce((n, r) => n + r.seconds, 0);
      const latencyRounds = ls.map((l) => l.stats);
      const g = gcs.get(s)!;
      const gc = g.length === 0 ? null : { count: g.reduce((n, x) => n + x.count, 0), totalMs: g.reduce((n, x) => n + x.totalMs, 0), maxMs: Math.max(...g.map((x) => x.maxMs)), seconds: g.reduce((n, x) => n + x.seconds, 0) };
      return { label: s.label, throughput: rs.map((r) => r.summary), qps: qpsOf(s), cpuPercent: bench.cpuPercent(ticks, seconds), latency: medianStats(latencyRounds), latencyRounds, lostAtRate: ls.reduce((n, l) => n + l.summary.lost, 0), gc, inside: ls.map((l) => l.inside) };
    });

    const loomResult = results[0];
    const dnsmasqResult = results[results.length - 1];
    const jsResult = results[1]!;
    const sliceResult = loomSlice === null ? null : results[2]!;
    const qpsRatio = loomResult!.qps / dnsmasqResult!.qps;
    const issue14 = (r: ServerResult): string =>
      `target (issue 14) Loom's p99 <= dnsmasq's p99 in the same run at ${rateQps} q/s (${r.label}): ${r.latency.p99.toFixed(3)} vs ${dnsmasqResult!.latency.p99.toFixed(3)} ms (${(r.latency.p99 / dnsmasqResult!.latency.p99).toFixed(2)}x): ${r.latency.p99 <= dnsmasqResult!.latency.p99 ? 'met' : 'NOT met'}`;
    const verdict = [
      `target (issue 5) Loom >= 1.0x dnsmasq qps and p99 < 1 ms (${loomResult!.label}): qps ${qpsRatio.toFixed(2)}x ${qpsRatio >= 1 ? 'met' : 'NOT met'}, p99 ${loomResult!.latency.p99.toFixed(3)} ms (median of ${options.latencyRounds}) ${loomResult!.latency.p99 < 1 ? 'met' : 'NOT met'}`,
      issue14(loomResult!),
      issue14(jsResult),
      ...(sliceResult === null ? [] : [issue14(sliceResult)]),
    ].join('\n');
    const machine = `${os.cpus().length} vCPU (${os.cpus()[0]?.model ?? 'unknown'}), kernel ${os.release()}, Node ${process.version}, load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before / ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} after`;
    const tools = `${await toolVersion('dnsperf', ['-h'])}; ${await toolVersion('dnsmasq', ['--version'])}`;
    const header = [
      `DNS benchmark, ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}, run ${lab.prefix}`,
      machine,
      `tools: ${tools}`,
      `UDP socket buffers (ss -uam skmem, bytes): ${servers.map((s) => `${s.label} ${buffers.get(s.port) ?? '?'}`).join('; ')}`,
      options.pin ? `pinned: every server (all threads) on CPU ${SERVER_CPU}, dnsperf on CPU ${CLIENT_CPU}` : 'not pinned (the scheduler places servers and dnsperf)',
      `${options.names} names (${nameSet.records} A records, every 10th name with 3), query file ${nameSet.queries} A queries (${nameSet.queries - options.names} NXDOMAIN), dnsperf -c ${options.clients} -T 1 -q ${options.outstanding}: ${options.rounds} x ${options.seconds} s unlimited, then ${options.latencyRounds} x ${options.latencySeconds} s at -Q ${rateQps} -v for percentiles`,
    ];
    process.stdout.write(`\n${header.join('\n')}\n\n${renderTable(results, rateQps, options.latencyRounds)}\n${renderTail(results, rateQps)}\n${renderInside(results, options.latencySeconds)}\n${verdict}\n`);
    if (options.json !== null) writeFileSync(options.json, `${JSON.stringify({ startedAt, prefix: lab.prefix, machine, tools, options, rateQps, results }, null, 1)}\n`);
    return 0;
  } finally {
    await lab.destroy();
  }
}

run(parseOptions(process.argv.slice(2))).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = toLoomError(err);
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    process.exitCode = 2;
  },
);
