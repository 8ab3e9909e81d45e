/**
 * The benchmark chart as hand-written SVG (no dependency): one row per path, throughput on a log
 * scale (the rows span two orders of magnitude) and median RTT on a linear scale. Rows that were
 * not measured show why; Loom's targets are drawn as dashed marks. Pure: rows in, text out.
 */
import type { TableRow } from './report.js';
import type { PathGroup } from './types.js';

const ROW_H = 28;
const TOP = 70;
const LABEL_W = 330;
const MBPS_W = 360;
const GAP = 40;
const RTT_W = 200;
const RIGHT = 20;
const WIDTH = LABEL_W + MBPS_W + GAP + RTT_W + RIGHT;
const BAR_H = 16;

const COLORS: Record<PathGroup, string> = { limit: '#8c8c8c', kernel: '#3b6fb6', peer: '#e08a2c', loom: '#2e9d5b' };

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const num = (x: number): string => (Math.round(x * 10) / 10).toString();

/** Decades [lo, hi] of 10^k covering every value (defaults to 100..100000 when there is none). */
export function logDomain(values: readonly number[]): [number, number] {
  const ok = values.filter((v) => Number.isFinite(v) && v > 0);
  if (ok.length === 0) return [2, 5];
  const lo = Math.floor(Math.log10(Math.min(...ok)));
  const hi = Math.ceil(Math.log10(Math.max(...ok)));
  return [lo, hi > lo ? hi : lo + 1];
}

/** A "nice" upper bound (1, 2 or 5 x 10^k) at or above `x`. */
export function niceCeil(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

export function renderSvg(rows: readonly TableRow[], title: string, subtitle: string): string {
  const height = TOP + rows.length * ROW_H + 50;
  const measuredMbps = rows.flatMap((r) => [r.mbps, r.targetMbps]).filter((x): x is number => x !== undefined);
  const [lo, hi] = logDomain(measuredMbps);
  const xMbps = (v: number): number => LABEL_W + (MBPS_W * (Math.log10(Math.max(v, 10 ** lo)) - lo)) / (hi - lo);
  const rttMax = niceCeil(Math.max(0, ...rows.flatMap((r) => [r.rttMs ?? 0, r.targetRttMs ?? 0])) * 1.05);
  const rttLeft = LABEL_W + MBPS_W + GAP;
  const xRtt = (v: number): number => rttLeft + (RTT_W * Math.min(v, rttMax)) / rttMax;
  const bottom = TOP + rows.length * ROW_H;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="10" y="22" font-size="16" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(`<text x="10" y="40" fill="#555">${escapeXml(subtitle)}</text>`);
  out.push(`<text x="${LABEL_W}" y="${TOP - 10}" font-weight="bold">Mbit/s, single TCP stream (log scale)</text>`);
  out.push(`<text x="${rttLeft}" y="${TOP - 10}" font-weight="bold">RTT ms (median)</text>`);
  for (let k = lo; k <= hi; k++) {
    const x = num(xMbps(10 ** k));
    out.push(`<line x1="${x}" y1="${TOP - 4}" x2="${x}" y2="${bottom}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${bottom + 16}" text-anchor="middle" fill="#555">${escapeXml((10 ** k).toLocaleString('en-US'))}</text>`);
  }
  // Five steps of a 1/2/5 x 10^k maximum are round numbers (0.1, 0.2, 0.4, 1 ...).
  for (let i = 0; i <= 5; i++) {
    const v = (rttMax * i) / 5;
    const x = num(xRtt(v));
    out.push(`<line x1="${x}" y1="${TOP - 4}" x2="${x}" y2="${bottom}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${bottom + 16}" text-anchor="middle" fill="#555">${v === 0 ? '0' : String(Number(v.toPrecision(2)))}</text>`);
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW_H;
    const barY = y + (ROW_H - BAR_H) / 2;
    const textY = y + ROW_H / 2 + 4;
    const color = COLORS[r.group];
    out.push(`<text x="${LABEL_W - 8}" y="${textY}" text-anchor="end">${escapeXml(r.condition === '' || r.condition === 'clean' ? r.label : `[${r.condition}] ${r.label}`)}</text>`);
    if (r.status === 'measured' && r.mbps !== undefined && r.rttMs !== undefined) {
      const w = Math.max(1, xMbps(r.mbps) - LABEL_W);
      out.push(`<rect x="${LABEL_W}" y="${barY}" width="${num(w)}" height="${BAR_H}" fill="${color}"/>`);
      out.push(`<text x="${num(LABEL_W + w + 4)}" y="${textY}">${Math.round(r.mbps)}</text>`);
      const rw = Math.max(1, xRtt(r.rttMs) - rttLeft);
      out.push(`<rect x="${rttLeft}" y="${barY}" width="${num(rw)}" height="${BAR_H}" fill="${color}"/>`);
      out.push(`<text x="${num(rttLeft + rw + 4)}" y="${textY}">${r.rttMs.toFixed(3)}</text>`);
    } else {
      const why = r.status === 'skipped' ? `skipped (${r.note ?? ''})` : r.status;
      out.push(`<rect x="${LABEL_W}" y="${barY}" width="${MBPS_W}" height="${BAR_H}" fill="none" stroke="${color}" stroke-dasharray="4 3"/>`);
      out.push(`<text x="${LABEL_W + 6}" y="${textY}" fill="#555" font-style="italic">${escapeXml(why)}</text>`);
    }
    if (r.targetMbps !== undefined) {
      const x = num(xMbps(r.targetMbps));
      out.push(`<line x1="${x}" y1="${y + 2}" x2="${x}" y2="${y + ROW_H - 2}" stroke="#c0392b" stroke-width="2" stroke-dasharray="3 2"><title>target ${Math.round(r.targetMbps)} Mbit/s</title></line>`);
    }
    if (r.targetRttMs !== undefined) {
      const x = num(xRtt(r.targetRttMs));
      out.push(`<line x1="${x}" y1="${y + 2}" x2="${x}" y2="${y + ROW_H - 2}" stroke="#c0392b" stroke-width="2" stroke-dasharray="3 2"><title>target ${r.targetRttMs.toFixed(3)} ms</title></line>`);
    }
  });
  const legendY = bottom + 36;
  const legend: Array<[string, string]> = [
    [COLORS.limit, 'veth (limit)'],
    [COLORS.kernel, 'kernel VXLAN'],
    [COLORS.peer, 'encrypted user-space peers'],
    [COLORS.loom, 'Loom'],
    ['#c0392b', 'Loom target'],
  ];
  let lx = 10;
  for (const [color, text] of legend) {
    out.push(`<rect x="${lx}" y="${legendY - 10}" width="12" height="12" fill="${color}"/>`);
    out.push(`<text x="${lx + 16}" y="${legendY}">${escapeXml(text)}</text>`);
    lx += 28 + text.length * 7;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
