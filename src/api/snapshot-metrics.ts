/**
 * Prometheus metrics read from one status snapshot per scrape, so they always agree with
 * `loom status`/`loom report` and the subsystems need no metric hooks. Each metric is a name, a
 * help text and a function of the snapshot: a number, or numbers by one label's values.
 * Each call makes its own Registry (several daemons may share a process in tests).
 */
import { Counter, Gauge, Registry } from 'prom-client';

export interface MetricSpec<T> {
  name: string;
  help: string;
  /** Gauges are set, counters mirror a monotonic total of the snapshot. */
  kind: 'gauge' | 'counter';
  /** With `label`: the value per label value; without: one number. */
  label?: string;
  value: (snapshot: T) => number | Record<string, number>;
}

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
    const write = (metric: Gauge | Counter): void => {
      const v = spec.value(current());
      if (spec.kind === 'counter') metric.reset();
      const put = (labels: Record<string, string> | undefined, n: number): void => {
        if (metric instanceof Gauge) {
          if (labels) metric.set(labels, n);
          else metric.set(n);
        } else if (labels) metric.inc(labels, n);
        else metric.inc(n);
      };
      if (typeof v === 'number') put(undefined, v);
      else for (const [labelValue, n] of Object.entries(v)) put({ [spec.label ?? 'kind']: labelValue }, n);
    };
    const common = { name: spec.name, help: spec.help, registers: [registry], ...(spec.label ? { labelNames: [spec.label] } : {}) };
    if (spec.kind === 'gauge') new Gauge({ ...common, collect() { write(this); } });
    else new Counter({ ...common, collect() { write(this); } });
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
