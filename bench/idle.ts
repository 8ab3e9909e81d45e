/**
 * Idle cost (issue 14): the CPU a router spends with three peers and no traffic, next to an idle
 * `sleep` started in the same run, and the underlay traffic the idle mesh makes.
 *
 *   npm run build && sudo node dist/bench/idle.js [--seconds 60] [--routers 4] [--settle 10]
 *        [--json FILE]
 *
 * Set-up: a lab of --routers hosts (default 4: every router has three peers), each running
 * `loom launch` with every other host as a target (defaults otherwise: kernel fast path, DNS,
 * IPAM, metrics). Once every router has an established connection to every other one, the
 * routers are left alone for --settle seconds (the start-up's gossip, first probes, path
 * choices), then measured for --seconds: utime + stime from /proc/PID/stat (clock ticks) of
 * each router and of a `sleep` started in host 1 at the same time, and the bytes on each host's
 * underlay interface (eth0) both ways. "% of a core" = CPU seconds / wall seconds.
 *
 * Bounded: launch and convergence wait at most 60 s; the measurement is --seconds (5..600).
 * Nothing leaves the machine: the lab's namespaces only; the lab stops its PIDs and removes its
 * namespaces at the end, on failure and on SIGINT/SIGTERM.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { LoomError } from '../src/core/errors.js';
import { Lab, type LabHost } from '../src/lab/index.js';
import { LoomCli } from '../src/demo/loom-cli.js';
import { pollUntil } from '../src/demo/poll.js';
import { establishedTo } from '../src/demo/report.js';
import { systemRunner } from '../src/os/runner.js';
import { numberOption, runBench, textOption } from './options.js';
import { cpuTicks } from '../test/helpers/proc.js';

interface Options {
  seconds: number;
  routers: number;
  settle: number;
  json: string | null;
}

function parseOptions(argv: string[]): Options {
  const num = (name: string, fallback: number, min: number, max: number): number => numberOption(argv, name, fallback, min, max);
  return { seconds: num('seconds', 60, 5, 600), routers: num('routers', 4, 2, 8), settle: num('settle', 10, 0, 120), json: textOption(argv, 'json') };
}

/** Resident set of a process in MB (VmRSS), NaN when it is gone. */
function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** eth0's rx + tx bytes and packets in a host (its own /sys through `ip netns exec`). */
async function underlayCounters(lab: Lab, host: LabHost): Promise<{ bytes: number; packets: number }> {
  const dir = '/sys/class/net/eth0/statistics';
  const r = await lab.exec(host, 'cat', [`${dir}/rx_bytes`, `${dir}/tx_bytes`, `${dir}/rx_packets`, `${dir}/tx_packets`], { timeoutMs: 5000 });
  const [rxB, txB, rxP, txP] = r.stdout.trim().split('\n').map(Number);
  return { bytes: (rxB ?? NaN) + (txB ?? NaN), packets: (rxP ?? NaN) + (txP ?? NaN) };
}

async function run(options: Options): Promise<void> {
  if (process.getuid?.() !== 0) throw new LoomError('ERR_UNAVAILABLE', 'the idle benchmark needs root (network namespaces)');
  const clockTicks = Number((await systemRunner.run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const loadBefore = os.loadavg();
  const startedAt = new Date();
  const lab = await Lab.create({ hosts: options.routers, subnet: '192.168.78.0/24' });
  try {
    const cli = new LoomCli(lab);
    const hosts = lab.hosts;
    process.stderr.write(`idle bench, run ${lab.prefix}: ${hosts.length} routers\n`);
    const routers: Array<{ host: LabHost; pid: number; name: string }> = [];
    for (const h of hosts) {
      const launched = await cli.launch(h, { peers: hosts.filter((o) => o !== h).map((o) => o.address) });
      routers.push({ host: h, ...launched });
    }
    await pollUntil(
      async () => {
        for (const r of routers) {
          const report = await cli.report(r.host);
          if (!routers.every((o) => o === r || establishedTo(report, o.name) !== undefined)) return undefined;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'every router connected to every other' },
    );
    process.stderr.write(`  connected; settling ${options.settle} s, then measuring ${options.seconds} s\n`);
    // Started before the settling time, so its own start-up (exec) is not in the measurement.
    const sleeper = lab.start(hosts[0]!, 'sleep', [String(options.settle + options.seconds + 60)]);
    await new Promise((r) => setTimeout(r, Math.max(1, options.settle) * 1000));
    const pids = [...routers.map((r) => r.pid), sleeper.pid];
    const ticksBefore = pids.map(cpuTicks);
    const netBefore = await Promise.all(routers.map((r) => underlayCounters(lab, r.host)));
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, options.seconds * 1000));
    const ticksAfter = pids.map(cpuTicks);
    const netAfter = await Promise.all(routers.map((r) => underlayCounters(lab, r.host)));
    const wall = (performance.now() - t0) / 1000;
    // The quiet GC (src/daemon/quiet-gc.ts) runs in these routers: how often it collected, start-up included.
    const quietGcs = await Promise.all(routers.map(async (r) => ((await cli.report(r.host)) as { memory?: { quietGc?: { collections?: number } } }).memory?.quietGc?.collections ?? NaN));
    const percent = (i: number): number => {
      const a = ticksBefore[i];
      const b = ticksAfter[i];
      return a === null || b === null || a === undefined || b === undefined ? NaN : (100 * (b - a)) / clockTicks / wall;
    };
    const rows = routers.map((r, i) => {
      const cpu = percent(i);
      const bytes = netAfter[i]!.bytes - netBefore[i]!.bytes;
      const packets = netAfter[i]!.packets - netBefore[i]!.packets;
      return { host: r.host.name, pid: r.pid, cpuPercent: cpu, rssMb: rssMb(r.pid), underlayKbitPerSecond: (8 * bytes) / 1000 / wall, underlayPacketsPerSecond: packets / wall, quietGcs: quietGcs[i]! };
    });
    const sleepCpu = percent(routers.length);
    const mean = rows.reduce((n, r) => n + r.cpuPercent, 0) / rows.length;
    const worst = Math.max(...rows.map((r) => r.cpuPercent));
    const f = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
    const out = [
      '',
      `Idle cost, ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}, run ${lab.prefix}: ${routers.length} routers (${routers.length - 1} peers each), no traffic, ${f(wall, 1)} s measured after ${options.settle} s settling`,
      `${os.cpus().length} vCPU, kernel ${os.release()}, Node ${process.version}, load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before / ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} after; clock tick ${1000 / clockTicks} ms`,
      '',
      '| process | % of a core | RSS MB | underlay kbit/s (rx+tx) | underlay packets/s | quiet GCs since start |',
      '|---|---|---|---|---|---|',
      ...rows.map((r) => `| router ${r.host} | ${f(r.cpuPercent)} | ${f(r.rssMb, 0)} | ${f(r.underlayKbitPerSecond, 1)} | ${f(r.underlayPacketsPerSecond, 1)} | ${f(r.quietGcs, 0)} |`),
      `| reference: \`sleep\`, same run | ${f(sleepCpu)} | ${f(rssMb(sleeper.pid), 0)} | | | |`,
      '',
      `goal: a router with ${routers.length - 1} peers and no traffic under 1 % of a core: mean ${f(mean)} %, worst ${f(worst)} % (sleep ${f(sleepCpu)} %): **${worst < 1 ? 'pass' : 'fail'}**`,
      '',
    ];
    process.stdout.write(out.join('\n'));
    if (options.json !== null) writeFileSync(options.json, `${JSON.stringify({ startedAt, prefix: lab.prefix, options, wall, rows, sleepCpu }, null, 1)}\n`);
  } finally {
    await lab.destroy();
  }
}

runBench(() => run(parseOptions(process.argv.slice(2))));
