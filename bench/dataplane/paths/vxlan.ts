import type { DataPath } from '../types.js';
import { HOST_BRIDGE } from '../context.js';
import { L2_SUBNET_PREFIX, containerMac, l2Address } from './addressing.js';

const VNI = '42';
const MTU = 1450; // 1500 underlay - 50 bytes of VXLAN/UDP/IP/Ethernet

/**
 * Hand-made kernel VXLAN, the way Loom's fast path is meant to look: one `nolearning` vxlan
 * device per host enslaved to the host bridge, static FDB (all-zeros entry per peer for
 * broadcast, one entry per remote MAC so unicast is never flooded). The reference for Loom's
 * fast path.
 */
export const vxlanPath: DataPath = {
  id: 'vxlan',
  label: 'kernel VXLAN by hand (static FDB)',
  group: 'kernel',
  encrypted: false,
  requires: ['bridge'],
  async setup(ctx) {
    const [h1, h2] = ctx.hosts;
    const c1 = await ctx.addContainer(h1, 'c1', { cidr: `${l2Address(1)}/${L2_SUBNET_PREFIX}`, mac: containerMac(1), mtu: MTU });
    const c2 = await ctx.addContainer(h2, 'c2', { cidr: `${l2Address(2)}/${L2_SUBNET_PREFIX}`, mac: containerMac(2), mtu: MTU });
    const sides = [
      { host: h1, peer: h2, remoteMac: containerMac(2) },
      { host: h2, peer: h1, remoteMac: containerMac(1) },
    ];
    for (const { host, peer, remoteMac } of sides) {
      const ns = host.netns;
      await ctx.exec(ns, 'ip', ['link', 'add', 'vx0', 'type', 'vxlan', 'id', VNI, 'local', host.address, 'dev', 'eth0', 'dstport', '4789', 'nolearning']);
      await ctx.exec(ns, 'ip', ['link', 'set', 'vx0', 'master', HOST_BRIDGE, 'up']);
      await ctx.exec(ns, 'bridge', ['fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', peer.address]);
      await ctx.exec(ns, 'bridge', ['fdb', 'append', remoteMac, 'dev', 'vx0', 'dst', peer.address]);
    }
    await ctx.waitForPing(c1, l2Address(2));
    return { clientNs: c1, serverNs: c2, serverIp: l2Address(2), pids: [], mtu: MTU };
  },
};
