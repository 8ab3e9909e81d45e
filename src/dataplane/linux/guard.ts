/**
 * The guard: Loom's nftables table `inet loom-guard` in the router's network namespace, holding
 * the two lines docs/SECURITY.md promises about ports (issue 12, "Security"):
 *
 * - **No control port through the overlay.** Packets that arrive on the Loom bridge (from a
 *   container on this host, or from one on another host across the overlay to this host's bridge
 *   address) get a TCP reset on the mesh port and the API port, and are dropped on the data port
 *   and the VXLAN port. DNS (53) on the bridge address stays open: containers use it.
 * - **No frame in without the password.** With a password every peer outside `--trusted-subnets`
 *   is relayed and sealed, and the kernel VXLAN port has no business receiving anything from the
 *   network: it takes from anyone, checks nothing, and would put the frame on the bridge. Then
 *   UDP to the VXLAN port is dropped unless it comes from loopback (the relay's own injection on
 *   the VXLAN-port path) or from a trusted subnet (whose peers use the fast path, unencrypted, by
 *   the operator's choice). Without a password nothing is claimed: the fast path is open, as
 *   Weave's is.
 *
 * `guardScript` is pure: one nft transaction that creates the table, deletes it, and writes it
 * whole, so applying it again (a restart, another password setting) is idempotent and never
 * leaves a half-written table. Stop leaves the table in place (like egress: the protection holds
 * while the router restarts).
 */
import type { CommandRunner } from '../../os/runner.js';

export const GUARD_FAMILY = 'inet';
export const GUARD_TABLE = 'loom-guard';

export interface GuardSpec {
  /** The Loom bridge's name. */
  bridge: string;
  /** TCP ports no container may reach through the bridge: the mesh port, the API port. */
  tcpPorts: readonly number[];
  /** UDP ports likewise: the relay's data port, the VXLAN port. */
  udpPorts: readonly number[];
  vxlanPort: number;
  /** The mesh has a password: the VXLAN port takes only loopback and trusted subnets. */
  sealed: boolean;
  /** `--trusted-subnets`, "a.b.c.d/n" (already validated). */
  trustedSubnets: readonly string[];
}

function ports(list: readonly number[]): string {
  const unique = [...new Set(list)].sort((a, b) => a - b);
  return unique.length === 1 ? String(unique[0]) : `{ ${unique.join(', ')} }`;
}

/** The nft script that makes the table what `spec` says (for `nft -f -`). */
export function guardScript(spec: GuardSpec): string {
  const lines = [
    `table ${GUARD_FAMILY} ${GUARD_TABLE}`,
    `delete table ${GUARD_FAMILY} ${GUARD_TABLE}`,
    `table ${GUARD_FAMILY} ${GUARD_TABLE} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
  ];
  if (spec.tcpPorts.length > 0) lines.push(`    iifname "${spec.bridge}" tcp dport ${ports(spec.tcpPorts)} counter reject with tcp reset`);
  if (spec.udpPorts.length > 0) lines.push(`    iifname "${spec.bridge}" udp dport ${ports(spec.udpPorts)} counter drop`);
  if (spec.sealed) lines.push(`    udp dport ${spec.vxlanPort} ip saddr != { ${['127.0.0.0/8', ...spec.trustedSubnets].join(', ')} } counter drop`);
  lines.push('  }', '}', '');
  return lines.join('\n');
}

/** Applies the guard with `nft -f -` (throws ERR_OS_COMMAND when nft fails or is missing). */
export async function applyGuard(runner: CommandRunner, spec: GuardSpec): Promise<void> {
  await runner.run('nft', ['-f', '-'], { input: guardScript(spec) });
}
