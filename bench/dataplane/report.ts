/**
 * Turns path results into table rows with ratios and target verdicts, and renders the markdown
 * table. Pure. Ratios are taken within one run only: every row of a run shares the same CPUs,
 * so figures from different runs or machines are not comparable.
 */
import { median } from './parse.js';
import type { PathGroup, PathResult, PathTarget } from './types.js';

export type RowStatus = 'measured' | 'pending' | 'skipped' | 'failed';
export type Verdict = 'pass' | 'fail' | 'pending' | 'no reference';

export interface TableRow {
  id: string;
  label: string;
  group: PathGroup;
  encrypted: boolean;
  status: RowStatus;
  /** Why a row is pending, skipped or failed. */
  note?: string;
  mtu?: number;
  runs: number;
  mbps?: number;
  mbpsMin?: number;
  mbpsMax?: number;
  rttMs?: number;
  retransmits?: number;
  /** Sum of the path's daemons, % of one core; null for kernel-only paths. */
  daemonCpuPct?: number | null;
  machineBusyPct?: number;
  mbpsVsVxlan?: number;
  rttVsVxlan?: number;
  /** On encrypted rows and rows with a target against the peers: throughput / best encrypted user-space peer. */
  mbpsVsBestPeer?: number;
  target?: { text: string; verdict: Verdict };
  /** The target in absolute terms for this run (from the reference rows), for the chart. */
  targetMbps?: number;
  targetRttMs?: number;
}

export const VXLAN_REFERENCE_ID = 'vxlan';

export function targetText(t: PathTarget): string {
  const parts: string[] = [];
  if (t.minMbpsVsVxlan !== undefined) parts.push(`>= ${t.minMbpsVsVxlan}x VXLAN Mbit/s`);
  if (t.maxRttVsVxlan !== undefined) parts.push(`RTT <= ${t.maxRttVsVxlan}x VXLAN`);
  if (t.minMbpsVsBestPeer !== undefined) parts.push(`>= ${t.minMbpsVsBestPeer}x best peer Mbit/s`);
  return parts.join(', ');
}

function verdict(t: PathTarget, row: TableRow): Verdict {
  if (row.status !== 'measured') return 'pending';
  const checks: Array<boolean | undefined> = [];
  if (t.minMbpsVsVxlan !== undefined) checks.push(row.mbpsVsVxlan === undefined ? undefined : row.mbpsVsVxlan >= t.minMbpsVsVxlan);
  if (t.maxRttVsVxlan !== undefined) checks.push(row.rttVsVxlan === undefined ? undefined : row.rttVsVxlan <= t.maxRttVsVxlan);
  if (t.minMbpsVsBestPeer !== undefined) checks.push(row.mbpsVsBestPeer === undefined ? undefined : row.mbpsVsBestPeer >= t.minMbpsVsBestPeer);
  if (checks.some((c) => c === undefined)) return 'no reference';
  return checks.every(Boolean) ? 'pass' : 'fail';
}

function baseRow(r: PathResult): TableRow {
  const row: TableRow = { id: r.id, label: r.label, group: r.group, encrypted: r.encrypted, status: r.outcome.kind, runs: 0 };
  const o = r.outcome;
  if (o.kind !== 'measured') {
    row.note = o.reason;
    return row;
  }
  const m = o.measurement;
  const mbps = m.runs.map((s) => s.mbps);
  const daemon = m.runs.map((s) => s.daemonCpuPct).filter((c): c is number => c !== null);
  Object.assign(row, {
    mtu: m.mtu,
    runs: m.runs.length,
    mbps: median(mbps),
    mbpsMin: Math.min(...mbps),
    mbpsMax: Math.max(...mbps),
    rttMs: m.rttMedianMs,
    retransmits: median(m.runs.map((s) => s.retransmits)),
    daemonCpuPct: daemon.length > 0 ? median(daemon) : null,
    machineBusyPct: median(m.runs.map((s) => s.machineBusyPct)),
  });
  return row;
}

const usable = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0;

/** Rows in input order, with ratios against the VXLAN row and the best encrypted peer of this run. */
export function buildRows(results: readonly PathResult[]): TableRow[] {
  const rows = results.map(baseRow);
  const vxlan = rows.find((r) => r.id === VXLAN_REFERENCE_ID && r.status === 'measured');
  const peers = rows.filter((r) => r.group === 'peer' && r.status === 'measured' && usable(r.mbps));
  const bestPeer = peers.length > 0 ? Math.max(...peers.map((r) => r.mbps!)) : undefined;
  for (const [i, row] of rows.entries()) {
    if (row.status === 'measured') {
      if (usable(vxlan?.mbps) && usable(row.mbps)) row.mbpsVsVxlan = row.mbps / vxlan.mbps;
      if (usable(vxlan?.rttMs) && usable(row.rttMs)) row.rttVsVxlan = row.rttMs / vxlan.rttMs;
      // Encrypted rows, and any row whose target is set against the peers (Loom's plain relay).
      const againstPeers = row.encrypted || results[i]!.target?.minMbpsVsBestPeer !== undefined;
      if (againstPeers && usable(bestPeer) && usable(row.mbps)) row.mbpsVsBestPeer = row.mbps / bestPeer;
    }
    const target = results[i]!.target;
    if (!target) continue;
    row.target = { text: targetText(target), verdict: verdict(target, row) };
    const floors: number[] = [];
    if (target.minMbpsVsVxlan !== undefined && usable(vxlan?.mbps)) floors.push(target.minMbpsVsVxlan * vxlan.mbps);
    if (target.minMbpsVsBestPeer !== undefined && usable(bestPeer)) floors.push(target.minMbpsVsBestPeer * bestPeer);
    if (floors.length > 0) row.targetMbps = Math.max(...floors);
    if (target.maxRttVsVxlan !== undefined && usable(vxlan?.rttMs)) row.targetRttMs = target.maxRttVsVxlan * vxlan.rttMs;
  }
  return rows;
}

const fixed = (x: number | undefined | null, digits: number): string => (x === undefined || x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits));
const ratio = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(x < 0.1 ? 3 : 2)}x`);

export const TABLE_HEADER =
  '| path | MTU | Mbit/s median (min-max, n) | RTT ms (median) | daemon CPU % | machine busy % | Mbit/s vs VXLAN | RTT vs VXLAN | Mbit/s vs best encrypted peer | target |';

/** The markdown table; CPU figures are % of one core (100 = one core busy). */
export function renderMarkdownTable(rows: readonly TableRow[]): string {
  const lines = [TABLE_HEADER, '|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const target = r.target ? `${r.target.text}: **${r.target.verdict}**` : '';
    if (r.status !== 'measured') {
      const what = r.status === 'skipped' ? `skipped (${r.note ?? ''})` : `${r.status}${r.note ? ` (${r.note})` : ''}`;
      lines.push(`| ${r.label} | - | ${what} | - | - | - | - | - | - | ${target} |`);
      continue;
    }
    const spread = `${fixed(r.mbps, 0)} (${fixed(r.mbpsMin, 0)}-${fixed(r.mbpsMax, 0)}, ${r.runs})`;
    lines.push(
      `| ${r.label} | ${r.mtu ?? '-'} | ${spread} | ${fixed(r.rttMs, 3)} | ${fixed(r.daemonCpuPct, 0)} | ${fixed(r.machineBusyPct, 0)} | ${ratio(r.mbpsVsVxlan)} | ${ratio(r.rttVsVxlan)} | ${ratio(r.mbpsVsBestPeer)} | ${target} |`,
    );
  }
  return lines.join('\n') + '\n';
}
