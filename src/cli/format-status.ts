import type { ConnectionState, RouterStatus } from '../mesh/types.js';

const KEY_WIDTH = 15;
const STATES: readonly ConnectionState[] = ['established', 'connecting', 'pending', 'retrying', 'failed'];

/** "8a:3f:00:12:9c:01(host1)", as Weave Net users read peer names. */
export function peerLabel(name: string, nickname: string): string {
  return `${name}(${nickname})`;
}

function line(key: string, value: string | number): string {
  return `${key.padStart(KEY_WIDTH)}: ${value}`;
}

/** `loom status`: aligned key: value lines like `weave status`. `version` is the daemon's. */
export function formatSummary(status: RouterStatus, version: string): string {
  const counts = new Map<ConnectionState, number>(STATES.map((s) => [s, 0]));
  for (const c of status.connections) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
  const established = status.peers.reduce((n, p) => n + p.connections.filter((c) => c.established).length, 0);
  const protocol = `${status.protocolMinVersion}..${status.protocolMaxVersion}`;
  return [
    line('Version', `loom ${version} (protocol ${protocol})`),
    '',
    line('Service', 'router'),
    line('Protocol', `${status.protocol} ${protocol}`),
    line('Name', peerLabel(status.name, status.nickname)),
    line('Encryption', status.encryption ? 'enabled' : 'disabled'),
    line('PeerDiscovery', status.peerDiscovery ? 'enabled' : 'disabled'),
    line('Targets', status.targets.length),
    line('Connections', `${status.connections.length} (${STATES.map((s) => `${counts.get(s) ?? 0} ${s}`).join(', ')})`),
    line('Peers', `${status.peers.length} (with ${established} established connections)`),
  ].join('\n') + '\n';
}

/**
 * `loom status connections`: one line per connection, columns aligned:
 * direction, address, state, encryption, then the peer or (failed/retrying) the error.
 */
export function formatConnections(status: RouterStatus): string {
  const rows = status.connections.map((c) => [
    c.outbound ? '->' : '<-',
    c.address,
    c.state,
    c.encrypted === undefined ? '' : c.encrypted ? 'encrypted' : 'unencrypted',
    c.info + (c.state === 'retrying' && c.attempts !== undefined ? ` (attempt ${c.attempts})` : ''),
  ]);
  return table(rows);
}

/** `loom status peers`: each peer, then its connections indented beneath it (weave's tree form). */
export function formatPeers(status: RouterStatus): string {
  const out: string[] = [];
  for (const p of status.peers) {
    out.push(peerLabel(p.name, p.nickname));
    const rows = p.connections.map((c) => ['  ' + (c.outbound ? '->' : '<-'), c.address, peerLabel(c.name, c.nickname), c.established ? 'established' : 'pending']);
    if (rows.length > 0) out.push(table(rows).trimEnd());
  }
  return out.length > 0 ? out.join('\n') + '\n' : '';
}

/** `loom status targets`: one per line. */
export function formatTargets(status: RouterStatus): string {
  return status.targets.map((t) => t + '\n').join('');
}

/** Left-aligned columns two spaces apart; trailing blanks trimmed. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd() + '\n').join('');
}
