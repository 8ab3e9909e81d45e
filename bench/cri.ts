/**
 * Pod network set-up as kubelet pays for it: RunPodSandbox, and StopPodSandbox + RemovePodSandbox,
 * through containerd 1.6's CRI plugin in one lab host, on two networks in the same run:
 *   bridge  the reference bridge + host-local + portmap conflist (the baseline)
 *   loom    `loom cni install` (loom-cni + portmap) with a Loom router in the host
 * Each network has its own containerd in the host (same config, same sandbox image); pods are
 * started and torn down one at a time, alternating between the two, so load from elsewhere on the
 * machine hits both alike. Reports p50/p99 per network and the ratio loom/bridge. The figure
 * includes what containerd does for every pod (snapshot, runc, the shim), which is the same on
 * both sides: the ratio is an end-to-end one, not the plugin's alone (see the CNI benchmark).
 *
 *   node dist/bench/cri.js [--pods 30] [--json FILE]
 *
 * Needs root, containerd, runc, busybox-static and the reference plugins (scripts/install.sh).
 * Without the native shim dist/bin/loom-cni (npm run build) it measures the baseline only and says so.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LoomError } from '../src/core/errors.js';
import { Lab } from '../src/lab/index.js';
import { LoomCli, repoRoot } from '../src/demo/loom-cli.js';
import { criSkipReason, podConfig, startCriNode, stopCriNode, type CriNode } from '../test/helpers/cri/nodes.js';

interface Options {
  pods: number;
  json: string | null;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { pods: 30, json: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--pods' && value !== undefined && /^[0-9]+$/.test(value) && Number(value) >= 3 && Number(value) <= 500) options.pods = Number(argv[++i]);
    else if (arg === '--json' && value !== undefined) options.json = argv[++i] ?? null;
    else throw new LoomError('ERR_INVALID_ARGUMENT', `usage: cri [--pods 3..500] [--json FILE] (at "${String(arg).slice(0, 40)}")`);
  }
  return options;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Series {
  run: number[];
  teardown: number[];
}

interface Summary {
  pods: number;
  runP50Ms: number;
  runP99Ms: number;
  teardownP50Ms: number;
  teardownP99Ms: number;
}

function summarize(s: Series): Summary {
  const run = [...s.run].sort((a, b) => a - b);
  const down = [...s.teardown].sort((a, b) => a - b);
  return { pods: run.length, runP50Ms: percentile(run, 50), runP99Ms: percentile(run, 99), teardownP50Ms: percentile(down, 50), teardownP99Ms: percentile(down, 99) };
}

/** One pod through its whole life; the conflist may not be loaded yet on the first (warm-up) call. */
async function podCycle(node: CriNode, name: string, series: Series | null): Promise<void> {
  const t0 = performance.now();
  const id = await node.cri.runPodSandbox(podConfig(node, name));
  const t1 = performance.now();
  await node.cri.stopPodSandbox(id);
  await node.cri.removePodSandbox(id);
  const t2 = performance.now();
  if (series) {
    series.run.push(t1 - t0);
    series.teardown.push(t2 - t1);
  }
}

async function warmUp(node: CriNode, name: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await podCycle(node, name, null);
    } catch (err) {
      if (Date.now() > deadline || !/cni plugin not initialized|no network config/i.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const skip = criSkipReason();
  if (skip !== null) throw new LoomError('ERR_UNAVAILABLE', `the CRI benchmark cannot run here: ${skip}`);
  const loomCni = existsSync(join(repoRoot(), 'dist', 'bin', 'loom-cni'));
  const lab = await Lab.create({ hosts: 1 });
  const nodes: CriNode[] = [];
  try {
    const bridge = await startCriNode(lab, 'h1', { instance: 'br', referencePlugins: ['loopback', 'bridge', 'host-local', 'portmap'] });
    nodes.push(bridge);
    const conflist = {
      cniVersion: '1.0.0',
      name: 'benchbr',
      plugins: [
        { type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, ipam: { type: 'host-local', dataDir: join(bridge.containerd.dir, 'host-local'), ranges: [[{ subnet: '10.99.62.0/24' }]] } },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    };
    writeFileSync(join(bridge.containerd.paths.cniConfDir, '10-benchbr.conflist'), JSON.stringify(conflist));
    const variants: Array<{ name: string; node: CriNode; series: Series }> = [{ name: 'bridge', node: bridge, series: { run: [], teardown: [] } }];
    if (loomCni) {
      const cli = new LoomCli(lab);
      await cli.launch('h1');
      const loom = await startCriNode(lab, 'h1', { instance: 'loom', referencePlugins: ['loopback', 'portmap', 'bandwidth'] });
      nodes.push(loom);
      await cli.run('h1', ['cni', 'install', '--bin-dir', loom.containerd.paths.cniBinDir, '--conf-dir', loom.containerd.paths.cniConfDir]);
      variants.push({ name: 'loom', node: loom, series: { run: [], teardown: [] } });
    }
    for (const v of variants) await warmUp(v.node, `warm-${v.name}`);
    for (let i = 0; i < options.pods; i++) for (const v of variants) await podCycle(v.node, `${v.name}-${i}`, v.series);

    const results = Object.fromEntries(variants.map((v) => [v.name, summarize(v.series)]));
    console.log(`CRI pod network set-up, containerd ${(await bridge.cri.version()).runtimeVersion}, ${options.pods} pods per network, one at a time, alternating`);
    console.log('network   RunPodSandbox p50/p99 ms   Stop+Remove p50/p99 ms');
    for (const [name, s] of Object.entries(results)) {
      console.log(`${name.padEnd(9)} ${s.runP50Ms.toFixed(0).padStart(8)} / ${s.runP99Ms.toFixed(0).padEnd(12)} ${s.teardownP50Ms.toFixed(0).padStart(8)} / ${s.teardownP99Ms.toFixed(0)}`);
    }
    const b = results.bridge;
    const l = results.loom;
    if (b && l) {
      console.log(`ratio loom/bridge: RunPodSandbox p50 ${(l.runP50Ms / b.runP50Ms).toFixed(2)}x p99 ${(l.runP99Ms / b.runP99Ms).toFixed(2)}x; Stop+Remove p50 ${(l.teardownP50Ms / b.teardownP50Ms).toFixed(2)}x p99 ${(l.teardownP99Ms / b.teardownP99Ms).toFixed(2)}x`);
    } else {
      console.log('loom: not measured (dist/bin/loom-cni is not built)');
    }
    if (options.json) writeFileSync(options.json, JSON.stringify({ pods: options.pods, results }, null, 2));
  } finally {
    for (const n of nodes) await stopCriNode(n);
    await lab.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
