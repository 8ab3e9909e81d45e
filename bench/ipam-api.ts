/**
 * IPAM through the API: allocations per second over the real HTTP API of a daemon started in
 * this process (real Router on an in-memory transport with no peers, the IPAM subsystem over
 * SQLite in a temp dir, API on 127.0.0.1 port 0), next to GET /healthz on the same daemon in the
 * same run, as a ratio (what the API itself costs per request, measured on this machine).
 *
 *   node --import tsx bench/ipam-api.ts [--rounds 3] [--requests 10000] [--concurrency 64] [--seconds 15] [--json FILE]
 *
 * Method: the load generator is wrk when installed (scripts/install.sh installs it): a C client
 * costs far less per request than Node's, so the figure is the daemon's. Otherwise it is this script again in a child process (its own core, so the
 * client does not eat the daemon's event loop; started through the command runner): a keep-alive agent with --concurrency sockets; that many loops each
 * send one request, await the answer, and send the next, until --requests are done or --seconds
 * pass (bounded in count and time). Each round measures /healthz then allocations (new ids);
 * the median round of each is reported, so load from elsewhere on the machine hits both alike. Every allocation is for a new container id (no idempotent short cuts). The
 * durability variants run one after another, each on a fresh daemon and state dir:
 *   normal+group  the daemon's setting: synchronous=NORMAL, allocation writes of one event-loop
 *                 turn committed in one transaction, answered after the commit
 *   full+group    fsync at every commit, still batched
 *   normal        one transaction per allocation
 *   full          one fsync per allocation (the previous setting)
 * Nothing leaves the machine: the API listens on loopback and the mesh transport is in memory.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/core/clock.js';
import { LoomError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import { systemRunner } from '../src/os/runner.js';
import { startDaemon, type RunningDaemon } from '../src/daemon/foreground.js';
import { parseLaunchOptions } from '../src/daemon/options.js';
import { createIpamSubsystemFactory } from '../src/daemon/subsystems.js';
import type { SqliteStoreOptions } from '../src/ipam/store-sqlite.js';
import { Router } from '../src/mesh/router.js';
import { MemoryNetwork } from '../src/mesh/transport-memory.js';

interface Options {
  rounds: number;
  requests: number;
  concurrency: number;
  seconds: number;
  json: string | null;
}

interface Run {
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

const VARIANTS: Array<{ name: string; store: SqliteStoreOptions }> = [
  { name: 'normal+group', store: { synchronous: 'NORMAL', groupCommit: true } },
  { name: 'full+group', store: { synchronous: 'FULL', groupCommit: true } },
  { name: 'normal', store: { synchronous: 'NORMAL', groupCommit: false } },
  { name: 'full', store: { synchronous: 'FULL', groupCommit: false } },
];

function parseArgs(argv: string[]): Options {
  const options: Options = { rounds: 3, requests: 10_000, concurrency: 64, seconds: 15, json: null };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const n = Number(value);
    if (flag === '--json' && value) options.json = value;
    else if (flag === '--rounds' && Number.isInteger(n) && n > 0 && n <= 20) options.rounds = n;
    else if (flag === '--requests' && Number.isInteger(n) && n > 0 && n <= 1_000_000) options.requests = n;
    else if (flag === '--concurrency' && Number.isInteger(n) && n > 0 && n <= 1024) options.concurrency = n;
    else if (flag === '--seconds' && n > 0 && n <= 600) options.seconds = n;
    else throw new LoomError('ERR_INVALID_ARGUMENT', `bad argument ${String(flag)} ${String(value)}`);
  }
  return options;
}

async function startBenchDaemon(stateDir: string, store: SqliteStoreOptions): Promise<RunningDaemon> {
  const name = '02:00:00:00:be:01';
  const config = { ...parseLaunchOptions({ stateDir, name, nickname: 'bench', ipallocInit: `seed=${name}` }, [], {}, 'h'), httpPort: 0 };
  const net = new MemoryNetwork(systemClock);
  return startDaemon(
    {
      logger: silentLogger,
      subsystems: [createIpamSubsystemFactory({ store })],
      createRouter: (cfg, identity, logger) => new Router({ transport: net.transport('10.0.0.1:6783'), clock: systemClock, logger }, { identity, port: cfg.port }),
    },
    config,
  );
}

function send(agent: Agent, port: number, method: string, path: string, body: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent, headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new LoomError('ERR_TIMEOUT', 'request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

type Target = 'healthz' | 'allocate';

interface LoadJob {
  options: Options;
  port: number;
  target: Target;
  /** Makes container ids unique across rounds. */
  round?: number;
}

function median(runs: Run[]): Run {
  return [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(runs.length / 2)]!;
}

function requestFor(job: LoadJob, i: number): { method: string; path: string; body?: string } {
  return job.target === 'healthz' ? { method: 'GET', path: '/healthz' } : { method: 'POST', path: '/ipam/allocate', body: JSON.stringify({ containerId: `bench-${job.round ?? 0}-${i}` }) };
}

const LOAD_CHILD_ENV = 'LOOM_BENCH_IPAM_LOAD';

const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => existsSync(p));

/** wrk's script: every allocation for a new container id (thread number + a counter). */
const WRK_ALLOCATE_LUA = `
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/ipam/allocate", { ["Content-Type"] = "application/json" }, '{"containerId":"wrk' .. ROUND .. '-' .. tid .. '-' .. n .. '"}')
end
`;

function wrkMs(text: string | undefined): number {
  const m = /^([0-9.]+)(us|ms|s)$/.exec(text ?? '');
  if (!m) return 0;
  const v = Number(m[1]);
  return Math.round((m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v) * 100) / 100;
}

/**
 * The load from wrk (C, one thread, `concurrency` keep-alive connections, `seconds` long): a
 * client far cheaper per request than Node's, so the figure is the daemon's, not the client's.
 */
async function loadWithWrk(wrk: string, job: LoadJob): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'loom-bench-wrk-'));
  try {
    const script = join(dir, 'allocate.lua');
    writeFileSync(script, WRK_ALLOCATE_LUA.replace('ROUND', `"${job.round ?? 0}"`));
    const seconds = Math.max(1, Math.min(10, Math.round(job.options.seconds / 3)));
    const path = job.target === 'healthz' ? '/healthz' : '/ipam/allocate';
    const args = ['-t1', `-c${job.options.concurrency}`, `-d${seconds}s`, '--latency', ...(job.target === 'allocate' ? ['-s', script] : []), `http://127.0.0.1:${job.port}${path}`];
    const out = (await systemRunner.run(wrk, args, { timeoutMs: (seconds + 30) * 1000 })).stdout;
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    const perSecond = Math.round(Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1] ?? 0));
    const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(out)?.[1] ?? 0);
    return { requests, perSecond, p50Ms: wrkMs(/50%\s+(\S+)/.exec(out)?.[1]), p99Ms: wrkMs(/99%\s+(\S+)/.exec(out)?.[1]), errors };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `load` in a child process (this file, with the job in the environment) and returns its result. */
async function loadInWorker(job: LoadJob): Promise<Run> {
  if (WRK !== undefined) return loadWithWrk(WRK, job);
  const result = await systemRunner.run(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    timeoutMs: (job.options.seconds + 30) * 1000,
    env: { ...process.env, [LOAD_CHILD_ENV]: JSON.stringify(job) },
  });
  return JSON.parse(result.stdout) as Run;
}

/** Requests for i = 0.. until `options.requests` or the deadline; `concurrency` in flight. */
async function load(options: Options, port: number, makeRequest: (i: number) => { method: string; path: string; body?: string }): Promise<Run> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const deadline = performance.now() + options.seconds * 1000;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < options.requests && performance.now() < deadline) {
      const r = makeRequest(next++);
      const start = performance.now();
      const status = await send(agent, port, r.method, r.path, r.body);
      latencies.push(performance.now() - start);
      if (status !== 200) errors++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const ms = performance.now() - t0;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 100) / 100;
  return { requests: latencies.length, perSecond: Math.round((latencies.length / ms) * 1000), p50Ms: at(0.5), p99Ms: at(0.99), errors };
}

async function measure(options: Options, store: SqliteStoreOptions): Promise<{ healthz: Run; allocate: Run }> {
  const dir = mkdtempSync(join(tmpdir(), 'loom-bench-ipam-'));
  const daemon = await startBenchDaemon(dir, store);
  try {
    const port = daemon.apiAddress.port;
    await loadInWorker({ options: { ...options, requests: Math.min(2_000, options.requests) }, port, target: 'healthz' }); // warm-up
    const healthz: Run[] = [];
    const allocate: Run[] = [];
    for (let round = 0; round < options.rounds; round++) {
      healthz.push(await loadInWorker({ options, port, target: 'healthz' }));
      allocate.push(await loadInWorker({ options, port, target: 'allocate', round }));
    }
    return { healthz: median(healthz), allocate: median(allocate) };
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
const options = parseArgs(process.argv.slice(2));
const results: Record<string, { healthz: Run; allocate: Run; ratio: number }> = {};
console.log(
  WRK !== undefined
    ? `IPAM API bench: load from wrk (${WRK}), ${options.concurrency} keep-alive connections, median of ${options.rounds} rounds of ${Math.max(1, Math.min(10, Math.round(options.seconds / 3)))} s`
    : `IPAM API bench: median of ${options.rounds} rounds of ${options.requests} requests from a Node client, ${options.concurrency} concurrent, at most ${options.seconds} s each (install wrk for a cheaper client)`,
);
for (const v of VARIANTS) {
  const { healthz, allocate } = await measure(options, v.store);
  const ratio = Math.round((allocate.perSecond / healthz.perSecond) * 100) / 100;
  results[v.name] = { healthz, allocate, ratio };
  console.log(
    `${v.name.padEnd(13)} allocate ${String(allocate.perSecond).padStart(6)}/s (p50 ${allocate.p50Ms} ms, p99 ${allocate.p99Ms} ms, ${allocate.requests} done, ${allocate.errors} errors)` +
      `   GET /healthz ${String(healthz.perSecond).padStart(6)}/s   ratio ${ratio}`,
  );
}
if (options.json !== null) writeFileSync(options.json, `${JSON.stringify({ options, results }, null, 1)}\n`);
}

const childJob = process.env[LOAD_CHILD_ENV];
if (childJob === undefined) {
  await main();
} else {
  const job = JSON.parse(childJob) as LoadJob;
  process.stdout.write(JSON.stringify(await load(job.options, job.port, (i) => requestFor(job, i))));
}
