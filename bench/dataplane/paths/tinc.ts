import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataPath } from '../types.js';
import { HOST_BRIDGE } from '../context.js';
import { L2_SUBNET_PREFIX, containerMac, l2Address } from './addressing.js';
import { peerMtu } from '../conditions.js';

/** tinc 1.0's own framing; 1400 is what it carries without fragmenting on a 1500 underlay. */
const CLEAN_MTU = 1400;
const TAP = 'tinc0';

/**
 * tinc 1.0 in switch mode (an L2 mesh, like Loom): a tap device per host enslaved to the host
 * bridge, default cipher (blowfish-cbc, sha1). We enslave the tap ourselves once it exists, so
 * no tinc-up script is needed.
 */
export const tincPath: DataPath = {
  id: 'tinc',
  label: 'tinc 1.0 switch mode (encrypted, L2)',
  group: 'peer',
  encrypted: true,
  requires: ['tincd'],
  async setup(ctx) {
    const [h1, h2] = ctx.hosts;
    const mtu = peerMtu(CLEAN_MTU, ctx.underlayMtu);
    const c1 = await ctx.addContainer(h1, 'c1', { cidr: `${l2Address(1)}/${L2_SUBNET_PREFIX}`, mac: containerMac(1), mtu });
    const c2 = await ctx.addContainer(h2, 'c2', { cidr: `${l2Address(2)}/${L2_SUBNET_PREFIX}`, mac: containerMac(2), mtu });
    const confDir = (name: string): string => join(ctx.workDir, 'tinc', name);
    for (const host of ctx.hosts) {
      const dir = confDir(host.name);
      mkdirSync(join(dir, 'hosts'), { recursive: true });
      const conf = [`Name = ${host.name}`, 'Mode = switch', `Interface = ${TAP}`, 'DeviceType = tap', 'AddressFamily = ipv4', `BindToAddress = ${host.address}`];
      if (host === h1) conf.push(`ConnectTo = ${h2.name}`);
      writeFileSync(join(dir, 'tinc.conf'), conf.join('\n') + '\n');
      writeFileSync(join(dir, 'hosts', host.name), `Address = ${host.address}\nPort = 655\n`);
      // Appends the public key to hosts/<name>; stdin closed so it never prompts.
      await ctx.exec(host.netns, 'tincd', ['-c', dir, '-K2048'], { input: '', timeoutMs: 30_000 });
    }
    for (const [from, to] of [[h1, h2], [h2, h1]] as const) {
      writeFileSync(join(confDir(to.name), 'hosts', from.name), readFileSync(join(confDir(from.name), 'hosts', from.name)));
    }
    const pids: number[] = [];
    for (const host of ctx.hosts) {
      const dir = confDir(host.name);
      pids.push(ctx.start(host.netns, 'tincd', ['-c', dir, '-D', '-d1', `--pidfile=${join(dir, 'pid')}`], { logName: `tincd-${host.name}.log` }));
    }
    for (const host of ctx.hosts) {
      await ctx.waitFor(`${TAP} in ${host.name}`, async () => (await ctx.exec(host.netns, 'ip', ['link', 'show', TAP], { allowFailure: true })).code === 0, 10_000);
      await ctx.exec(host.netns, 'ip', ['link', 'set', TAP, 'master', HOST_BRIDGE, 'up']);
    }
    await ctx.waitForPing(c1, l2Address(2), 20_000);
    return { clientNs: c1, serverNs: c2, serverIp: l2Address(2), pids, mtu };
  },
};
