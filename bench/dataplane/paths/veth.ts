import type { DataPath } from '../types.js';
import { L2_SUBNET_PREFIX, l2Address } from './addressing.js';

/** A bare veth pair between two namespaces: no bridge, no host, no encapsulation. The ceiling. */
export const vethPath: DataPath = {
  id: 'veth',
  label: 'veth pair, netns to netns (the limit)',
  group: 'limit',
  encrypted: false,
  requires: [],
  async setup(ctx) {
    const a = await ctx.addNetns('va');
    const b = await ctx.addNetns('vb');
    await ctx.exec(a, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b]);
    for (const [ns, n] of [[a, 1], [b, 2]] as const) {
      await ctx.exec(ns, 'ip', ['addr', 'add', `${l2Address(n)}/${L2_SUBNET_PREFIX}`, 'dev', 'eth0']);
      await ctx.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    }
    await ctx.waitForPing(a, l2Address(2));
    return { clientNs: a, serverNs: b, serverIp: l2Address(2), pids: [], mtu: 1500 };
  },
};
