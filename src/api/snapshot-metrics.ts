/**
 * Prometheus metrics read from one status snapshot per scrape, so they always agree with
 * `loom status`/`loom report` and the subsystems need no metric hooks. Each metric is a name, a
 * help text and a function of the snapshot: a number, numbers by one label's values, or samples
 * with several labels; a histogram is a fixed-bucket snapshot (src/core/histogram.ts).
 * Every series is rewritten at each scrape, so a label value that left the snapshot (a peer gone)
 * leaves the exposition too. Each call makes its own Registry (several daemons may share a
 * process in tests).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HistogramSnapshot } from '../core/histogram.js';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface ScalarMetricSpec<T> {
  name: string;
  help: string;
  /** Gauges are set, counters mirror a monotonic total of the snapshot. */
  kind: 'gauge' | 'counter';
  /**
   * One label: `value` gives a number per label value. Several (`labels`): `value` gives samples.
   * Neither: one number.
   */
  label?: string;
  labels?: readonly string[];
  value: (snapshot: T) => number | Record<string, number> | readonly Sample[];
}

export interface HistogramMetricSpec<T> {
  name: string;
  help: string;
  kind: 'histogram';
  value: (snapshot: T) => HistogramSnapshot;
}

export type MetricSpec<T> = ScalarMetricSpec<T> | HistogramMetricSpec<T>;

export interface SnapshotMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** Prometheus text exposition, sampled from one fresh snapshot. */
  render(): Promise<string>;
}

export function createSnapshotMetrics<T>(read: () => T, specs: ReadonlyArray<MetricSpec<T>>, registry: Registry = new Registry()): SnapshotMetrics {
  let snapshot: { value: T } | null = null;
  const current = (): T => (snapshot ??= { value: read() }).value;
  for (const spec of specs) {
    if (spec.kind === 'histogram') registry.registerMetric(new SnapshotHistogram(spec.name, spec.help, () => spec.value(current())));
    else addScalar(spec, current, registry);
  }
  return {
    registry,
    contentType: registry.contentType,
    async render() {
      snapshot = null;
      try {
        return await registry.metrics();
      } finally {
        snapshot = null;
      }
    },
  };
}

function addScalar<T>(spec: ScalarMetricSpec<T>, current: () => T, registry: Registry): void {
  const write = (metric: Gauge | Counter): void => {
    const v = spec.value(current());
    metric.reset();
    const put = (labels: Record<string, string> | undefined, n: number): void => {
      if (metric instanceof Gauge) {
        if (labels) metric.set(labels, n);
        else metric.set(n);
      } else if (labels) metric.inc(labels, n);
      else metric.inc(n);
    };
    if (typeof v === 'number') put(undefined, v);
    else if (isSamples(v)) for (const s of v) put(s.labels, s.value);
    else for (const [labelValue, n] of Object.entries(v)) put({ [spec.label ?? 'kind']: labelValue }, n);
  };
  const labelNames = spec.labels ?? (spec.label === undefined ? [] : [spec.label]);
  const common = { name: spec.name, help: spec.help, registers: [registry], ...(labelNames.length > 0 ? { labelNames } : {}) };
  if (spec.kind === 'gauge') new Gauge({ ...common, collect() { write(this); } });
  else new Counter({ ...common, collect() { write(this); } });
}

function isSamples(v: Record<string, number> | readonly Sample[]): v is readonly Sample[] {
  return Array.isArray(v);
}

/**
 * A histogram whose buckets come from a snapshot at scrape time instead of `observe` calls:
 * prom-client's Histogram with its two read methods (the registry calls `getForPromString`,
 * JSON export `get`) answering from the snapshot in the same shape.
 */
class SnapshotHistogram extends Histogram {
  constructor(
    private readonly metricName: string,
    private readonly helpText: string,
    private readonly read: () => HistogramSnapshot,
  ) {
    super({ name: metricName, help: helpText, registers: [] });
  }

  override get(): ReturnType<Histogram['get']> {
    return Promise.resolve(this.values());
  }

  getForPromString(): ReturnType<Histogram['get']> {
    return this.get();
  }

  private values(): Awaited<ReturnType<Histogram['get']>> {
    const h = this.read();
    const values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = [];
    let cumulative = 0;
    h.bounds.forEach((bound, i) => {
      cumulative += h.counts[i] ?? 0;
      values.push({ metricName: `${this.metricName}_bucket`, labels: { le: bound }, value: cumulative });
    });
    values.push({ metricName: `${this.metricName}_bucket`, labels: { le: '+Inf' }, value: h.count });
    values.push({ metricName: `${this.metricName}_sum`, labels: {}, value: h.sum });
    values.push({ metricName: `${this.metricName}_count`, labels: {}, value: h.count });
    // The shape prom-client's own Histogram returns; its declared type also wants `collect` and its enum for `type`.
    return { name: this.metricName, help: this.helpText, type: 'histogram', values, aggregator: 'sum' } as unknown as Awaited<ReturnType<Histogram['get']>>;
  }
}
