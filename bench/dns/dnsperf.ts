/**
 * dnsperf 2.10's output, parsed. Its summary has qps and the average latency but no
 * percentiles, so latency runs add `-v`, which prints one line per answered query
 * (`> NOERROR name A 0.000123`, latency in seconds with microsecond resolution); the
 * percentiles are computed from those lines.
 */
import { LoomError } from '../../src/core/errors.js';

export interface DnsperfSummary {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  avgLatencyMs: number;
  /** Response code -> count, e.g. { NOERROR: 9000, NXDOMAIN: 1000 }. */
  rcodes: Record<string, number>;
}

function field(text: string, re: RegExp, what: string): number {
  const m = re.exec(text);
  const v = m ? Number(m[1]) : NaN;
  if (!Number.isFinite(v)) throw new LoomError('ERR_PROTOCOL', `dnsperf output has no ${what}`, { detail: { tail: text.slice(-800) } });
  return v;
}

export function parseDnsperfSummary(text: string): DnsperfSummary {
  const rcodes: Record<string, number> = {};
  const codes = /Response codes:\s+(.*)/.exec(text)?.[1] ?? '';
  for (const m of codes.matchAll(/([A-Z]+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    sent: field(text, /Queries sent:\s+(\d+)/, 'queries sent'),
    completed: field(text, /Queries completed:\s+(\d+)/, 'queries completed'),
    lost: field(text, /Queries lost:\s+(\d+)/, 'queries lost'),
    qps: field(text, /Queries per second:\s+([\d.]+)/, 'queries per second'),
    avgLatencyMs: field(text, /Average Latency \(s\):\s+([\d.]+)/, 'average latency') * 1000,
    rcodes,
  };
}

/** Latencies in ms of every `-v` answer line, in output order. */
export function parseVerboseLatencies(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) out.push(Number(m[1]) * 1000);
  return out;
}

export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Nearest-rank percentiles; NaN everywhere for an empty sample. */
export function latencyStats(samples: readonly number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!);
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: at(1) };
}

export interface DnsperfRun {
  server: string;
  port: number;
  dataFile: string;
  seconds: number;
  clients: number;
  /** Outstanding queries (-q). */
  outstanding: number;
  /** Offered rate (-Q); unlimited when omitted. */
  rateQps?: number;
  verbose?: boolean;
}

export function dnsperfArgs(r: DnsperfRun): string[] {
  const args = ['-s', r.server, '-p', String(r.port), '-d', r.dataFile, '-l', String(r.seconds), '-c', String(r.clients), '-T', '1', '-q', String(r.outstanding), '-t', '2'];
  if (r.rateQps !== undefined) args.push('-Q', String(Math.round(r.rateQps)));
  if (r.verbose) args.push('-v');
  return args;
}
