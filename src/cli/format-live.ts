/**
 * What the live page shows, as text for `loom status` (issue 13): the data path to each peer with
 * its path MTU and RTT, and the newest events with their time. Pure: a report in, lines out
 * (`now` and the time zone are parameters, so tests pin them).
 */
import type { LoomEvent } from '../core/events.js';

/** The parts of `/report` read here, loosely typed: a section may be absent (subsystem off). */
export interface LiveReport {
  router: { name: string; nickname: string; peers: ReadonlyArray<{ name: string; nickname: string }> };
  dataplane?: {
    peers?: ReadonlyArray<{ peer: string; path: string; encrypted?: boolean; pmtu?: number; via?: string; reason?: string }>;
    relay?: { neighbours?: ReadonlyArray<{ peer: string; rttMs: number | null }> };
  };
  events?: { recent?: readonly LoomEvent[] };
}

/** "fastdp", "relay", "relay via h2", "unreachable". */
function pathText(path: string, via: string | undefined, nickname: (p: string) => string): string {
  if (path === 'sleeve') return via === undefined ? 'relay' : `relay via ${nickname(via)}`;
  return path;
}

export function formatRttMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return ms < 10 ? `${ms.toFixed(2)}ms` : `${Math.round(ms)}ms`;
}

/** One line per peer the data plane knows: nickname(name), path, encryption, pmtu, rtt, reason. Empty without a data plane. */
export function formatPathTable(report: LiveReport): string {
  const peers = report.dataplane?.peers;
  if (!peers || peers.length === 0) return '';
  const nicknames = new Map(report.router.peers.map((p) => [p.name, p.nickname]));
  const nickname = (p: string): string => nicknames.get(p) ?? p;
  const rtt = new Map((report.dataplane?.relay?.neighbours ?? []).map((n) => [n.peer, n.rttMs]));
  const rows = [['PEER', 'PATH', 'ENCRYPTED', 'PMTU', 'RTT', ''], ...peers.map((p) => [`${nickname(p.peer)}(${p.peer})`, pathText(p.path, p.via, nickname), p.encrypted === true ? 'yes' : 'no', p.pmtu === undefined ? '-' : String(p.pmtu), formatRttMs(rtt.get(p.peer)), p.reason ?? ''])];
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((r) => '  ' + r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}

/** "HH:MM:SS" of an epoch-ms time, in UTC or the local zone. */
export function clockTime(ms: number, utc = false): string {
  const d = new Date(ms);
  const parts = utc ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()] : [d.getHours(), d.getMinutes(), d.getSeconds()];
  return parts.map((n) => String(n).padStart(2, '0')).join(':');
}

/** The newest `limit` events, newest first: "HH:MM:SS  kind  text". */
export function formatRecentEvents(events: readonly LoomEvent[], limit: number, options: { utc?: boolean } = {}): string {
  if (events.length === 0) return '  (none yet)\n';
  const newest = [...events].sort((a, b) => b.seq - a.seq).slice(0, limit);
  const kindWidth = Math.max(...newest.map((e) => e.kind.length));
  return newest.map((e) => `  ${clockTime(e.time, options.utc)}  ${e.kind.padEnd(kindWidth)}  ${e.text}`).join('\n') + '\n';
}

/** `loom status`'s tail: data paths and the last few events. */
export function formatLive(report: LiveReport, options: { events?: number; utc?: boolean } = {}): string {
  const out: string[] = [];
  const paths = formatPathTable(report);
  if (paths !== '') out.push('', 'Data paths:', paths.trimEnd());
  if (report.events?.recent !== undefined) out.push('', 'Recent events:', formatRecentEvents(report.events.recent, options.events ?? 8, options).trimEnd());
  return out.length === 0 ? '' : out.join('\n') + '\n';
}
