/**
 * A machine outside the mesh: a namespace on the underlay bridge that runs no router, for tests of
 * what containers reach beyond the overlay (egress).
 *
 *   <prefix>-outN   eth0 (veth to the underlay br0) = <subnet>.N/24, lo up, IPv6 off
 *
 * It has no route to the Loom range unless a test adds one (`routeVia`), so a reply to an
 * unmasqueraded container address goes nowhere. Adopted by the lab: destroyed with it.
 */
import { LoomError } from '../core/errors.js';
import { systemRunner, type CommandRunner } from '../os/runner.js';
import type { Lab } from './netns.js';

export interface LabOutside {
  readonly netns: string;
  readonly address: string;
}

/** Adds the outside namespace at host number `index` of the lab's /24 (not one of the hosts'). */
export async function addOutside(lab: Lab, index: number, runner: CommandRunner = systemRunner): Promise<LabOutside> {
  if (!Number.isInteger(index) || index < 1 || index > 254 || lab.hosts.some((h) => h.index === index)) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `outside index must be 1..254 and not a host's, got ${String(index)}`);
  }
  const base = lab.hosts[0]!.address.split('.').slice(0, 3).join('.');
  const netns = `${lab.prefix}-out${index}`;
  const ul = lab.underlay;
  await runner.run('ip', ['netns', 'add', netns]);
  lab.adoptNetns(netns);
  await runner.run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await runner.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { netns });
  await runner.run('ip', ['-n', ul, 'link', 'add', `o${index}`, 'mtu', String(lab.mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await runner.run('ip', ['-n', ul, 'link', 'set', `o${index}`, 'master', 'br0', 'up']);
  await runner.run('ip', ['-n', netns, 'link', 'set', 'eth0', 'mtu', String(lab.mtu), 'up']);
  await runner.run('ip', ['-n', netns, 'addr', 'add', `${base}.${index}/24`, 'dev', 'eth0']);
  return { netns, address: `${base}.${index}` };
}

/** A route in the outside namespace to `cidr` via `gateway` (a lab host's underlay address). */
export async function routeVia(outside: LabOutside, cidr: string, gateway: string, runner: CommandRunner = systemRunner): Promise<void> {
  await runner.run('ip', ['-n', outside.netns, 'route', 'replace', cidr, 'via', gateway]);
}
