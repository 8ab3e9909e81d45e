/**
 * Plugging a network namespace into the Loom bridge: a veth pair whose host end is enslaved to the
 * bridge and whose other end is `ethwe` inside the namespace, with the address, MAC and MTU given.
 * Runs in the caller's netns (the router's) and reaches into the target through rtnetlink sockets
 * made there (src/os/netns-links.ts): no process is started, an attach costs a few kernel round
 * trips. The calls block the event loop for microseconds each; only the bridge-port wait sleeps.
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
import { BR_STATE_FORWARDING, netlinkLinks, type NetnsLinkHandle, type NetnsLinks } from '../os/netns-links.js';
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
  clock: Clock;
  /** The link door; default the real one (rtnetlink). Tests pass a MemoryNetnsLinks. */
  links?: NetnsLinks;
}

/**
 * Adds `spec.cidr` to the target's interface (`spec.ifname`, default ethwe), creating the veth
 * pair first if it does not exist (with `exclusive`, an existing one is ERR_CONFLICT instead).
 * Idempotent for an address already present. A pair it created is deleted again if a later
 * step fails.
 */
export async function attachNetwork(components: AttachComponents, spec: AttachSpec): Promise<AttachResult> {
  const links = components.links ?? netlinkLinks;
  const cidr = ipv4CidrOf(spec.cidr);
  const ifname = spec.ifname ?? CONTAINER_IFNAME;
  const gateway = spec.gateway === undefined ? undefined : parseIpv4(spec.gateway);
  const ns = links.open(spec.target);
  try {
    const existing = ns.link(ifname);
    if (existing !== null && spec.exclusive === true) throw new LoomError('ERR_CONFLICT', `${ifname} already exists in ${netnsRef(spec.target).slice(0, 100)}`);
    if (existing !== null) {
      const has = ns.addresses4(existing.index).some((a) => a.address === cidr.address && a.prefix === cidr.prefix);
      if (!has) ns.addAddress4(existing.index, cidr.address, cidr.prefix);
      if (gateway !== undefined) ensureDefaultRoute(ns, existing.index, ifname, gateway);
      return { hostVeth: null, mac: existing.mac };
    }
    const mac = spec.mac ?? macFromSeed(`${netnsRef(spec.target)}/${cidr.text}`);
    const hostVeth = spec.hostVeth ?? `vlm${macFromSeed(netnsRef(spec.target)).replace(/:/g, '').slice(0, 12)}`;
    const host = links.open(null);
    try {
      const bridge = host.link(spec.bridge);
      if (bridge === null) throw new LoomError('ERR_NOT_FOUND', `no bridge ${spec.bridge}`);
      host.createVeth({ name: hostVeth, mtu: spec.mtu, master: bridge.index, peer: { name: ifname, mtu: spec.mtu, mac, netns: spec.target } });
      try {
        const peer = ns.link(ifname);
        if (peer === null) throw new LoomError('ERR_OS_COMMAND', `${ifname} did not appear in ${netnsRef(spec.target).slice(0, 100)}`);
        // arp_notify before the address and link-up, so the link-up announcement is sent at all.
        ns.setArpNotify(peer.index);
        ns.addAddress4(peer.index, cidr.address, cidr.prefix);
        ns.setLink('lo', { up: true });
        ns.setLink(peer.index, { up: true });
        // The subnet route comes with the address; multicast goes over the overlay too, as in Weave Net.
        ns.addRoute4({ dst: '224.0.0.0', prefix: 4, oif: peer.index }, true);
        if (gateway !== undefined) ensureDefaultRoute(ns, peer.index, ifname, gateway);
        await waitForwarding(components.clock, host, hostVeth);
        ns.setLink(peer.index, { mac });
      } catch (err) {
        try {
          host.deleteLink(hostVeth);
        } catch {
          // The first failure is the one to report; a pair left behind is deleted by the next attach's EEXIST path or by rm.
        }
        throw err;
      }
    } finally {
      host.close();
    }
    return { hostVeth, mac };
  } finally {
    ns.close();
  }
}

/** What to do about the default route, given the namespace's default routes (pure; see the header). */
export function defaultRouteAction(routes: ReadonlyArray<{ dev?: string; gateway?: string }>, gateway: string, ifname: string = CONTAINER_IFNAME): 'add' | 'replace' | 'keep' | 'foreign' {
  if (routes.length === 0) return 'add';
  if (routes.some((r) => r.dev !== undefined && r.dev !== ifname)) return 'foreign';
  return routes.some((r) => r.gateway === gateway) ? 'keep' : 'replace';
}

/**
 * `default via gateway dev IFNAME` in the namespace (link `index`), unless another interface has
 * the default route. Idempotent.
 */
function ensureDefaultRoute(ns: NetnsLinkHandle, index: number, ifname: string, gateway: string): void {
  const routes = ns.defaultRoutes4().map((r) => ({
    ...(r.oif === null ? {} : { dev: r.oif === index ? ifname : `#${r.oif}` }),
    ...(r.gateway === null ? {} : { gateway: r.gateway }),
  }));
  const action = defaultRouteAction(routes, gateway, ifname);
  if (action === 'add' || action === 'replace') ns.addRoute4({ dst: '0.0.0.0', prefix: 0, oif: index, gateway }, true);
}

/**
 * Waits (bounded, 3 s) until the bridge forwards on `port`. The state is read with RTM_GETLINK on
 * the router's socket (IFLA_LINKINFO / IFLA_INFO_SLAVE_DATA / IFLA_BRPORT_STATE): always the
 * router's namespace, unlike /sys/class/net, which shows the namespace /sys was mounted from.
 */
async function waitForwarding(clock: Clock, host: NetnsLinkHandle, port: string): Promise<void> {
  const deadline = clock.now() + FORWARDING_WAIT_MS;
  for (let i = 0; i < FORWARDING_WAIT_MS / FORWARDING_POLL_MS + 1; i++) {
    if (host.link(port)?.bridgePortState === BR_STATE_FORWARDING) return;
    if (clock.now() >= deadline) break;
    await delay(clock, FORWARDING_POLL_MS);
  }
  throw new LoomError('ERR_TIMEOUT', `bridge port ${port} did not reach forwarding state`);
}
