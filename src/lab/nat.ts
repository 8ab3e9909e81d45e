/**
 * Puts a lab host behind a NAT, for tests of peers that cannot be reached from outside:
 *
 *   before:  host eth0 (a.b.c.N) ── hN ── underlay br0
 *   after:   host eth0 (10.200.N.2, default via .1) ── lan │ <prefix>-natN │ wan (a.b.c.N) ── nN ── br0
 *
 * The NAT namespace takes over the host's underlay address, masquerades what the host sends and
 * lets in only replies (conntrack established/related): no port forwarding, no inbound anything.
 * Conntrack filters by address and port, so a reply must come from where the host sent to.
 * The namespace is adopted by the lab, so the lab's teardown removes it with the others.
 */
import { LoomError } from '../core/errors.js';
import type { HostRef, Lab } from './netns.js';
import { systemRunner, type CommandRunner } from '../os/runner.js';

export interface LabNat {
  readonly netns: string;
  /** The host's address inside the NAT. */
  readonly privateAddress: string;
  /** The address the rest of the lab sees (the host's former underlay address). */
  readonly publicAddress: string;
}

/** nft for the NAT box: masquerade out of `wan`, nothing new in. */
export function natRules(): string {
  return [
    'table ip loomnat {',
    '  chain masq { type nat hook postrouting priority 100; oifname "wan" masquerade; }',
    '  chain through { type filter hook forward priority 0; policy drop; ct state established,related accept; iifname "lan" oifname "wan" accept; }',
    '  chain inbound { type filter hook input priority 0; policy drop; ct state established,related accept; iifname "lo" accept; iifname "lan" accept; }',
    '}',
    '',
  ].join('\n');
}

export async function putBehindNat(lab: Lab, ref: HostRef, runner: CommandRunner = systemRunner): Promise<LabNat> {
  const host = lab.host(ref);
  if (host.index > 250) throw new LoomError('ERR_INVALID_ARGUMENT', 'host index too large for a NAT subnet');
  const nat = `${lab.prefix}-nat${host.index}`;
  const ul = lab.underlay;
  const lanNet = `10.200.${host.index}`;
  await runner.run('ip', ['netns', 'add', nat]);
  lab.adoptNetns(nat);
  await runner.run('ip', ['-n', nat, 'link', 'set', 'lo', 'up']);
  await runner.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv4.ip_forward=1'], { netns: nat });
  // The host's old cable now ends in the NAT box ("lan").
  await runner.run('ip', ['-n', ul, 'link', 'set', host.name, 'nomaster']);
  await runner.run('ip', ['-n', ul, 'link', 'set', host.name, 'netns', nat]);
  await runner.run('ip', ['-n', nat, 'link', 'set', host.name, 'name', 'lan']);
  await runner.run('ip', ['-n', nat, 'addr', 'add', `${lanNet}.1/24`, 'dev', 'lan']);
  await runner.run('ip', ['-n', nat, 'link', 'set', 'lan', 'up']);
  await runner.run('ip', ['-n', host.netns, 'addr', 'flush', 'dev', 'eth0']);
  await runner.run('ip', ['-n', host.netns, 'addr', 'add', `${lanNet}.2/24`, 'dev', 'eth0']);
  await runner.run('ip', ['-n', host.netns, 'route', 'add', 'default', 'via', `${lanNet}.1`]);
  // A new cable from the NAT box ("wan", the host's former address) to the underlay bridge.
  await runner.run('ip', ['-n', ul, 'link', 'add', `n${host.index}`, 'type', 'veth', 'peer', 'name', 'wan', 'netns', nat]);
  await runner.run('ip', ['-n', ul, 'link', 'set', `n${host.index}`, 'master', 'br0', 'up']);
  await runner.run('ip', ['-n', nat, 'addr', 'add', `${host.address}/24`, 'dev', 'wan']);
  await runner.run('ip', ['-n', nat, 'link', 'set', 'wan', 'up']);
  await runner.run('nft', ['-f', '-'], { netns: nat, input: natRules() });
  return { netns: nat, privateAddress: `${lanNet}.2`, publicAddress: host.address };
}
