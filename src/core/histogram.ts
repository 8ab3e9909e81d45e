/**
 * A fixed-bucket histogram as plain data, for durations measured where they happen (an upstream
 * DNS exchange) and exposed at scrape time (src/api/snapshot-metrics.ts). `observe` is two
 * additions and a short scan: no allocation, no metrics library on the measured path.
 */

/** Upper bounds in seconds, from 1 ms to 2.5 s (the Prometheus client's defaults, shifted down). */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface HistogramSnapshot {
  /** Bucket upper bounds, ascending (the +Inf bucket is implied). */
  bounds: readonly number[];
  /** Observations per bucket, not cumulative: `counts[i]` fell in (bounds[i-1], bounds[i]]; the last entry is above every bound. */
  counts: readonly number[];
  sum: number;
  count: number;
}

export class LatencyHistogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

/** The sum of two snapshots over the same bounds (e.g. several DNS listeners). */
export function addHistograms(a: HistogramSnapshot, b: HistogramSnapshot): HistogramSnapshot {
  return { bounds: a.bounds, counts: a.counts.map((n, i) => n + (b.counts[i] ?? 0)), sum: a.sum + b.sum, count: a.count + b.count };
}

export function emptyHistogram(bounds: readonly number[] = LATENCY_BUCKETS_SECONDS): HistogramSnapshot {
  return { bounds, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 };
}
