/**
 * Steps 3 and 4: containers started with no address (IPAM picks one from 10.32.0.0/12), listed by
 * `loom ps` and `loom status ipam`; then every container pings every container on the other
 * hosts by address, over kernel VXLAN (`loom status connections` says fastdp).
 */
import type { LabHost } from '../lab/index.js';
import { LoomError } from '../core/errors.js';
import { pollUntil } from './poll.js';
import { containersOn, showLoom, type DemoContext, type DemoStep } from './context.js';
import { addressOf, type DemoContainer } from './containers.js';

/** Which container runs where: service1 and service2 for the DNS story, one more per host. */
export const PLACEMENT: ReadonlyArray<readonly [host: string, name: string]> = [
  ['h1', 'service1'],
  ['h1', 'box1'],
  ['h2', 'service2'],
  ['h2', 'box2'],
  ['h3', 'box3'],
];

export interface Placed {
  host: LabHost;
  name: string;
  ip: string;
}

/** Every running container of the demo with its host and address. */
export async function placedContainers(ctx: DemoContext): Promise<Placed[]> {
  const all: Placed[] = [];
  for (const host of ctx.routers) {
    for (const c of await containersOn(ctx, host)) if (c.alive && c.cidrs.length > 0) all.push({ host, name: c.name, ip: addressOf(c) });
  }
  return all;
}

/** `ping -c 1` from one container to an address; the RTT in ms, or null when lost. */
export async function pingOnce(ctx: DemoContext, from: Placed, to: string): Promise<number | null> {
  const r = await ctx.cli.run(from.host, ['exec', from.name, '--', 'ping', '-c', '1', '-W', '2', to], { allowFailure: true, timeoutMs: 15_000 });
  if (r.code !== 0) return null;
  const rtt = /time=([0-9.]+) ms/.exec(r.stdout)?.[1];
  return rtt === undefined ? 0 : Number(rtt);
}

/**
 * Waits until every router programs every other by `path`, with at least as many MACs per peer as
 * that peer's host runs containers (the kernel then knows where each container is).
 */
export async function waitForPaths(ctx: DemoContext, what: string, accept: (host: LabHost, peerHost: string | undefined, path: { path: string; via?: string | undefined; macs: number }) => boolean, timeoutMs = ctx.convergeTimeoutMs): Promise<void> {
  const hostByPeer = new Map([...ctx.peerNames].map(([host, peer]) => [peer, host]));
  await pollUntil(
    async () => {
      for (const h of ctx.routers) {
        const dp = (await ctx.cli.report(h)).dataplane;
        if (!dp || dp.lastError !== null || dp.peers.length !== ctx.routers.length - 1) return undefined;
        if (!dp.peers.every((p) => accept(h, hostByPeer.get(p.peer), p))) return undefined;
      }
      return true;
    },
    { what, timeoutMs, intervalMs: 300 },
  );
}

export const runContainers: DemoStep = {
  title: 'Containers with no address given: IPAM allocates from 10.32.0.0/12 (`loom run`, `loom ps`, `loom status ipam`)',
  async run(ctx) {
    for (const [hostName, name] of PLACEMENT) {
      await showLoom(ctx, ctx.lab.host(hostName), ['run', '--name', name, '--', 'sleep', '3600'], { timeoutMs: 60_000 });
    }
    const seen: DemoContainer[] = [];
    for (const h of ctx.routers) {
      await showLoom(ctx, h, ['ps']);
      seen.push(...(await containersOn(ctx, h)));
    }
    const addresses = seen.flatMap((c) => c.cidrs);
    if (addresses.length !== PLACEMENT.length || new Set(addresses).size !== addresses.length) {
      throw new LoomError('ERR_INTERNAL', `expected ${PLACEMENT.length} distinct addresses, got ${addresses.join(' ')}`);
    }
    ctx.say(`  ${addresses.length} containers, ${addresses.length} distinct addresses, none given by hand`);
    await showLoom(ctx, ctx.routers[0]!, ['status', 'ipam']);
  },
};

export const pingAcrossHosts: DemoStep = {
  title: 'Containers ping each other across hosts, by address, over kernel VXLAN (fastdp)',
  async run(ctx) {
    const placed = await placedContainers(ctx);
    const count = (host: string | undefined): number => placed.filter((p) => p.host.name === host).length;
    await waitForPaths(ctx, 'every router to program the others by fastdp', (_h, peerHost, p) => p.path === 'fastdp' && p.macs >= count(peerHost));
    const pairs = placed.flatMap((from) => placed.filter((to) => to.host !== from.host).map((to) => [from, to] as const));
    const [first] = pairs;
    if (first) await showLoom(ctx, first[0].host, ['exec', first[0].name, '--', 'ping', '-c', '1', '-W', '2', first[1].ip], { allowFailure: true });
    ctx.say(`  every container to every container on another host (${pairs.length} pairs):`);
    // One source at a time, its targets together: quick, and the lines come out in a stable order.
    let ok = 0;
    for (const from of placed) {
      const targets = pairs.filter(([f]) => f === from).map(([, to]) => to);
      const rtts = await Promise.all(targets.map(async (to) => retryPing(ctx, from, to.ip)));
      targets.forEach((to, i) => {
        const rtt = rtts[i] ?? null;
        if (rtt !== null) ok++;
        ctx.say(`    ${`${from.name} (${from.host.name})`.padEnd(16)} -> ${`${to.name} (${to.host.name}) ${to.ip}`.padEnd(28)} ${rtt === null ? 'LOST' : `ok ${rtt} ms`}`);
      });
    }
    ctx.result.pings = { ok, total: pairs.length };
    ctx.say(`  pings: ${ok}/${pairs.length} ok`);
    if (ok !== pairs.length) throw new LoomError('ERR_INTERNAL', `${pairs.length - ok} of ${pairs.length} pings were lost`);
    await showLoom(ctx, ctx.routers[0]!, ['status', 'connections']);
  },
};

/** A first ping may wait on ARP across the mesh: up to three tries. */
async function retryPing(ctx: DemoContext, from: Placed, to: string): Promise<number | null> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const rtt = await pingOnce(ctx, from, to);
    if (rtt !== null) return rtt;
  }
  return null;
}
