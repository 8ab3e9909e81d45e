import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataPath } from '../types.js';
import { HOST_BRIDGE } from '../context.js';
import { containerMac, l3Address, l3Gateway, l3Subnet } from './addressing.js';
import { peerMtu } from '../conditions.js';

/** On a 1500-byte underlay; lowered with it (conditions.ts). */
const CLEAN_MTU = 1420;
const PORT = '51820';
/** wireguard-go's control sockets live here, shared by every namespace on the machine. */
const UAPI_DIR = '/var/run/wireguard';

/**
 * wireguard-go (user-space WireGuard, L3 over TUN) routing each host's container subnet. The
 * interface name must be unique machine-wide (its control socket is UAPI_DIR/<name>.sock), so it
 * carries the run tag.
 */
export const wireguardGoPath: DataPath = {
  id: 'wireguard-go',
  label: 'wireguard-go (encrypted, L3)',
  group: 'peer',
  encrypted: true,
  requires: ['wireguard-go', 'wg'],
  async setup(ctx) {
    const [h1, h2] = ctx.hosts;
    const mtu = peerMtu(CLEAN_MTU, ctx.underlayMtu);
    const ifName = (n: 1 | 2): string => `lw${ctx.runTag}${n}`;
    const keys: Array<{ priv: string; pub: string }> = [];
    for (const host of ctx.hosts) {
      const priv = (await ctx.exec(host.netns, 'wg', ['genkey'])).stdout.trim();
      const pub = (await ctx.exec(host.netns, 'wg', ['pubkey'], { input: `${priv}\n` })).stdout.trim();
      keys.push({ priv, pub });
    }
    const containers: string[] = [];
    const pids: number[] = [];
    for (const [host, n] of [[h1, 1], [h2, 2]] as const) {
      containers.push(await ctx.addContainer(host, `c${n}`, { cidr: `${l3Address(n)}/24`, mac: containerMac(n), mtu, gateway: l3Gateway(n) }));
      await ctx.exec(host.netns, 'ip', ['addr', 'add', `${l3Gateway(n)}/24`, 'dev', HOST_BRIDGE]);
      pids.push(ctx.start(host.netns, 'wireguard-go', ['-f', ifName(n)], { logName: `wireguard-go-${host.name}.log`, env: { LOG_LEVEL: 'error' } }));
    }
    for (const [host, peer, n, p] of [[h1, h2, 1, 2], [h2, h1, 2, 1]] as const) {
      const name = ifName(n);
      await ctx.waitFor(`${name} control socket`, async () => existsSync(`${UAPI_DIR}/${name}.sock`), 10_000);
      // wg reads the key from a file (it cannot open a socket-backed /dev/stdin); 0600, in the run's dir.
      const keyFile = join(ctx.workDir, `wg-${host.name}.key`);
      writeFileSync(keyFile, `${keys[n - 1]!.priv}\n`, { mode: 0o600 });
      await ctx.exec(host.netns, 'wg', [
        'set', name, 'private-key', keyFile, 'listen-port', PORT,
        'peer', keys[p - 1]!.pub, 'endpoint', `${peer.address}:${PORT}`, 'allowed-ips', l3Subnet(p),
      ]);
      await ctx.exec(host.netns, 'ip', ['link', 'set', name, 'mtu', String(mtu), 'up']);
      await ctx.exec(host.netns, 'ip', ['route', 'add', l3Subnet(p), 'dev', name]);
    }
    await ctx.waitForPing(containers[0]!, l3Address(2), 20_000);
    return {
      clientNs: containers[0]!,
      serverNs: containers[1]!,
      serverIp: l3Address(2),
      pids,
      mtu,
      // A killed wireguard-go can leave its socket behind; ours carry the run tag, so removing them is safe.
      async teardown() {
        for (const pid of pids) await ctx.stop(pid);
        for (const n of [1, 2] as const) rmSync(`${UAPI_DIR}/${ifName(n)}.sock`, { force: true });
      },
    };
  },
};
