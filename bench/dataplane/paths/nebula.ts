import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataPath } from '../types.js';
import { HOST_BRIDGE } from '../context.js';
import { containerMac, l3Address, l3Gateway, l3Subnet, overlayHostAddress } from './addressing.js';
import { peerMtu } from '../conditions.js';

/** On a 1500-byte underlay; lowered with it (conditions.ts). */
const CLEAN_MTU = 1420;
const PORT = 4242;

/** nebula's YAML for host n of 2 (JSON is valid YAML, so no YAML writer is needed). */
export function nebulaConfig(dir: string, n: 1 | 2, hostAddress: string, peerAddress: string, mtu = CLEAN_MTU): string {
  const peer: 1 | 2 = n === 1 ? 2 : 1;
  const any = [{ port: 'any', proto: 'any', host: 'any' }];
  return JSON.stringify(
    {
      pki: { ca: join(dir, 'ca.crt'), cert: join(dir, `h${n}.crt`), key: join(dir, `h${n}.key`) },
      static_host_map: { [overlayHostAddress(peer)]: [`${peerAddress}:${PORT}`] },
      lighthouse: { am_lighthouse: false, hosts: [] },
      listen: { host: hostAddress, port: PORT },
      punchy: { punch: false },
      tun: { dev: `neb${n}`, mtu, unsafe_routes: [{ route: l3Subnet(peer), via: overlayHostAddress(peer) }] },
      logging: { level: 'warning' },
      firewall: { outbound: any, inbound: any },
    },
    null,
    1,
  );
}

/**
 * nebula (L3 over a TUN device, AES-GCM): its own CA; each host's container subnet is carried as
 * an unsafe route signed into the peer's certificate.
 */
export const nebulaPath: DataPath = {
  id: 'nebula',
  label: 'nebula (encrypted, L3)',
  group: 'peer',
  encrypted: true,
  requires: ['nebula', 'nebula-cert'],
  async setup(ctx) {
    const [h1, h2] = ctx.hosts;
    const mtu = peerMtu(CLEAN_MTU, ctx.underlayMtu);
    const dir = join(ctx.workDir, 'nebula');
    mkdirSync(dir, { recursive: true });
    await ctx.exec(h1.netns, 'nebula-cert', ['ca', '-name', `loom-bench-${ctx.runTag}`, '-out-crt', join(dir, 'ca.crt'), '-out-key', join(dir, 'ca.key')]);
    const containers: string[] = [];
    const pids: number[] = [];
    for (const [host, peer, n] of [[h1, h2, 1], [h2, h1, 2]] as const) {
      containers.push(await ctx.addContainer(host, `c${n}`, { cidr: `${l3Address(n)}/24`, mac: containerMac(n), mtu, gateway: l3Gateway(n) }));
      await ctx.exec(host.netns, 'ip', ['addr', 'add', `${l3Gateway(n)}/24`, 'dev', HOST_BRIDGE]);
      await ctx.exec(host.netns, 'nebula-cert', [
        'sign', '-ca-crt', join(dir, 'ca.crt'), '-ca-key', join(dir, 'ca.key'), '-name', host.name,
        '-ip', `${overlayHostAddress(n)}/24`, '-subnets', l3Subnet(n),
        '-out-crt', join(dir, `h${n}.crt`), '-out-key', join(dir, `h${n}.key`),
      ]);
      const config = join(dir, `h${n}.yml`);
      writeFileSync(config, nebulaConfig(dir, n, host.address, peer.address, mtu));
      pids.push(ctx.start(host.netns, 'nebula', ['-config', config], { logName: `nebula-${host.name}.log` }));
    }
    await ctx.waitForPing(containers[0]!, l3Address(2), 20_000);
    return { clientNs: containers[0]!, serverNs: containers[1]!, serverIp: l3Address(2), pids, mtu };
  },
};
