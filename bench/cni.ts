/**
 * CNI benchmark: ADD and DEL latency of loom-cni (Loom IPAM, veth into the Loom bridge, against a
 * real router) and of the reference `bridge` plugin with `host-local` IPAM, same machine, same
 * run, over --pods sandboxes each (default 200), p50/p99 and the ratio loom/bridge (goal <= 1.5).
 * loom-cni is the native shim (dist/bin/loom-cni, native/loom-cni.c: each call forwarded to the
 * router's POST /cni/exec). Also the cost of starting it at all (VERSION, answered by the router),
 * of its Node fallback (dist/bin/loom-cni-node: Node start-up + module load) and of Node itself,
 * to say where the time goes.
 *
 *   npm run build && sudo node dist/bench/cni.js [--pods 200]
 *
 * Setup: a lab with one host running `bin/loom launch`; both plugins are executed the way a
 * runtime does (env + stdin) from that host's namespace (`ip netns exec`, the same wrapper for
 * both), sandboxes are netns made beforehand (not timed). Pods of the two plugins alternate, so
 * drifting machine load hits both. Cleanup: the lab's prefix on every name; every sandbox is
 * deleted and the lab destroyed at the end, on failure and on exit.
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { LoomError } from '../src/core/errors.js';
import { Lab } from '../src/lab/index.js';
import { LoomCli, repoRoot } from '../src/demo/loom-cli.js';
import { pollUntil } from '../src/demo/poll.js';
import { systemRunner } from '../src/os/runner.js';

const LOOM_CNI = join(repoRoot(), 'dist', 'bin', 'loom-cni');
const LOOM_CNI_NODE = join(repoRoot(), 'dist', 'bin', 'loom-cni-node');
const BRIDGE = '/usr/lib/cni/bridge';

type Which = 'loom' | 'bridge';
/** Alternating order, so drifting machine load hits both plugins alike. */
function order(i: number): Which[] {
  return i % 2 === 0 ? ['loom', 'bridge'] : ['bridge', 'loom'];
}

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1 || v > 5000) throw new LoomError('ERR_INVALID_ARGUMENT', `--${name} takes 1..5000`);
  return v;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function stats(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99) };
}

async function main(): Promise<void> {
  const pods = option('pods', 200);
  const lab = await Lab.create({ hosts: 1 });
  const sandboxes: string[] = [];
  try {
    const cli = new LoomCli(lab);
    const h1 = lab.hosts[0]!;
    await cli.launch(h1);
    await pollUntil(async () => ((JSON.parse((await cli.run(h1, ['report'])).stdout) as { ipam?: { state?: string } }).ipam?.state === 'ready' ? true : undefined), { what: 'IPAM ready', timeoutMs: 30_000 });
    const plugins = {
      loom: { exe: LOOM_CNI, conf: { cniVersion: '1.0.0', name: `${lab.prefix}loom`, type: 'loom-cni' } },
      bridge: {
        exe: BRIDGE,
        conf: { cniVersion: '1.0.0', name: `${lab.prefix}br`, type: 'bridge', bridge: `${lab.prefix}br0`, isGateway: true, ipam: { type: 'host-local', dataDir: join(lab.workDir, 'host-local'), ranges: [[{ subnet: '10.250.0.0/16' }]] } },
      },
    } as const;
    const call = async (which: keyof typeof plugins, command: string, id: string, netns: string): Promise<number> => {
      const p = plugins[which];
      const env = { ...process.env, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=${id}` };
      const t0 = performance.now();
      const r = await systemRunner.run('ip', ['netns', 'exec', h1.netns, p.exe], { env, input: JSON.stringify(p.conf), allowFailure: true, timeoutMs: 60_000 });
      const dt = performance.now() - t0;
      if (r.code !== 0) throw new LoomError('ERR_OS_COMMAND', `${which} ${command} ${id} failed: ${r.stdout.slice(0, 300)}`);
      return dt;
    };
    const version: number[] = [];
    const nodeVersion: number[] = [];
    const bareNode: number[] = [];
    for (let i = 0; i < 20; i++) {
      let t0 = performance.now();
      await systemRunner.run('ip', ['netns', 'exec', h1.netns, LOOM_CNI], { env: { ...process.env, CNI_COMMAND: 'VERSION' }, input: '' });
      version.push(performance.now() - t0);
      t0 = performance.now();
      await systemRunner.run('ip', ['netns', 'exec', h1.netns, LOOM_CNI_NODE], { env: { ...process.env, CNI_COMMAND: 'VERSION' }, input: '' });
      nodeVersion.push(performance.now() - t0);
      t0 = performance.now();
      await systemRunner.run('ip', ['netns', 'exec', h1.netns, process.execPath, '-e', '0']);
      bareNode.push(performance.now() - t0);
    }
    const times = { loom: { add: [] as number[], del: [] as number[] }, bridge: { add: [] as number[], del: [] as number[] } };
    for (let i = 0; i < pods; i++) {
      for (const which of order(i)) {
        const ns = `${lab.prefix}-b${which[0]}${i}`;
        await systemRunner.run('ip', ['netns', 'add', ns]);
        sandboxes.push(ns);
        times[which].add.push(await call(which, 'ADD', `${lab.prefix}${which}${i}`, `/run/netns/${ns}`));
      }
    }
    for (let i = 0; i < pods; i++) {
      for (const which of order(i + 1)) {
        times[which].del.push(await call(which, 'DEL', `${lab.prefix}${which}${i}`, `/run/netns/${lab.prefix}-b${which[0]}${i}`));
      }
    }
    const row = (label: string, s: { p50: number; p99: number }) => `${label.padEnd(34)} p50 ${s.p50.toFixed(1).padStart(7)} ms   p99 ${s.p99.toFixed(1).padStart(7)} ms`;
    const la = stats(times.loom.add);
    const ba = stats(times.bridge.add);
    const ld = stats(times.loom.del);
    const bd = stats(times.bridge.del);
    console.log(`CNI ADD/DEL latency over ${pods} pods each (same run, alternating; each call through \`ip netns exec\`)`);
    console.log(row('bridge + host-local ADD (baseline)', ba));
    console.log(row('loom-cni ADD', la));
    console.log(row('bridge + host-local DEL (baseline)', bd));
    console.log(row('loom-cni DEL', ld));
    console.log(row('loom-cni VERSION (native shim)', stats(version)));
    console.log(row('loom-cni-node VERSION (Node)', stats(nodeVersion)));
    console.log(row('node -e 0 (Node itself)', stats(bareNode)));
    console.log(`ratio loom/bridge: ADD p50 ${(la.p50 / ba.p50).toFixed(2)}x p99 ${(la.p99 / ba.p99).toFixed(2)}x; DEL p50 ${(ld.p50 / bd.p50).toFixed(2)}x p99 ${(ld.p99 / bd.p99).toFixed(2)}x (goal <= 1.5x)`);
  } finally {
    for (const ns of sandboxes) await systemRunner.run('ip', ['netns', 'del', ns], { allowFailure: true });
    await lab.destroy();
  }
}

await main();
