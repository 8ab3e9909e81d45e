/** Command-line options shared by the benchmarks: `--NAME VALUE` pairs, checked against bounds. */
import { LoomError, toLoomError } from '../src/core/errors.js';

/** The number after `--NAME` (or `fallback`); ERR_INVALID_ARGUMENT outside min..max. */
export function numberOption(argv: readonly string[], name: string, fallback: number, min: number, max: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v < min || v > max) throw new LoomError('ERR_INVALID_ARGUMENT', `--${name} must be a number in ${min}..${max}`);
  return v;
}

/** The text after `--NAME`, or null when the option is not given. */
export function textOption(argv: readonly string[], name: string): string | null {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? null) : null;
}

/** Runs a benchmark's main; a failure prints `error CODE: message` and exits 2. */
export function runBench(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const e = toLoomError(err);
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    process.exitCode = 2;
  });
}
