/**
 * The quiet GC (src/daemon/quiet-gc.ts) against DNS traffic on a real router: whether it fires
 * under load (it must not), what its pause is, and what that pause does to the DNS tail when it
 * does fire under light traffic.
 *
 *   npm run build && sudo node dist/bench/quiet-gc.js [--containers 40] [--busy-qps 10000]
 *        [--light-qps 200] [--seconds 20] [--quiet 5]
 *
 * Set-up: a lab of two hosts; h1 runs `loom launch` alone with LOOM_QUIET_GC=--quiet seconds, h2
 * the routers' upstream DNS (nothing leaves the lab). Churn grows the router's heap: --containers
 * `loom run` then `loom rm` (five kept, their names queried). Then, from h1's namespace, dnsperf
 * against the router's DNS (its bridge address) for --seconds at --busy-qps (the router is busy:
 * no collection may happen), then for --seconds at --light-qps (under the 5 % busy limit: the
 * collection happens during it), then the light rate again as the control (nothing grew since:
 * no collection); per-query latencies from `dnsperf -v`. Printed: collections
 * and pauses from `/report` memory.quietGc before and after each phase, RSS and V8's committed
 * heap before and after, the latency percentiles of each phase.
 *
 * The relay and DNS benchmarks (`npm run bench -- relay`, `dns`) run their relays and servers in
 * bench processes, not through `loom launch --foreground`: the quiet GC is never started there.
 *
 * Bounded: every wait and command has a timeout; the lab stops its PIDs and removes its
 * namespaces at the end, on failure and on SIGINT/SIGTERM.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { LoomError } from '../src/core/errors.js';
import { LoomCli } from '../src/demo/loom-cli.js';
import { pollUntil } from '../src/demo/poll.js';
import { Lab, type LabHost } from '../src/lab/index.js';
import { useUpstream } from '../test/helpers/upstream-dns.js';
import { dnsperfArgs, latencyStats, parseDnsperfSummary, parseVerboseLatencies, type LatencyStats } from './dns/dnsperf.js';
import { numberOption, runBench } from './options.js';

interface Options {
  containers: number;
  busyQps: number;
  lightQps: number;
  seconds: number;
  quiet: number;
}

function parseOptions(argv: string[]): Options {
  const num = (name: string, fallback: number, min: number, max: number): number => numberOption(argv, name, fallback, min, max);
  return { containers: num('containers', 40, 6, 500), busyQps: num('busy-qps', 10_000, 100, 50_000), lightQps: num('light-qps', 200, 10, 5_000), seconds: num('seconds', 20, 5, 120), quiet: num('quiet', 5, 1, 60) };
}

interface QuietGcStatus {
  settled: boolean;
  quietForMs: number;
  collections: number;
  lastPauseMs: number | null;
  lastGcMs: number | null;
  lastTrimMs: number | null;
  maxPauseMs: number;
  committedBytes: number;
}

const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

async function quietGc(lab: Lab, h: LabHost): Promise<QuietGcStatus> {
  const out = await lab.exec(h, process.execPath, ['-e', "fetch('http://127.0.0.1:6784/report').then(r=>r.json()).then(j=>process.stdout.write(JSON.stringify(j.memory?.quietGc ?? null)))"], { timeoutMs: 10_000 });
  const s = JSON.parse(out.stdout) as QuietGcStatus | null;
  if (s === null) throw new LoomError('ERR_UNAVAILABLE', 'the router reports no quiet GC (LOOM_QUIET_GC=off, or no gc in this V8?)');
  return s;
}

async function run(options: Options): Promise<void> {
  if (process.getuid?.() !== 0) throw new LoomError('ERR_UNAVAILABLE', 'the quiet-gc benchmark needs root (network namespaces)');
  const loadBefore = os.loadavg();
  const startedAt = new Date();
  const lab = await Lab.create({ hosts: 2, subnet: '192.168.76.0/24' });
  try {
    const cli = new LoomCli(lab);
    const h1 = lab.host(1);
    process.stderr.write(`quiet-gc bench, run ${lab.prefix}\n`);
    await useUpstream(lab, lab.host(2), [h1]);
    const { pid } = await cli.launch(h1, { env: { LOOM_QUIET_GC: String(options.quiet) } });
    const dnsAddress = await pollUntil(
      async () => {
        const report = JSON.parse((await cli.run(h1, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: { cidr?: string | null; dns?: unknown } };
        const s = report['host-address'];
        return s?.dns && s.cidr ? s.cidr.split('/')[0] : undefined;
      },
      { what: "h1's host address and DNS", timeoutMs: 45_000, intervalMs: 300 },
    );
    const s0 = await quietGc(lab, h1);

    // Churn: the router's heap grows.
    const ids: string[] = [];
    const t0 = Date.now();
    for (let i = 0; i < options.containers; i++) ids.push((await cli.run(h1, ['run', '--name', `c${i}`, 'net:default', '--', ...SLEEPER], { timeoutMs: 30_000 })).stdout.trim());
    for (const id of ids.slice(5)) await cli.run(h1, ['rm', id], { timeoutMs: 30_000 });
    const churnS = (Date.now() - t0) / 1000;
    const s1 = await quietGc(lab, h1);
    const rssAfterChurn = rssMb(pid);
    process.stderr.write(`  churn: ${options.containers} started, ${options.containers - 5} removed in ${churnS.toFixed(0)} s; committed heap ${(s1.committedBytes / 1048576).toFixed(1)} MB at the last check\n`);

    const queries = join(lab.workDir, 'queries.txt');
    writeFileSync(queries, [0, 1, 2, 3, 4].map((i) => `c${i}.loom.local A\n`).join(''));
    const phase = async (qps: number): Promise<{ stats: LatencyStats; lost: number; before: QuietGcStatus; after: QuietGcStatus }> => {
      const before = await quietGc(lab, h1);
      const r = await lab.exec(h1, 'dnsperf', dnsperfArgs({ server: dnsAddress, port: 53, dataFile: queries, seconds: options.seconds, clients: 1, outstanding: 100, rateQps: qps, verbose: true }), { timeoutMs: (options.seconds + 30) * 1000 });
      const after = await quietGc(lab, h1);
      return { stats: latencyStats(parseVerboseLatencies(r.stdout)), lost: parseDnsperfSummary(r.stdout).lost, before, after };
    };
    process.stderr.write(`  busy: ${options.busyQps} q/s for ${options.seconds} s\n`);
    const busy = await phase(options.busyQps);
    process.stderr.write(`  light: ${options.lightQps} q/s for ${options.seconds} s\n`);
    const light = await phase(options.lightQps);
    process.stderr.write(`  light again (control: nothing grew, no collection due): ${options.lightQps} q/s for ${options.seconds} s\n`);
    const control = await phase(options.lightQps);
    // Then idle: settled, and no further collection.
    await pollUntil(async () => ((await quietGc(lab, h1)).settled ? true : undefined), { what: 'the router settled', timeoutMs: 60_000, intervalMs: 500 });
    await new Promise((r) => setTimeout(r, 3_000 + 4 * options.quiet * 1000));
    const idle = await quietGc(lab, h1);
    const rssEnd = rssMb(pid);

    const f = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
    const row = (name: string, qps: number, p: { stats: LatencyStats; lost: number; before: QuietGcStatus; after: QuietGcStatus }): string =>
      `| ${name}, ${qps} q/s | ${p.stats.count} | ${p.lost} | ${f(p.stats.p50)} / ${f(p.stats.p99)} / ${f(p.stats.p999)} / ${f(p.stats.max)} | ${p.after.collections - p.before.collections} | ${p.after.collections > p.before.collections ? f(p.after.lastPauseMs ?? NaN, 2) : '-'} |`;
    const out = [
      '',
      `Quiet GC under DNS traffic, ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}, run ${lab.prefix}: one router, LOOM_QUIET_GC=${options.quiet} s, ${options.containers} containers started and ${options.containers - 5} removed first (${churnS.toFixed(0)} s)`,
      `${os.cpus().length} vCPU, kernel ${os.release()}, Node ${process.version}, load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before / ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} after`,
      '',
      '| phase | answers | lost | latency p50 / p99 / p99.9 / max, ms | quiet GCs during | its pause, ms |',
      '|---|---|---|---|---|---|',
      row('busy', options.busyQps, busy),
      row('light', options.lightQps, light),
      row('light again (control)', options.lightQps, control),
      `| idle after, ${(4 * options.quiet + 3).toFixed(0)} s | | | | ${idle.collections - control.after.collections} | |`,
      '',
      `collections: ${s0.collections} at start, ${s1.collections} after the churn (busy, so none), ${idle.collections} at the end; longest pause ${f(idle.maxPauseMs, 2)} ms (GC ${f(idle.lastGcMs ?? NaN, 2)}, malloc_trim ${f(idle.lastTrimMs ?? NaN, 2)}); router RSS ${rssAfterChurn} MB after the churn -> ${rssEnd} MB at the end; committed heap ${(idle.committedBytes / 1048576).toFixed(1)} MB`,
      '',
    ];
    process.stdout.write(out.join('\n'));
  } finally {
    await lab.destroy();
  }
}

runBench(() => run(parseOptions(process.argv.slice(2))));
