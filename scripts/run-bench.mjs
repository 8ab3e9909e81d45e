#!/usr/bin/env node
// `npm run bench`: every benchmark, one after the other, each in its own process and bounded in
// time. Each prints its figures next to a baseline measured in the same run (ratios). The ones
// that build network namespaces (dns, dataplane) need root and say so when they cannot run.
// Usage: npm run bench [-- NAME... [--flag value...]]   (names: cli run-latency memory idle quiet-gc control-plane ipam ipam-api relay cri dns docker dataplane cni)
// Flags after the names go to each benchmark named, e.g. `npm run bench -- memory --minutes 1`.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BENCHES = [
  // loom --help / ps / status against node -e 0 in a one-host lab (~30 s).
  { name: 'cli', file: 'dist/bench/cli.js', limitMs: 3 * 60_000, root: true },
  // loom run until it returns and until the first reply from another host, docker run -d beside it (~1 min).
  { name: 'run-latency', file: 'dist/bench/run-latency.js', limitMs: 4 * 60_000, root: true },
  // Router RSS idle, after 5 min of relay traffic and after 1,000 container starts and stops, bare node beside it (~12 min).
  { name: 'memory', file: 'dist/bench/memory.js', limitMs: 30 * 60_000, root: true },
  // Four routers (three peers each), no traffic: % of a core against an idle `sleep` (~1.5 min).
  { name: 'idle', file: 'dist/bench/idle.js', limitMs: 5 * 60_000, root: true },
  // One router: churn, then DNS at 10,000 and at 200 q/s: whether the quiet GC fires, its pause, the DNS tail around it (~2 min).
  { name: 'quiet-gc', file: 'dist/bench/quiet-gc.js', limitMs: 5 * 60_000, root: true },
  { name: 'control-plane', file: 'dist/bench/control-plane.js', limitMs: 12 * 60_000 },
  { name: 'ipam', file: 'dist/bench/ipam.js', limitMs: 3 * 60_000 },
  { name: 'ipam-api', file: 'dist/bench/ipam-api.js', limitMs: 3 * 60_000 },
  { name: 'relay', file: 'dist/bench/relay.js', limitMs: 3 * 60_000 },
  // containerd's CRI plugin, RunPodSandbox and Stop+Remove on bridge vs Loom, 30 pods each (~1-3 min).
  { name: 'cri', file: 'dist/bench/cri.js', limitMs: 6 * 60_000, root: true },
  { name: 'dns', file: 'dist/bench/dns.js', limitMs: 4 * 60_000, root: true },
  // Two dockerds and two routers in a lab; 7 rounds of Loom vs Docker's bridge (~2 min).
  { name: 'docker', file: 'dist/bench/docker.js', limitMs: 6 * 60_000, root: true },
  // Four underlay conditions x the relay rows and three peers: ~8 min (docs/BENCHMARKS.md).
  { name: 'dataplane', file: 'dist/bench/dataplane.js', limitMs: 16 * 60_000, root: true },
  // 200 pods x (loom-cni + bridge) x (ADD + DEL): ~5 min on a busy 2-vCPU machine.
  { name: 'cni', file: 'dist/bench/cni.js', limitMs: 15 * 60_000, root: true },
];

const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const wanted = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
if (flags.length > 0 && wanted.length === 0) {
  console.error('run-bench: flags go to the benchmarks named before them: npm run bench -- NAME --flag value');
  process.exit(2);
}
const unknown = wanted.filter((w) => !BENCHES.some((b) => b.name === w));
if (unknown.length > 0) {
  console.error(`run-bench: unknown benchmark ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(' ')}`);
  process.exit(2);
}
const isRoot = process.getuid?.() === 0;

function run(bench) {
  return new Promise((resolve) => {
    console.log(`\n=== bench ${bench.name}: node ${bench.file} ===`);
    const child = spawn(process.execPath, [bench.file, ...flags], { cwd: root, stdio: 'inherit', detached: true });
    const timer = setTimeout(() => {
      console.error(`run-bench: ${bench.name} ran out of time (${bench.limitMs} ms); stopping it`);
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
    }, bench.limitMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ name: bench.name, ok: code === 0, how: signal ?? `exit ${code}` });
    });
  });
}

const results = [];
for (const bench of BENCHES.filter((b) => wanted.length === 0 || wanted.includes(b.name))) {
  if (bench.root && !isRoot) {
    console.log(`\n=== bench ${bench.name}: skipped (needs root to build network namespaces) ===`);
    results.push({ name: bench.name, ok: true, how: 'skipped' });
    continue;
  }
  results.push(await run(bench));
}
console.log('\n=== benchmarks ===');
for (const r of results) console.log(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name} (${r.how})`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
