/**
 * `npm run fuzz`: every target of ./targets.ts for --cases N (default 100,000), each in its own
 * worker thread, so a hang is caught (the worker is terminated after --time-limit seconds and the
 * target and seed reported) and memory is measured per target. Prints cases, cases/s, accepted vs
 * rejected, the slowest case and heap/RSS before and after; a failure prints fast-check's report
 * (seed, path, counterexample). Exits 1 if any target fails, hangs or grows its heap by more
 * than --max-growth-mb.
 *
 *   npm run fuzz -- --cases 2000 --target dns.DnsServer.answer --seed 42
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { FuzzStats } from './harness.js';

interface WorkerInput {
  target: string;
  cases: number;
  seed: number;
  path?: string;
}

type WorkerMessage = { kind: 'stats'; stats: FuzzStats } | { kind: 'error'; message: string };

async function workerMain(input: WorkerInput): Promise<void> {
  const { targetNamed } = await import('./targets.js');
  const { runTarget } = await import('./harness.js');
  const target = targetNamed(input.target);
  if (!target) {
    parentPort!.postMessage({ kind: 'error', message: `no target ${input.target}` } satisfies WorkerMessage);
    return;
  }
  const stats = await runTarget(target, { cases: input.cases, seed: input.seed, ...(input.path === undefined ? {} : { path: input.path }) });
  parentPort!.postMessage({ kind: 'stats', stats } satisfies WorkerMessage);
}

interface Outcome {
  target: string;
  stats: FuzzStats | null;
  problem: string | null;
}

function runInWorker(input: WorkerInput, timeLimitMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: input, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
    let settled = false;
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ target: input.target, stats: null, problem: `no result within ${timeLimitMs / 1000} s (a hang?): rerun with --target ${input.target} --seed ${input.seed}` }), timeLimitMs);
    worker.on('message', (m: WorkerMessage) => finish(m.kind === 'stats' ? { target: input.target, stats: m.stats, problem: null } : { target: input.target, stats: null, problem: m.message }));
    worker.on('error', (err) => finish({ target: input.target, stats: null, problem: `worker crashed: ${err.stack ?? String(err)} (seed ${input.seed})` }));
    worker.on('exit', (code) => finish({ target: input.target, stats: null, problem: `worker exited with code ${code} before reporting (seed ${input.seed})` }));
  });
}

function pad(text: string | number, width: number): string {
  return String(text).padStart(width);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '100000' },
      target: { type: 'string', multiple: true },
      seed: { type: 'string' },
      path: { type: 'string' },
      'time-limit': { type: 'string', default: '900' },
      'max-growth-mb': { type: 'string', default: '64' },
      list: { type: 'boolean', default: false },
    },
  });
  const { FUZZ_TARGETS } = await import('./targets.js');
  if (values.list) {
    for (const t of FUZZ_TARGETS) console.log(t.name);
    return 0;
  }
  const cases = Number(values.cases);
  const seed = values.seed === undefined ? Date.now() & 0x7fffffff : Number(values.seed);
  const timeLimitMs = Number(values['time-limit']) * 1000;
  const maxGrowthMb = Number(values['max-growth-mb']);
  if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed) || !(timeLimitMs > 0) || !(maxGrowthMb > 0)) {
    console.error('usage: fuzz [--cases N] [--target NAME]... [--seed S] [--path P] [--time-limit SECONDS] [--max-growth-mb MB] [--list]');
    return 2;
  }
  const names = values.target ?? FUZZ_TARGETS.map((t) => t.name);
  const unknown = names.filter((n) => !FUZZ_TARGETS.some((t) => t.name === n));
  if (unknown.length > 0) {
    console.error(`no such target: ${unknown.join(', ')} (see --list)`);
    return 2;
  }
  console.log(`fuzz: ${names.length} targets, ${cases} cases each, seed ${seed}, node ${process.version}`);
  console.log(`${'target'.padEnd(34)}${pad('cases', 8)}${pad('cases/s', 9)}${pad('accepted', 10)}${pad('rejected', 10)}${pad('slowest', 10)}${pad('heap MB', 14)}${pad('rss MB', 14)}`);
  let failed = 0;
  const started = Date.now();
  for (const name of names) {
    const outcome = await runInWorker({ target: name, cases, seed, ...(values.path === undefined ? {} : { path: values.path }) }, timeLimitMs);
    const s = outcome.stats;
    let problem = outcome.problem;
    if (s) {
      console.log(
        `${name.padEnd(34)}${pad(s.cases, 8)}${pad(s.casesPerSecond, 9)}${pad(s.accepted, 10)}${pad(s.rejected, 10)}${pad(`${s.slowestCaseMs}ms`, 10)}${pad(`${s.heapBeforeMb}→${s.heapAfterMb}`, 14)}${pad(`${s.rssBeforeMb}→${s.rssAfterMb}`, 14)}`,
      );
      if (s.failure) problem = `${s.failure}\n(rerun: npm run fuzz -- --target ${name} --seed ${s.seed} --cases ${cases}; add --path with the report's path to replay only the shrunk case)`;
      else if (s.heapAfterMb - s.heapBeforeMb > maxGrowthMb) problem = `heap grew by ${Math.round(s.heapAfterMb - s.heapBeforeMb)} MB (limit ${maxGrowthMb} MB)`;
    } else {
      console.log(`${name.padEnd(34)} FAILED`);
    }
    if (problem) {
      failed++;
      console.log(`  FAIL ${name}: ${problem.split('\n').join('\n    ')}`);
    }
  }
  console.log(`fuzz: ${names.length - failed}/${names.length} targets passed in ${Math.round((Date.now() - started) / 1000)} s (seed ${seed})`);
  return failed === 0 ? 0 : 1;
}

if (isMainThread) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  workerMain(workerData as WorkerInput).catch((err: unknown) => parentPort!.postMessage({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerMessage));
}
