/**
 * Command-line options of bench/dataplane.ts, parsed once from argv. Bad input is
 * ERR_INVALID_ARGUMENT with a hint, never a crash.
 */
import { parseArgs } from 'node:util';
import { LoomError } from '../../src/core/errors.js';
import { CONDITION_IDS, type ConditionId } from './conditions.js';

export interface BenchOptions {
  /** iperf3 runs per path (the table shows the median). */
  runs: number;
  /** Seconds per iperf3 run. */
  seconds: number;
  pingCount: number;
  /** Path ids to run; empty = all (opt-in paths only when named). */
  only: string[];
  /** Underlay conditions to run, in table order (default all). */
  conditions: ConditionId[];
  /** Let GSO super-packets cross the underlay whole (the lab's default) instead of a realistic wire. */
  gsoWire: boolean;
  /** Where the chart goes; null = do not write one. */
  svgPath: string | null;
  /** Where the raw results go as JSON; null = nowhere. */
  jsonPath: string | null;
  /** The whole run stops starting new paths after this many seconds. */
  budgetSeconds: number;
  help: boolean;
}

export const USAGE = `usage: node dist/bench/dataplane.js [options]   (as root)
  --runs N        iperf3 runs per path, 1..10 (default 3)
  --seconds N     seconds per iperf3 run, 1..30 (default 5)
  --pings N       pings for the RTT median, 5..500 (default 50, 20 ms apart)
  --only a,b      only these path ids (default: all but opt-in ones such as loom-relay-enc-jumbo)
  --conditions a,b  underlay conditions: clean, nofrag (IPv4 fragments dropped), loss1 (1 %
                  random loss), mtu1400 (underlay MTU 1400); default all. Off the clean underlay
                  only the encrypted peers and Loom's relay rows run.
  --gso-wire      let GSO/TSO super-packets cross the underlay whole (faster kernel rows, but a
                  random drop loses a whole 64 KB train); default: segmented as on a real wire
  --svg FILE      chart output (default docs/dataplane-bench.svg); --no-svg to skip
  --json FILE     also write the raw results as JSON
  --budget N      stop starting new paths after N seconds (default 840)`;

function intIn(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^[0-9]{1,6}$/.test(value) || n < min || n > max) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `--${name} must be an integer ${min}..${max}, got "${value.slice(0, 20)}"`);
  }
  return n;
}

export function parseBenchArgs(argv: readonly string[], knownIds: readonly string[], defaultSvgPath: string): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        runs: { type: 'string' },
        seconds: { type: 'string' },
        pings: { type: 'string' },
        only: { type: 'string' },
        conditions: { type: 'string' },
        'gso-wire': { type: 'boolean' },
        svg: { type: 'string' },
        'no-svg': { type: 'boolean' },
        json: { type: 'string' },
        budget: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `${err instanceof Error ? err.message : String(err)}\n${USAGE}`, { cause: err });
  }
  const v = parsed.values;
  const only = v.only === undefined ? [] : v.only.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const unknown = only.filter((id) => !knownIds.includes(id));
  if (unknown.length > 0) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `unknown path id ${unknown.map((u) => `"${u.slice(0, 30)}"`).join(', ')}; known: ${knownIds.join(', ')}`);
  }
  const conditions = v.conditions === undefined ? [...CONDITION_IDS] : v.conditions.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const unknownConditions = conditions.filter((c) => !(CONDITION_IDS as readonly string[]).includes(c));
  if (unknownConditions.length > 0 || conditions.length === 0) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `unknown condition ${unknownConditions.map((u) => `"${u.slice(0, 30)}"`).join(', ') || '(none given)'}; known: ${CONDITION_IDS.join(', ')}`);
  }
  if (v['no-svg'] && v.svg !== undefined) throw new LoomError('ERR_INVALID_ARGUMENT', '--svg and --no-svg contradict each other');
  return {
    runs: intIn(v.runs, 'runs', 1, 10, 3),
    seconds: intIn(v.seconds, 'seconds', 1, 30, 5),
    pingCount: intIn(v.pings, 'pings', 5, 500, 50),
    only,
    conditions: [...new Set(conditions)] as ConditionId[],
    gsoWire: v['gso-wire'] ?? false,
    svgPath: v['no-svg'] ? null : (v.svg ?? defaultSvgPath),
    jsonPath: v.json ?? null,
    budgetSeconds: intIn(v.budget, 'budget', 10, 3600, 840),
    help: v.help ?? false,
  };
}
