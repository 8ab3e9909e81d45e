/**
 * Turns path results into table rows with ratios and target verdicts, and renders the markdown
 * table. Pure. Ratios are taken within one run and one underlay condition only: every row of a
 * run shares the same CPUs, so figures from different runs or machines are not comparable, and a
 * row under 1 % loss is compared with the peers under 1 % loss.
 */
import { median } from './parse.js';
import type { PathGroup, PathResult, PathTarget } from './types.js';

export type RowStatus = 'measured' | 'pending' | 'skipped' | 'failed';
export type Verdict = 'pass' | 'fail' | 'pending' | 'no reference';

export interface TableRow {
  /** The underlay condition (conditions.ts), '' when the run had none. */
  condition: string;
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
  /** Daemon CPU % per Gbit/s carried: daemonCpuPct / (mbps / 1000); null for kernel-only paths. */
  cpuPerGbps?: number | null;
  /** IPv4 fragments on the underlay while the row was measured. */
  fragments?: number;
  machineBusyPct?: number;
  mbpsVsVxlan?: number;
  rttVsVxlan?: number;
  /** On encrypted rows and rows with a target against the peers: throughput / best encrypted user-space peer. */
  mbpsVsBestPeer?: number;
  /** On rows with an RTT target against the peers: median RTT / the lowest median RTT of the encrypted peers. */
  rttVsBestPeer?: number;
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
  if (t.maxRttVsBestPeer !== undefined) parts.push(`RTT <= ${t.maxRttVsBestPeer}x best peer`);
  if (t.maxFragments !== undefined) parts.push(`<= ${t.maxFragments} fragments`);
  return parts.join(', ');
}

function verdict(t: PathTarget, row: TableRow): Verdict {
  if (row.status !== 'measured') return 'pending';
  const checks: Array<boolean | undefined> = [];
  if (t.minMbpsVsVxlan !== undefined) checks.push(row.mbpsVsVxlan === undefined ? undefined : row.mbpsVsVxlan >= t.minMbpsVsVxlan);
  if (t.maxRttVsVxlan !== undefined) checks.push(row.rttVsVxlan === undefined ? undefined : row.rttVsVxlan <= t.maxRttVsVxlan);
  if (t.minMbpsVsBestPeer !== undefined) checks.push(row.mbpsVsBestPeer === undefined ? undefined : row.mbpsVsBestPeer >= t.minMbpsVsBestPeer);
  if (t.maxRttVsBestPeer !== undefined) checks.push(row.rttVsBestPeer === undefined ? undefined : row.rttVsBestPeer <= t.maxRttVsBestPeer);
  if (t.maxFragments !== undefined) checks.push(row.fragments === undefined ? undefined : row.fragments <= t.maxFragments);
  if (checks.some((c) => c === undefined)) return 'no reference';
  return checks.every(Boolean) ? 'pass' : 'fail';
}

function baseRow(r: PathResult): TableRow {
  const row: TableRow = { condition: r.condition ?? '', id: r.id, label: r.label, group: r.group, encrypted: r.encrypted, status: r.outcome.kind, runs: 0 };
  const o = r.outcome;
  if (o.kind !== 'measured') {
    row.note = o.reason;
    return row;
  }
  const m = o.measurement;
  const mbps = m.runs.map((s) => s.mbps);
  const daemon = m.runs.map((s) => s.daemonCpuPct).filter((c): c is number => c !== null);
  const mbpsMedian = median(mbps);
  const cpu = daemon.length > 0 ? median(daemon) : null;
  Object.assign(row, {
    cpuPerGbps: cpu !== null && mbpsMedian > 0 ? cpu / (mbpsMedian / 1000) : null,
    ...(m.underlayFragments === undefined ? {} : { fragments: m.underlayFragments }),
    mtu: m.mtu,
    runs: m.runs.length,
    mbps: mbpsMedian,
    mbpsMin: Math.min(...mbps),
    mbpsMax: Math.max(...mbps),
    rttMs: m.rttMedianMs,
    retransmits: median(m.runs.map((s) => s.retransmits)),
    daemonCpuPct: cpu,
    machineBusyPct: median(m.runs.map((s) => s.machineBusyPct)),
  });
  return row;
}

/** A reference figure to divide by. */
const usable = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0;
/** A row's own figure: zero counts (a relay that carries nothing is 0x, not "no reference"). */
const measuredValue = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x >= 0;

/**
 * Rows in input order, with ratios against the VXLAN row and the best encrypted peer of this run
 * under the same underlay condition.
 */
export function buildRows(results: readonly PathResult[]): TableRow[] {
  const rows = results.map(baseRow);
  const references = new Map<string, { vxlan?: TableRow; bestPeer?: number; bestPeerRtt?: number }>();
  for (const condition of new Set(rows.map((r) => r.condition))) {
    const same = rows.filter((r) => r.condition === condition && r.status === 'measured');
    const peers = same.filter((r) => r.group === 'peer' && usable(r.mbps));
    const peerRtts = peers.map((r) => r.rttMs).filter(usable);
    const vxlan = same.find((r) => r.id === VXLAN_REFERENCE_ID);
    references.set(condition, {
      ...(vxlan ? { vxlan } : {}),
      ...(peers.length > 0 ? { bestPeer: Math.max(...peers.map((r) => r.mbps!)) } : {}),
      ...(peerRtts.length > 0 ? { bestPeerRtt: Math.min(...peerRtts) } : {}),
    });
  }
  for (const [i, row] of rows.entries()) {
    const { vxlan, bestPeer, bestPeerRtt } = references.get(row.condition) ?? {};
    if (row.status === 'measured') {
      if (usable(vxlan?.mbps) && measuredValue(row.mbps)) row.mbpsVsVxlan = row.mbps / vxlan.mbps;
      if (usable(vxlan?.rttMs) && measuredValue(row.rttMs)) row.rttVsVxlan = row.rttMs / vxlan.rttMs;
      // Encrypted rows, and any row whose target is set against the peers (Loom's plain relay).
      const againstPeers = row.encrypted || results[i]!.target?.minMbpsVsBestPeer !== undefined;
      if (againstPeers && usable(bestPeer) && measuredValue(row.mbps)) row.mbpsVsBestPeer = row.mbps / bestPeer;
      if (results[i]!.target?.maxRttVsBestPeer !== undefined && usable(bestPeerRtt) && measuredValue(row.rttMs)) row.rttVsBestPeer = row.rttMs / bestPeerRtt;
    }
    const target = results[i]!.target;
    if (!target) continue;
    row.target = { text: targetText(target), verdict: verdict(target, row) };
    const floors: number[] = [];
    if (target.minMbpsVsVxlan !== undefined && usable(vxlan?.mbps)) floors.push(target.minMbpsVsVxlan * vxlan.mbps);
    if (target.minMbpsVsBestPeer !== undefined && usable(bestPeer)) floors.push(target.minMbpsVsBestPeer * bestPeer);
    if (floors.length > 0) row.targetMbps = Math.max(...floors);
    const ceilings: number[] = [];
    if (target.maxRttVsVxlan !== undefined && usable(vxlan?.rttMs)) ceilings.push(target.maxRttVsVxlan * vxlan.rttMs);
    if (target.maxRttVsBestPeer !== undefined && usable(bestPeerRtt)) ceilings.push(target.maxRttVsBestPeer * bestPeerRtt);
    if (ceilings.length > 0) row.targetRttMs = Math.min(...ceilings);
  }
  return rows;
}

const fixed = (x: number | undefined | null, digits: number): string => (x === undefined || x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits));
const ratio = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(x < 0.1 ? 3 : 2)}x`);

export const TABLE_HEADER =
  '| underlay | path | MTU | Mbit/s median (min-max, n) | RTT ms (median) | daemon CPU % | CPU % per Gbit/s | IPv4 fragments | machine busy % | Mbit/s vs VXLAN | RTT vs VXLAN | Mbit/s vs best peer | RTT vs best peer | target |';

/** The markdown table; CPU figures are % of one core (100 = one core busy). */
export function renderMarkdownTable(rows: readonly TableRow[]): string {
  const lines = [TABLE_HEADER, `|${'---|'.repeat(14)}`];
  for (const r of rows) {
    const target = r.target ? `${r.target.text}: **${r.target.verdict}**` : '';
    const underlay = r.condition === '' ? '-' : r.condition;
    if (r.status !== 'measured') {
      const what = r.status === 'skipped' ? `skipped (${r.note ?? ''})` : `${r.status}${r.note ? ` (${r.note})` : ''}`;
      lines.push(`| ${underlay} | ${r.label} | - | ${what} | - | - | - | - | - | - | - | - | - | ${target} |`);
      continue;
    }
    const spread = `${fixed(r.mbps, 0)} (${fixed(r.mbpsMin, 0)}-${fixed(r.mbpsMax, 0)}, ${r.runs})`;
    lines.push(
      `| ${underlay} | ${r.label} | ${r.mtu ?? '-'} | ${spread} | ${fixed(r.rttMs, 3)} | ${fixed(r.daemonCpuPct, 0)} | ${fixed(r.cpuPerGbps, 0)} | ${r.fragments ?? '-'} | ${fixed(r.machineBusyPct, 0)} | ${ratio(r.mbpsVsVxlan)} | ${ratio(r.rttVsVxlan)} | ${ratio(r.mbpsVsBestPeer)} | ${ratio(r.rttVsBestPeer)} | ${target} |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** One line per target: verdict, underlay, path, target, and the figures it was judged on. */
export function renderVerdicts(rows: readonly TableRow[]): string {
  const lines: string[] = [];
  for (const r of rows) {
    if (!r.target) continue;
    const figures =
      r.status === 'measured'
        ? `${fixed(r.mbps, 0)} Mbit/s = ${ratio(r.mbpsVsBestPeer ?? r.mbpsVsVxlan)} ${r.mbpsVsBestPeer !== undefined ? 'best peer' : 'VXLAN'}, RTT ${ratio(r.rttVsBestPeer ?? r.rttVsVxlan)}, ${r.fragments ?? '?'} fragments`
        : `${r.status}${r.note ? `: ${r.note}` : ''}`;
    lines.push(`${r.target.verdict.toUpperCase().padEnd(12)} ${(r.condition || '-').padEnd(8)} ${r.id.padEnd(15)} ${r.target.text} (${figures})`);
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
