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
 *
 * Default route (egress): with `spec.gateway` (the host's address on the bridge in the container's
 * subnet), the namespace gets `default via GATEWAY dev ethwe`, so it reaches the outside through
 * its host (which forwards and masquerades, see src/dataplane/egress.ts). Idempotent: a route
 * already there is left alone, one via ethwe to another gateway is replaced, and a default route
 * by another interface (a Docker container's eth0, say) is never taken over: Loom adds to a
 * namespace's networking, it does not redirect what it already had.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock, type Clock } from '../core/clock.js';
import { LoomError } from '../core/errors.js';
import { ipv4CidrOf, macFromSeed, parseIpv4 } from '../dataplane/addresses.js';
import type { CommandResult, CommandRunner } from '../os/runner.js';
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
 * Adds `spec.cidr` to the target's interface (`spec.ifname`, default ethwe), creating the veth
 * pair first if it does not exist (with `exclusive`, an existing one is ERR_CONFLICT instead).
 * Idempotent for an address already present. A pair it created is deleted again if a later
 * step fails.
 */
export async function attachNetwork(components: AttachComponents, spec: AttachSpec): Promise<AttachResult> {
  const { runner } = components;
  const cidr = ipv4CidrOf(spec.cidr);
  const inNs = (args: string[], allowFailure = false) => runner.run('nsenter', [...netnsArgs(spec.target), ...args], { allowFailure });

  const ifname = spec.ifname ?? CONTAINER_IFNAME;
  const existing = await inNs(['ip', '-j', 'addr', 'show', 'dev', ifname], true);
  if (existing.code === 0 && spec.exclusive === true) throw new LoomError('ERR_CONFLICT', `${ifname} already exists in ${netnsRef(spec.target).slice(0, 100)}`);
  if (existing.code === 0) {
    let addrs: Array<{ address?: string; addr_info?: Array<{ local?: string; prefixlen?: number }> }>;
    try {
      addrs = JSON.parse(existing.stdout || '[]') as typeof addrs;
    } catch (err) {
      throw new LoomError('ERR_OS_COMMAND', 'cannot parse `ip -j addr` output', { cause: err });
    }
    const first = addrs[0];
    const has = first?.addr_info?.some((a) => a.local === cidr.address && a.prefixlen === cidr.prefix) ?? false;
    if (!has) await inNs(['ip', 'addr', 'add', cidr.text, 'dev', ifname]);
    if (spec.gateway !== undefined) await ensureDefaultRoute(inNs, spec.gateway);
    return { hostVeth: null, mac: first?.address ?? '' };
  }

  const mac = spec.mac ?? macFromSeed(`${netnsRef(spec.target)}/${cidr.text}`);
  const hostVeth = spec.hostVeth ?? `vlm${macFromSeed(netnsRef(spec.target)).replace(/:/g, '').slice(0, 12)}`;
  const mtu = String(spec.mtu);
  await runner.run('ip', ['link', 'add', hostVeth, 'mtu', mtu, 'type', 'veth', 'peer', 'name', ifname, 'mtu', mtu, 'address', mac, 'netns', netnsRef(spec.target)]);
  try {
    await runner.run('ip', ['link', 'set', hostVeth, 'master', spec.bridge, 'up']);
    await inNs(['sysctl', '-q', '-w', `net.ipv4.conf.${ifname}.arp_notify=1`]);
    await inNs(['ip', 'addr', 'add', cidr.text, 'dev', ifname]);
    await inNs(['ip', 'link', 'set', 'lo', 'up']);
    await inNs(['ip', 'link', 'set', ifname, 'up']);
    // The subnet route comes with the address; multicast goes over the overlay too, as in Weave Net.
    await inNs(['ip', 'route', 'replace', '224.0.0.0/4', 'dev', ifname]);
    if (spec.gateway !== undefined) await ensureDefaultRoute(inNs, spec.gateway);
    await waitForwarding(components, hostVeth);
    await inNs(['ip', 'link', 'set', ifname, 'address', mac]);
  } catch (err) {
    await runner.run('ip', ['link', 'del', hostVeth], { allowFailure: true });
    throw err;
  }
  return { hostVeth, mac };
}

type InNetns = (args: string[], allowFailure?: boolean) => Promise<CommandResult>;

/** What to do about the default route, given the namespace's default routes (pure; see the header). */
export function defaultRouteAction(routes: ReadonlyArray<{ dev?: string; gateway?: string }>, gateway: string): 'add' | 'replace' | 'keep' | 'foreign' {
  if (routes.length === 0) return 'add';
  if (routes.some((r) => r.dev !== undefined && r.dev !== CONTAINER_IFNAME)) return 'foreign';
  return routes.some((r) => r.gateway === gateway) ? 'keep' : 'replace';
}

/** `default via gateway dev ethwe` in the namespace, unless another interface has the default route. */
async function ensureDefaultRoute(inNs: InNetns, gateway: string): Promise<void> {
  const via = parseIpv4(gateway);
  const out = await inNs(['ip', '-j', '-4', 'route', 'show', 'default']);
  let routes: Array<{ dev?: string; gateway?: string }>;
  try {
    routes = JSON.parse(out.stdout || '[]') as typeof routes;
  } catch (err) {
    throw new LoomError('ERR_OS_COMMAND', 'cannot parse `ip -j route` output', { cause: err });
  }
  const action = defaultRouteAction(Array.isArray(routes) ? routes : [], via);
  if (action === 'add' || action === 'replace') await inNs(['ip', 'route', 'replace', 'default', 'via', via, 'dev', CONTAINER_IFNAME]);
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
