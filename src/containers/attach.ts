/**
 * Plugging a network namespace into the Loom bridge: a veth pair whose host end is enslaved to the
 * bridge and whose other end is `ethwe` inside the namespace, with the address, MAC and MTU given.
 * Runs in the caller's netns (the router's); reaches into the target with nsenter.
 *
 * Gratuitous ARP: `arp_notify=1` on ethwe makes the kernel announce the address on link-up and on
 * every MAC change. The link-up announcement can be lost, since the bridge port is not yet forwarding
 * when ethwe comes up (carrier events are asynchronous), so after the port is forwarding we set the
 * MAC again: the kernel then sends the ARP announcement once more (NETDEV_CHANGEADDR). No helper
 * binary or raw socket is needed, and the kernel formats the packet.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock, type Clock } from '../core/clock.js';
import { LoomError } from '../core/errors.js';
import { ipv4CidrOf, macFromSeed } from '../dataplane/addresses.js';
import type { CommandRunner } from '../os/runner.js';
import type { AttachResult, AttachSpec, NetnsTarget } from './types.js';

export const CONTAINER_IFNAME = 'ethwe';
const FORWARDING_WAIT_MS = 3000;
const FORWARDING_POLL_MS = 20;

/** nsenter arguments entering only the network namespace of `target`. */
export function netnsArgs(target: NetnsTarget): string[] {
  return 'pid' in target ? ['--target', String(target.pid), '--net'] : [`--net=${target.path}`];
}

function netnsRef(target: NetnsTarget): string {
  return 'pid' in target ? String(target.pid) : target.path;
}

/**
 * Waits `ms` on `clock`. On the system clock the timer is ref'd: someone awaits this, so the process
 * must not exit under it (systemClock's own timers are unref'd, for background work).
 */
export function delay(clock: Clock, ms: number): Promise<void> {
  if (clock === systemClock) return sleep(ms);
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

export interface AttachComponents {
  runner: CommandRunner;
  clock: Clock;
}

/**
 * Adds `spec.cidr` to the target's ethwe, creating the veth pair first if ethwe does not exist.
 * Idempotent for an address already present.
 */
export async function attachNetwork(components: AttachComponents, spec: AttachSpec): Promise<AttachResult> {
  const { runner } = components;
  const cidr = ipv4CidrOf(spec.cidr);
  const inNs = (args: string[], allowFailure = false) => runner.run('nsenter', [...netnsArgs(spec.target), ...args], { allowFailure });

  const existing = await inNs(['ip', '-j', 'addr', 'show', 'dev', CONTAINER_IFNAME], true);
  if (existing.code === 0) {
    let addrs: Array<{ address?: string; addr_info?: Array<{ local?: string; prefixlen?: number }> }>;
    try {
      addrs = JSON.parse(existing.stdout || '[]') as typeof addrs;
    } catch (err) {
      throw new LoomError('ERR_OS_COMMAND', 'cannot parse `ip -j addr` output', { cause: err });
    }
    const first = addrs[0];
    const has = first?.addr_info?.some((a) => a.local === cidr.address && a.prefixlen === cidr.prefix) ?? false;
    if (!has) await inNs(['ip', 'addr', 'add', cidr.text, 'dev', CONTAINER_IFNAME]);
    return { hostVeth: null, mac: first?.address ?? '' };
  }

  const mac = spec.mac ?? macFromSeed(`${netnsRef(spec.target)}/${cidr.text}`);
  const hostVeth = spec.hostVeth ?? `vlm${macFromSeed(netnsRef(spec.target)).replace(/:/g, '').slice(0, 12)}`;
  const mtu = String(spec.mtu);
  await runner.run('ip', ['link', 'add', hostVeth, 'mtu', mtu, 'type', 'veth', 'peer', 'name', CONTAINER_IFNAME, 'mtu', mtu, 'address', mac, 'netns', netnsRef(spec.target)]);
  try {
    await runner.run('ip', ['link', 'set', hostVeth, 'master', spec.bridge, 'up']);
    await inNs(['sysctl', '-q', '-w', `net.ipv4.conf.${CONTAINER_IFNAME}.arp_notify=1`]);
    await inNs(['ip', 'addr', 'add', cidr.text, 'dev', CONTAINER_IFNAME]);
    await inNs(['ip', 'link', 'set', 'lo', 'up']);
    await inNs(['ip', 'link', 'set', CONTAINER_IFNAME, 'up']);
    // The subnet route comes with the address; multicast goes over the overlay too, as in Weave Net.
    await inNs(['ip', 'route', 'replace', '224.0.0.0/4', 'dev', CONTAINER_IFNAME]);
    await waitForwarding(components, hostVeth);
    await inNs(['ip', 'link', 'set', CONTAINER_IFNAME, 'address', mac]);
  } catch (err) {
    await runner.run('ip', ['link', 'del', hostVeth], { allowFailure: true });
    throw err;
  }
  return { hostVeth, mac };
}

/** Waits (bounded) until the bridge forwards on `port`. */
async function waitForwarding({ runner, clock }: AttachComponents, port: string): Promise<void> {
  const deadline = clock.now() + FORWARDING_WAIT_MS;
  for (let i = 0; i < FORWARDING_WAIT_MS / FORWARDING_POLL_MS + 1; i++) {
    const out = await runner.run('bridge', ['-j', 'link', 'show', 'dev', port], { allowFailure: true });
    if (out.stdout.includes('"state":"forwarding"')) return;
    if (clock.now() >= deadline) break;
    await delay(clock, FORWARDING_POLL_MS);
  }
  throw new LoomError('ERR_TIMEOUT', `bridge port ${port} did not reach forwarding state`);
}
