/**
 * Prometheus's metrics linter, `promtool check metrics`, from Debian's prometheus package
 * (extracted into .tools/bin by scripts/install-promtool.sh; scripts/install.sh runs it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const PROMTOOL = join(process.cwd(), '.tools', 'bin', 'promtool');

/**
 * prom-client's default process metrics name three gauges `..._total`, which promtool rightly
 * flags; they are the library's names (dashboards know them), not ours, so they are the only
 * complaints let through.
 */
export const PROM_CLIENT_GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * What promtool says about an exposition text, one complaint per line, minus the known
 * prom-client ones; [] when clean. Throws when promtool is missing or fails to run.
 */
export function promtoolComplaints(text: string): string[] {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: run scripts/install-promtool.sh (scripts/install.sh runs it)`);
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const complaints = lines.filter((l) => !PROM_CLIENT_GAUGES_NAMED_TOTAL.some((name) => l.startsWith(`${name} non-counter metrics should not have "_total" suffix`)));
  // promtool exits 3 on lint problems; any other failure (a parse error) is a complaint too.
  if (complaints.length === 0 && r.status !== 0 && r.status !== 3) return [`promtool exited ${String(r.status)}`];
  return complaints;
}
