import type { DataplaneStatus } from '../dataplane/controller/controller.js';

/**
 * The data path per peer, under `loom status connections`: peer, path (fastdp | sleeve |
 * unreachable), encrypted or not, MTU, the underlay path MTU the relay verified (`pmtu=`, to the
 * next hop when relayed via one; `pmtu=?` until known), then the underlay address, how the relay meets the kernel
 * (`relay:tap`, or `relay:PORT` on the VXLAN-port path) and the next hop (`via PEER`) when
 * relayed, and the reason. Empty when the
 * data plane does not run (no `dataplane` report section).
 */
export function formatDataplanePaths(status: DataplaneStatus | undefined): string {
  if (!status) return '';
  const rows = status.peers.map((p) => [
    p.peer,
    p.path,
    p.path === 'unreachable' ? '' : p.encrypted ? 'encrypted' : 'unencrypted',
    `mtu=${p.mtu}`,
    p.path === 'unreachable' ? '' : `pmtu=${p.pmtu ?? '?'}`,
    [p.underlayIp ?? '', relayOf(p, status.tap), p.via === undefined ? '' : `via ${p.via}`, p.reason === undefined ? '' : `(${p.reason})`].filter((s) => s !== '').join(' '),
  ]);
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const lines = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
  const error = status.lastError === null ? [] : [`data plane apply failing: ${status.lastError}`];
  return ['', `data plane (bridge ${status.bridge}, vxlan ${status.vxlan} vni ${status.vni}, mtu ${status.mtu}):`, ...lines.map((l) => `  ${l}`), ...error].join('\n') + '\n';
}

/** `relay:tap` (the relay's TAP device on the bridge), `relay:PORT` (VXLAN-port path), or ''. */
function relayOf(p: DataplaneStatus['peers'][number], tap: string | undefined): string {
  if (p.relayPort !== undefined) return `relay:${p.relayPort}`;
  return p.path === 'sleeve' && tap !== undefined ? 'relay:tap' : '';
}
