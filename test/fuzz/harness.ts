/**
 * Runs one fuzz target for N cases with fast-check and counts what happened: accepted, rejected
 * (with a reason), the slowest case, and the memory before and after. A case that throws anything
 * but a reasoned rejection, or takes longer than the target's case timeout, fails the run with
 * fast-check's report (seed, path, shrunk counterexample). Used by `npm run fuzz` (in a worker per
 * target, ./run.ts) and by test/unit/fuzz/fuzz.test.ts.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import type { FuzzTarget, Verdict } from './targets.js';

export interface FuzzRunOptions {
  cases: number;
  seed: number;
  /** Where fast-check resumes a shrunk counterexample (from a failure report). */
  path?: string;
}

export interface FuzzStats {
  target: string;
  cases: number;
  accepted: number;
  rejected: number;
  elapsedMs: number;
  casesPerSecond: number;
  slowestCaseMs: number;
  heapBeforeMb: number;
  heapAfterMb: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  seed: number;
  /** fast-check's report when a case failed; null on success. */
  failure: string | null;
}

const DEFAULT_CASE_TIMEOUT_MS = 1000;

/** One case: the target's verdict, or a thrown Error describing the bug. */
async function runCase(target: FuzzTarget, input: unknown): Promise<Verdict> {
  const timeoutMs = target.caseTimeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = target.run(input);
    const verdict =
      outcome instanceof Promise
        ? await Promise.race([
            outcome,
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`case took over ${timeoutMs} ms (hang)`)), timeoutMs);
            }),
          ])
        : outcome;
    if (verdict !== 'accepted' && verdict !== 'rejected') throw new Error(`target answered ${String(verdict)}`);
    return verdict;
  } catch (err) {
    if (target.isRejection(err) && err instanceof Error && err.message.trim() !== '') return 'rejected';
    if (target.isRejection(err)) throw new Error(`rejected without a reason: ${String(err)}`, { cause: err });
    throw err;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function mb(bytes: number): number {
  return Math.round((bytes / (1 << 20)) * 10) / 10;
}

/** A full collection, so heap figures compare live data (workers cannot take --expose-gc; this flag can be set late). */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** fast-check's report (seed, path, counterexample) and the error the counterexample raised. */
function failureReport(details: fc.RunDetails<[unknown]>): string {
  const report = fc.defaultReportMessage(details) ?? 'failed';
  const err = details.errorInstance;
  const error = err instanceof Error ? (err.stack ?? err.message).split('\n').slice(0, 6).join('\n') : String(err);
  return `${report}\n${error}`;
}

export async function runTarget(target: FuzzTarget, options: FuzzRunOptions): Promise<FuzzStats> {
  collectGarbage();
  const before = process.memoryUsage();
  let accepted = 0;
  let rejected = 0;
  let slowest = 0;
  const started = performance.now();
  const property = fc.asyncProperty(target.arbitrary, async (input) => {
    const t0 = performance.now();
    const verdict = await runCase(target, input);
    const took = performance.now() - t0;
    if (took > slowest) slowest = took;
    if (verdict === 'accepted') accepted++;
    else rejected++;
  });
  const details = await fc.check(property, {
    numRuns: options.cases,
    seed: options.seed,
    ...(options.path === undefined ? {} : { path: options.path }),
    // Shrinking a hang can take long; keep it bounded.
    interruptAfterTimeLimit: 10 * 60_000,
    endOnFailure: false,
  });
  const elapsedMs = performance.now() - started;
  collectGarbage();
  const after = process.memoryUsage();
  const cases = details.numRuns;
  return {
    target: target.name,
    cases,
    accepted,
    rejected,
    elapsedMs: Math.round(elapsedMs),
    casesPerSecond: Math.round(cases / (elapsedMs / 1000)),
    slowestCaseMs: Math.round(slowest * 10) / 10,
    heapBeforeMb: mb(before.heapUsed),
    heapAfterMb: mb(after.heapUsed),
    rssBeforeMb: mb(before.rss),
    rssAfterMb: mb(after.rss),
    seed: options.seed,
    failure: details.failed ? failureReport(details) : null,
  };
}
