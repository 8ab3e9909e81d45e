/**
 * Pure readers of what the measuring tools print: iperf3 -J, ping, /proc/stat, /proc/PID/stat.
 * Input is untrusted text; anything unexpected is a LoomError (ERR_PROTOCOL), never a crash.
 */
import { LoomError } from '../../src/core/errors.js';

const MAX_TEXT = 4 * 1024 * 1024;

export interface IperfResult {
  /** Receiver-side throughput. */
  mbps: number;
  retransmits: number;
}

function field(obj: unknown, key: string): unknown {
  return typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[key] : undefined;
}

function finite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new LoomError('ERR_PROTOCOL', `iperf3 JSON: ${what} is missing or not a number`);
  }
  return value;
}

/** Reads `iperf3 -c ... -J` output. An iperf3-reported error becomes ERR_PROTOCOL with its text. */
export function parseIperfJson(text: string): IperfResult {
  if (text.length > MAX_TEXT) throw new LoomError('ERR_PROTOCOL', 'iperf3 JSON output is too large');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new LoomError('ERR_PROTOCOL', `iperf3 output is not JSON: ${text.slice(0, 80)}`);
  }
  const error = field(doc, 'error');
  if (typeof error === 'string') throw new LoomError('ERR_PROTOCOL', `iperf3: ${error.slice(0, 200)}`);
  const end = field(doc, 'end');
  const bps = finite(field(field(end, 'sum_received'), 'bits_per_second'), 'end.sum_received.bits_per_second');
  const retr = field(field(end, 'sum_sent'), 'retransmits');
  return { mbps: bps / 1e6, retransmits: typeof retr === 'number' && Number.isFinite(retr) ? retr : 0 };
}

export interface PingResult {
  rttsMs: number[];
  /** From the summary line; 100 when there is none. */
  lossPct: number;
}

/** Reads iputils ping output: one "time=X ms" per reply, and the "N% packet loss" summary. */
export function parsePing(text: string): PingResult {
  if (text.length > MAX_TEXT) throw new LoomError('ERR_PROTOCOL', 'ping output is too large');
  const rttsMs: number[] = [];
  for (const m of text.matchAll(/time[=<]([0-9]+(?:\.[0-9]+)?) ms/g)) rttsMs.push(Number(m[1]));
  const loss = /([0-9]+(?:\.[0-9]+)?)% packet loss/.exec(text);
  return { rttsMs, lossPct: loss ? Number(loss[1]) : 100 };
}

/** Median; NaN for an empty list. */
export function median(values: readonly number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export interface MachineTicks {
  /** idle + iowait */
  idle: number;
  /** user .. steal */
  total: number;
}

/** The aggregate "cpu" line of /proc/stat. */
export function parseProcStat(text: string): MachineTicks {
  const line = text.split('\n', 1)[0] ?? '';
  const parts = line.trim().split(/\s+/);
  if (parts[0] !== 'cpu' || parts.length < 9) throw new LoomError('ERR_PROTOCOL', '/proc/stat: no aggregate cpu line');
  const ticks = parts.slice(1, 9).map(Number);
  if (ticks.some((t) => !Number.isFinite(t) || t < 0)) throw new LoomError('ERR_PROTOCOL', '/proc/stat: bad cpu counters');
  return { idle: ticks[3]! + ticks[4]!, total: ticks.reduce((a, b) => a + b, 0) };
}

/** utime + stime (fields 14 and 15) of /proc/PID/stat, in clock ticks. The comm field may hold spaces and ')'. */
export function parsePidStat(text: string): number {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new LoomError('ERR_PROTOCOL', '/proc/PID/stat: no command field');
  // After "pid (comm) " the next field is #3 (state), so utime (#14) is index 11.
  const fields = text.slice(close + 2).trim().split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || fields.length < 13) {
    throw new LoomError('ERR_PROTOCOL', '/proc/PID/stat: too few fields');
  }
  return utime + stime;
}

/** % of one core used by `ticks` of CPU over `seconds` of wall time. */
export function ticksToCorePct(ticks: number, seconds: number, clockTicksPerSecond: number): number {
  if (seconds <= 0 || clockTicksPerSecond <= 0) return Number.NaN;
  return (100 * ticks) / clockTicksPerSecond / seconds;
}

/** Busy share of the whole machine between two /proc/stat readings, in % of one core. */
export function machineBusyPct(before: MachineTicks, after: MachineTicks, cores: number): number {
  const total = after.total - before.total;
  if (total <= 0) return Number.NaN;
  return 100 * cores * (1 - (after.idle - before.idle) / total);
}
