/**
 * A latency histogram in microseconds with fixed memory, for timing inside a server without
 * garbage per sample (bench/dns/loom-server.ts records every reply). 1 µs buckets below 64 µs,
 * then 32 buckets per power of two (a bucket is at most 1/32 ≈ 3 % of its value wide) up to
 * 2^31 µs; longer values land in the last bucket. The maximum is kept exactly.
 *
 * Text form (one line, what the server prints and the bench parses and merges):
 * `<count>:<max µs>:<index>=<n>,<index>=<n>...` ("-" after the max when empty).
 */
import { LoomError } from '../../src/core/errors.js';

const LINEAR = 64;
const SUB_BUCKETS = 32;
/** Powers of two from 2^6 to 2^30 get SUB_BUCKETS each. */
const MAX_EXPONENT = 30;
export const HISTOGRAM_BUCKETS = LINEAR + (MAX_EXPONENT - 5) * SUB_BUCKETS;

/** The bucket of `us` (negative and NaN count as 0: a clock read out of order by a hair). */
export function bucketOf(us: number): number {
  if (!(us >= 1)) return 0;
  const v = Math.floor(us);
  if (v < LINEAR) return v;
  if (v >= 2 ** (MAX_EXPONENT + 1)) return HISTOGRAM_BUCKETS - 1;
  const e = 31 - Math.clz32(v);
  const m = Math.floor(v / 2 ** (e - 5));
  return LINEAR + (e - 6) * SUB_BUCKETS + (m - SUB_BUCKETS);
}

/** The lowest value of bucket `index`, and its width. */
export function bucketRange(index: number): { low: number; width: number } {
  if (index < LINEAR) return { low: index, width: 1 };
  const e = Math.floor((index - LINEAR) / SUB_BUCKETS) + 6;
  const m = ((index - LINEAR) % SUB_BUCKETS) + SUB_BUCKETS;
  const width = 2 ** (e - 5);
  return { low: m * width, width };
}

export class LatencyHistogram {
  readonly counts = new Float64Array(HISTOGRAM_BUCKETS);
  count = 0;
  max = 0;

  record(us: number): void {
    this.counts[bucketOf(us)]!++;
    this.count++;
    if (us > this.max) this.max = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.max = Math.max(this.max, other.max);
  }

  /**
   * Nearest-rank percentile in µs (q in (0, 1]): the middle of the bucket holding that rank,
   * never above the exact maximum, and the maximum itself for the last rank; NaN when empty.
   */
  percentile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    if (rank >= this.count) return this.max;
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const { low, width } = bucketRange(i);
        return Math.min(this.max, low + width / 2);
      }
    }
    return this.max;
  }

  toText(): string {
    const parts: string[] = [];
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) if (this.counts[i]! > 0) parts.push(`${i}=${this.counts[i]}`);
    return `${this.count}:${this.max.toFixed(1)}:${parts.length === 0 ? '-' : parts.join(',')}`;
  }

  static fromText(text: string): LatencyHistogram {
    const m = /^(\d+):([\d.]+):(-|\d+=\d+(?:,\d+=\d+)*)$/.exec(text);
    if (!m) throw new LoomError('ERR_PROTOCOL', `not a histogram: ${text.slice(0, 80)}`);
    const h = new LatencyHistogram();
    h.max = Number(m[2]);
    if (m[3] !== '-') {
      for (const part of m[3]!.split(',')) {
        const [i, n] = part.split('=').map(Number) as [number, number];
        if (i >= HISTOGRAM_BUCKETS) throw new LoomError('ERR_PROTOCOL', `histogram bucket ${i} out of range`);
        h.counts[i]! += n;
        h.count += n;
      }
    }
    if (h.count !== Number(m[1])) throw new LoomError('ERR_PROTOCOL', `histogram count ${m[1]} does not match its buckets (${h.count})`);
    return h;
  }
}
