/**
 * IPAM through the API: allocations per second over the real HTTP API of a daemon started in
 * this process (real Router on an in-memory transport with no peers, the IPAM subsystem over
 * SQLite in a temp dir, API on its local socket @loom-bench/PID), next to GET /healthz on the same daemon in the
 * same run, as a ratio (what the API itself costs per request, measured on this machine).
 *
 *   node --import tsx bench/ipam-api.ts [--rounds 3] [--requests 10000] [--concurrency 64] [--seconds 15] [--json FILE]
 *
 * Method: the load generator is this script again in a child process (its own core, so the
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
 * Allocations change state, so they go to the daemon's local socket (its TCP API is read-only);
 * wrk, the cheaper C client this used when installed, speaks no unix sockets, so the figures are
 * no longer comparable with wrk's (docs/BENCHMARKS.md).
 * Nothing leaves the machine: the API is an abstract socket and the mesh transport is in memory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  const config = { ...parseLaunchOptions({ stateDir, name, nickname: 'bench', ipallocInit: `seed=${name}` }, [], {}, 'h'), httpPort: 0, apiSocket: `loom-bench/${process.pid}` };
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

function send(agent: Agent, socket: string, method: string, path: string, body: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: '\0' + socket, method, path, agent, headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
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
  /** The daemon's local socket (allocations change state: the TCP API refuses them). */
  socket: string;
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

/** Runs `load` in a child process (this file, with the job in the environment) and returns its result. */
async function loadInWorker(job: LoadJob): Promise<Run> {
  const result = await systemRunner.run(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    timeoutMs: (job.options.seconds + 30) * 1000,
    env: { ...process.env, [LOAD_CHILD_ENV]: JSON.stringify(job) },
  });
  return JSON.parse(result.stdout) as Run;
}

/** Requests for i = 0.. until `options.requests` or the deadline; `concurrency` in flight. */
async function load(options: Options, socket: string, makeRequest: (i: number) => { method: string; path: string; body?: string }): Promise<Run> {
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
      const status = await send(agent, socket, r.method, r.path, r.body);
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
    const socket = daemon.apiAddress.socket!;
    await loadInWorker({ options: { ...options, requests: Math.min(2_000, options.requests) }, socket, target: 'healthz' }); // warm-up
    const healthz: Run[] = [];
    const allocate: Run[] = [];
    for (let round = 0; round < options.rounds; round++) {
      healthz.push(await loadInWorker({ options, socket, target: 'healthz' }));
      allocate.push(await loadInWorker({ options, socket, target: 'allocate', round }));
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
  `IPAM API bench: median of ${options.rounds} rounds of ${options.requests} requests from a Node client on the local socket, ${options.concurrency} concurrent, at most ${options.seconds} s each`,
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
  process.stdout.write(JSON.stringify(await load(job.options, job.socket, (i) => requestFor(job, i))));
}
