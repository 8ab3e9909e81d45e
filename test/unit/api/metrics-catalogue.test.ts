/**
 * The metrics Loom exports, held to three things outside the code: Prometheus's own linter
 * (`promtool check metrics`, from Debian's prometheus package: scripts/install-promtool.sh), the
 * list in docs/API.md, and the Grafana dashboard deploy/grafana/loom.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promtoolComplaints } from '../../helpers/promtool.js';
import { allMetricSources, familiesOf, renderAllMetrics } from './metric-sources.js';

const ROOT = process.cwd();

const loomFamilies = (families: Map<string, string>): Map<string, string> => new Map([...families].filter(([name]) => name.startsWith('loom_')));

test('promtool check metrics finds nothing to complain about in the full /metrics text', async () => {
  const text = await renderAllMetrics();
  assert.deepEqual(promtoolComplaints(text), []);
  // The linter works: a counter without _total is flagged.
  assert.match(promtoolComplaints('# HELP bad_requests Requests.\n# TYPE bad_requests counter\nbad_requests 1\n').join('\n'), /bad_requests/);
});

test('every metrics source the daemon registers is in the catalogue fixture', () => {
  const calls: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) for (const m of readFileSync(path, 'utf8').matchAll(/\.registerMetrics\(([^,]+),/g)) calls.push(m[1]!.trim());
    }
  };
  walk(join(ROOT, 'src'));
  // Names as written at the call sites: a new one must be added to metric-sources.ts (and here).
  assert.deepEqual(calls.sort(), ["'dns'", "'ipam'", "'memory'", "'router'", 'DATAPLANE_SUBSYSTEM'].sort());
  assert.deepEqual(allMetricSources().map(([name]) => name).sort(), ['dataplane', 'dns', 'ipam', 'memory', 'router']);
});

/** Rows of the metrics table in docs/API.md: name -> type. */
function documentedMetrics(): Map<string, string> {
  const doc = readFileSync(join(ROOT, 'docs', 'API.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Metrics'), doc.indexOf('\n## ', doc.indexOf('## Metrics') + 1));
  const out = new Map<string, string>();
  for (const m of section.matchAll(/^\| `(loom_[a-z0-9_]+)` \| (\w+) \|/gm)) out.set(m[1]!, m[2]!);
  return out;
}

test('docs/API.md lists exactly the exported loom_ metrics, with their types', async () => {
  const exported = loomFamilies(familiesOf(await renderAllMetrics()));
  const documented = documentedMetrics();
  assert.ok(exported.size > 20, `only ${exported.size} families exported?`);
  assert.deepEqual([...documented.keys()].sort(), [...exported.keys()].sort(), 'metrics table in docs/API.md vs /metrics');
  for (const [name, type] of exported) assert.equal(documented.get(name), type, `type of ${name}`);
});

interface Panel {
  title?: string;
  type?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

/** Metric names an expression refers to: identifiers that are not PromQL keywords, functions, labels or durations. */
function metricNamesIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutMatchers = withoutStrings.replace(/\{[^}]*\}/g, '{}');
  const withoutGrouping = withoutMatchers.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const withoutRanges = withoutGrouping.replace(/\[[^\]]*\]/g, '[]');
  const names: string[] = [];
  for (const m of withoutRanges.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = withoutRanges.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // a function or aggregation
    if (['by', 'without', 'on', 'ignoring', 'and', 'or', 'unless', 'bool', 'offset', 'group_left', 'group_right', 'inf', 'nan', 'Inf', 'NaN'].includes(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

test('metricNamesIn finds the metrics of a PromQL expression and nothing else', () => {
  assert.deepEqual(
    metricNamesIn('histogram_quantile(0.9, sum by (le) (rate(loom_dns_upstream_duration_seconds_bucket{instance=~"$instance"}[5m])))'),
    ['loom_dns_upstream_duration_seconds_bucket'],
  );
  assert.deepEqual(metricNamesIn('sum(rate(loom_relay_bytes_total{direction="sent"}[$__rate_interval])) * 8 / on(instance) group_left loom_peers'), ['loom_relay_bytes_total', 'loom_peers']);
});

test('deploy/grafana/loom.json: every query names an exported metric, every exported family is on a panel', async () => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'loom.json'), 'utf8')) as { panels: Panel[]; templating?: { list?: Array<{ type?: string; query?: string }> }; schemaVersion?: number };
  assert.ok((dashboard.schemaVersion ?? 0) >= 36, 'a Grafana 10 schema');
  assert.ok(dashboard.templating?.list?.some((v) => v.type === 'datasource' && v.query === 'prometheus'), 'a Prometheus datasource variable');
  const exported = loomFamilies(familiesOf(await renderAllMetrics()));
  const seriesOf = (family: string, type: string): string[] => (type === 'histogram' ? [`${family}_bucket`, `${family}_sum`, `${family}_count`] : [family]);
  const known = new Map<string, string>();
  for (const [family, type] of exported) for (const series of seriesOf(family, type)) known.set(series, family);
  const used = new Set<string>();
  const panels: Panel[] = [];
  const collect = (list: Panel[]): void => {
    for (const p of list) {
      panels.push(p);
      collect(p.panels ?? []);
    }
  };
  collect(dashboard.panels);
  let queries = 0;
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      assert.ok(target.expr, `panel "${panel.title}" has a target without an expression`);
      queries++;
      const names = metricNamesIn(target.expr);
      assert.ok(names.length > 0, `panel "${panel.title}": no metric in ${target.expr}`);
      for (const name of names) {
        const family = known.get(name);
        assert.ok(family, `panel "${panel.title}" queries ${name}, which Loom does not export`);
        used.add(family);
      }
    }
  }
  assert.ok(queries >= 10, `${queries} queries`);
  // Deliberately left off the dashboard: none.
  const unused = [...exported.keys()].filter((f) => !used.has(f));
  assert.deepEqual(unused, [], 'exported families on no panel');
});
