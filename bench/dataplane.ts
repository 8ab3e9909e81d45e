/**
 * Data-plane benchmark: container to container across two lab hosts, for every path in
 * bench/dataplane/paths (a bare veth, hand-made kernel VXLAN, tinc, nebula, wireguard-go, and
 * Loom's own paths), side by side in ONE run, under each underlay condition of
 * bench/dataplane/conditions.ts (clean, IPv4 fragments dropped, 1 % loss, MTU 1400): single-stream
 * iperf3 throughput, median ping RTT, daemon and machine CPU, CPU per Gbit/s, the IPv4 fragments
 * seen on the underlay, and ratios against the VXLAN row and the best encrypted peer under the same
 * condition, with Loom's targets judged pass/fail. Prints a markdown table and writes
 * docs/dataplane-bench.svg.
 *
 * Run as root: npm run build && node dist/bench/dataplane.js [--runs 3] [--only vxlan,tinc] [--conditions clean,loss1]
 *
 * The lab's underlay is a realistic wire by default (GSO trains segmented before the underlay
 * bridge, `realisticWire`), so a random drop loses one packet, not a 64 KB train; --gso-wire turns
 * that off.
 *
 * Installs nothing: a peer whose binary is missing is "skipped (not installed)". Everything is
 * built in namespaces `lm<6 hex>-*` (one lab per path, one prefix per run) and removed after each
 * path, and on failure, exit and SIGINT; only PIDs started here are killed. Bounded: every wait
 * has a timeout and no new path starts after --budget seconds.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomError, toLoomError } from '../src/core/errors.js';
import { Lab } from '../src/lab/index.js';
import { systemRunner } from '../src/os/runner.js';
import { parseBenchArgs, USAGE, type BenchOptions } from './dataplane/args.js';
import { BenchContext } from './dataplane/context.js';
import { missingExecutables } from './dataplane/executables.js';
import { measurePath, type MeasureOptions } from './dataplane/measure.js';
import { DATA_PATHS } from './dataplane/paths/index.js';
import { CONDITIONS, runsUnder, targetFor, type UnderlayCondition } from './dataplane/conditions.js';
import { buildRows, renderMarkdownTable, renderVerdicts } from './dataplane/report.js';
import { renderSvg } from './dataplane/svg.js';
import type { DataPath, PathOutcome, PathResult, PathSession } from './dataplane/types.js';

const SETUP_LIMIT_MS = 60_000;
const BASE_TOOLS = ['ip', 'ss', 'sysctl', 'nft', 'iperf3', 'ping'];

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LoomError('ERR_TIMEOUT', `${what} took more than ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** The last lines of every log a path's processes wrote, to explain a failure. */
function logTails(dir: string, lines = 6): string {
  let out = '';
  try {
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.log'))) {
      const text = readFileSync(join(dir, f), 'utf8').trimEnd();
      if (text) out += `  --- ${f}\n${text.split('\n').slice(-lines).map((l) => `  ${l}`).join('\n')}\n`;
    }
  } catch {
    // no logs
  }
  return out;
}

/** One line for the table: the code, and for a failed command its program and stderr (not its arguments, which may be long). */
function describeFailure(e: LoomError): string {
  const d = e.detail ?? {};
  const args = Array.isArray(d['args']) ? d['args'].map(String) : [];
  if (typeof d['stderr'] === 'string' && args.length > 0) {
    const program = args[0] === 'netns' && args[1] === 'exec' ? args.slice(3, 5).join(' ') : (typeof d['cmd'] === 'string' ? d['cmd'] : '');
    return `${e.code}: ${program}: ${d['stderr'].trim().split('\n').pop()?.slice(0, 120) ?? ''}`;
  }
  return `${e.code}: ${e.message.split('\n')[0]?.slice(0, 160) ?? ''}`;
}

async function runPath(path: DataPath, condition: UnderlayCondition, prefix: string, options: BenchOptions, measure: MeasureOptions, deadline: number): Promise<PathOutcome> {
  if (path.pending !== undefined) return { kind: 'pending', reason: path.pending };
  const missing = missingExecutables(path.requires);
  if (missing.length > 0) return { kind: 'skipped', reason: `not installed: ${missing.join(', ')}` };
  if (Date.now() > deadline) return { kind: 'skipped', reason: `time budget of ${options.budgetSeconds} s used up` };
  let lab: Lab;
  try {
    lab = await Lab.create({ prefix, hosts: 2, mtu: condition.mtu, realisticWire: !options.gsoWire });
  } catch (err) {
    return { kind: 'failed', reason: describeFailure(toLoomError(err)) };
  }
  let ctx: BenchContext | undefined;
  let session: PathSession | undefined;
  try {
    // Before setup: a path's own MTU and reachability probing meets the condition.
    if (condition.degrade !== undefined) await lab.degrade(condition.degrade);
    ctx = new BenchContext(lab, join(lab.workDir, path.id), systemRunner);
    session = await withDeadline(path.setup(ctx), SETUP_LIMIT_MS, `${path.id} setup`);
    return { kind: 'measured', measurement: await measurePath(ctx, session, measure) };
  } catch (err) {
    const e = toLoomError(err);
    if (ctx) progress(logTails(ctx.workDir));
    return { kind: 'failed', reason: describeFailure(e) };
  } finally {
    await session?.teardown?.().catch(() => undefined);
    await ctx?.destroy();
    await lab.destroy();
  }
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await systemRunner.run(cmd, args, { allowFailure: true, timeoutMs: 5000 }).catch(() => null);
  const text = `${r?.stdout ?? ''}\n${r?.stderr ?? ''}`.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
  return text ?? 'unknown';
}

async function machineDescription(): Promise<string[]> {
  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
  const debian = existsSync('/etc/debian_version') ? readFileSync('/etc/debian_version', 'utf8').trim() : 'unknown';
  const versions = await Promise.all([
    firstLine('iperf3', ['--version']),
    firstLine('tincd', ['--version']),
    firstLine('nebula', ['-version']),
    firstLine('wireguard-go', ['--version']),
  ]);
  return [
    `${os.cpus().length} vCPU (${cpuModel}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, kernel ${os.release()}, Debian ${debian}, Node ${process.version}`,
    `tools: ${versions.join('; ')}`,
  ];
}

async function main(): Promise<number> {
  const root = repoRoot();
  const options = parseBenchArgs(
    process.argv.slice(2),
    DATA_PATHS.map((p) => p.id),
    join(root, 'docs', 'dataplane-bench.svg'),
  );
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) throw new LoomError('ERR_UNAVAILABLE', 'the data-plane benchmark needs root (network namespaces)');
  // tincd and friends live in sbin; a sudo-less root shell may not have it on PATH.
  const path = process.env['PATH'] ?? '';
  process.env['PATH'] = [path, '/usr/local/sbin', '/usr/sbin', '/sbin'].filter((p) => p !== '').join(':');
  const missingBase = missingExecutables(BASE_TOOLS);
  if (missingBase.length > 0) throw new LoomError('ERR_UNAVAILABLE', `missing ${missingBase.join(', ')} (bash scripts/install.sh installs them)`);

  const clockTicks = Number((await systemRunner.run('getconf', ['CLK_TCK'])).stdout.trim());
  const measure: MeasureOptions = {
    seconds: options.seconds,
    runs: options.runs,
    pingCount: options.pingCount,
    pingIntervalSeconds: 0.02,
    clockTicksPerSecond: Number.isInteger(clockTicks) && clockTicks > 0 ? clockTicks : 100,
    cores: os.cpus().length,
  };
  const prefix = `lm${randomBytes(3).toString('hex')}`;
  const startedAt = new Date();
  const deadline = Date.now() + options.budgetSeconds * 1000;
  const conditions = options.conditions.map((id) => CONDITIONS.find((c) => c.id === id)!);
  const plan = conditions.flatMap((condition) => DATA_PATHS.filter((p) => runsUnder(p, condition, options.only)).map((path) => ({ condition, path })));
  progress(
    `data-plane bench, run ${prefix}: ${plan.length} rows under ${conditions.map((c) => c.id).join(', ')}, ${options.runs} x ${options.seconds} s iperf3 each, ` +
      `${options.gsoWire ? 'GSO trains cross the underlay whole' : 'realistic wire (gso_max_segs 1)'}, budget ${options.budgetSeconds} s`,
  );

  // On a signal the lab's own handler tears the live lab down and exits; this one only keeps
  // the loop from starting another path meanwhile, and exits at once when no lab is live.
  let abortedBy: NodeJS.Signals | null = null;
  let labLive = false;
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.on(sig, () => {
      abortedBy = sig;
      if (!labLive) process.exit(128 + num);
    });
  }

  const results: PathResult[] = [];
  for (const { condition, path: p } of plan) {
    if (abortedBy !== null) break;
    const t0 = Date.now();
    labLive = true;
    const outcome = await runPath(p, condition, prefix, options, measure, deadline).finally(() => {
      labLive = false;
    });
    if (abortedBy !== null) break;
    let summary: string;
    if (outcome.kind === 'measured') {
      const m = outcome.measurement;
      summary = `${Math.round(m.runs.map((r) => r.mbps).sort((a, b) => a - b)[Math.floor(m.runs.length / 2)] ?? 0)} Mbit/s, ${m.rttMedianMs.toFixed(3)} ms, ${m.underlayFragments ?? '?'} fragments`;
    } else {
      summary = outcome.kind === 'pending' ? 'pending' : `${outcome.kind}: ${outcome.reason}`;
    }
    progress(`  ${condition.id.padEnd(8)} ${p.id.padEnd(15)} ${summary} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const target = targetFor(p.id, condition.id);
    results.push({ condition: condition.id, id: p.id, label: p.label, group: p.group, encrypted: p.encrypted, ...(target ? { target } : {}), outcome });
  }

  const rows = buildRows(results);
  const machine = await machineDescription();
  const when = startedAt.toISOString().replace(/\.\d+Z$/, 'Z');
  const header = [
    `Data-plane benchmark, ${when}, run ${prefix}`,
    ...machine,
    `Container to container across two lab hosts; iperf3 -t ${options.seconds} single TCP stream x ${options.runs}; RTT = median of ${options.pingCount} pings 20 ms apart.`,
    'CPU in % of one core (100 = one core busy): daemon = the path\'s user-space processes on both hosts; machine = everything; CPU per Gbit/s = daemon CPU % / (Mbit/s / 1000).',
    `Underlay: ${conditions.map((c) => `${c.id} = ${c.label}`).join('; ')}; ${options.gsoWire ? 'GSO trains cross it whole (--gso-wire)' : 'a realistic wire (gso_max_segs 1 on every veth end: GSO trains segmented before the underlay)'}. Fragments = IPv4 fragments on the underlay bridge during the row. Peers' MTU is lowered by what the underlay MTU lost; Loom's is its own.`,
  ];
  process.stdout.write(`\n${header.join('\n')}\n\n${renderMarkdownTable(rows)}\nTargets (ratios against the best of tinc/nebula/wireguard-go under the same condition):\n${renderVerdicts(rows)}`);
  if (options.svgPath !== null) {
    mkdirSync(dirname(options.svgPath), { recursive: true });
    writeFileSync(options.svgPath, renderSvg(rows, 'Loom data-plane benchmark', `${when}, ${machine[0] ?? ''}`));
    progress(`chart: ${options.svgPath}`);
  }
  if (options.jsonPath !== null) {
    writeFileSync(options.jsonPath, JSON.stringify({ startedAt: when, prefix, machine, options, results, rows }, null, 1) + '\n');
    progress(`json: ${options.jsonPath}`);
  }
  progress(`done in ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s`);
  return results.some((r) => r.outcome.kind === 'failed') ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = toLoomError(err);
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    process.exitCode = 2;
  },
);
