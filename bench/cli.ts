/**
 * CLI start: `loom --help`, `loom ps` and `loom status` against `node -e 0`, all in the same run
 * and the same place (inside a lab host's network namespace, where a router runs for ps and
 * status), as ratios of medians. Issue 14's goal: `loom --help` <= 1.3x `node -e 0`.
 *
 *   node dist/bench/cli.js [--rounds 15]
 *
 * Each round runs every command once, in a shuffled order, so load from elsewhere on the machine
 * hits all alike. Each run is a fresh process through `ip netns exec` (the same for the
 * reference). Two more rows show what each step buys: the same CLI unbundled
 * (dist/src/cli/main.js, the commands still loading their work lazily) and the bundle's cost in
 * CPU time (user + system of the child, from /proc, which load elsewhere disturbs less).
 * Nothing leaves the machine: one lab host, no peers.
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { LoomError } from '../src/core/errors.js';
import { Lab } from '../src/lab/index.js';
import { LoomCli, repoRoot } from '../src/demo/loom-cli.js';
import { systemRunner } from '../src/os/runner.js';

function parseArgs(argv: string[]): { rounds: number } {
  let rounds = 15;
  for (let i = 0; i < argv.length; i += 2) {
    const n = Number(argv[i + 1]);
    if (argv[i] === '--rounds' && Number.isInteger(n) && n >= 3 && n <= 100) rounds = n;
    else throw new LoomError('ERR_INVALID_ARGUMENT', `bad argument ${String(argv[i])} ${String(argv[i + 1])}: use --rounds 3..100`);
  }
  return { rounds };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface Row {
  label: string;
  cmd: string;
  args: string[];
  wallMs: number[];
}

const { rounds } = parseArgs(process.argv.slice(2));
const root = repoRoot();
const loom = join(root, 'bin', 'loom');
const unbundled = join(root, 'dist', 'src', 'cli', 'main.js');
const node = process.execPath;

const lab = await Lab.create({ hosts: 1, subnet: '192.168.79.0/24' });
try {
  const cli = new LoomCli(lab);
  const host = lab.hosts[0]!;
  await cli.launch(host, { args: ['--no-dns'] });
  const env = { LOOM_STATE_DIR: cli.stateDir(host) };
  const rows: Row[] = [
    { label: 'node -e 0 (reference)', cmd: node, args: ['-e', '0'], wallMs: [] },
    { label: 'loom --help', cmd: loom, args: ['--help'], wallMs: [] },
    { label: 'loom ps', cmd: loom, args: ['ps'], wallMs: [] },
    { label: 'loom status', cmd: loom, args: ['status'], wallMs: [] },
    { label: 'loom --help, unbundled (main.js)', cmd: node, args: [unbundled, '--help'], wallMs: [] },
  ];
  // bin/loom starts Node without NODE_EXTRA_CA_CERTS (src/cli/extra-ca-certs.ts): where it is set,
  // the same Node start without it is the second reference, so no one reads a ratio below 1 as magic.
  const caSet = (process.env['NODE_EXTRA_CA_CERTS'] ?? '') !== '';
  if (caSet) rows.splice(1, 0, { label: 'node -e 0 without NODE_EXTRA_CA_CERTS (as bin/loom starts Node)', cmd: '/usr/bin/env', args: ['-u', 'NODE_EXTRA_CA_CERTS', node, '-e', '0'], wallMs: [] });
  // One warm-up run each (page cache), not counted.
  for (const row of rows) await lab.exec(host, row.cmd, row.args, { env, timeoutMs: 20_000 });
  for (let r = 0; r < rounds; r++) {
    for (const row of shuffled(rows)) {
      const started = performance.now();
      await lab.exec(host, row.cmd, row.args, { env, timeoutMs: 20_000 });
      row.wallMs.push(performance.now() - started);
    }
  }
  // CPU time of one process (user + system, ms), the median of `rounds` runs: `time` in the lab host.
  const cpu = async (cmd: string, args: string[]): Promise<number> => {
    const samples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const out = await systemRunner.run('/usr/bin/time', ['-f', 'CPU %U %S', cmd, ...args], { netns: host.netns, env: { ...process.env, ...env }, timeoutMs: 20_000 });
      const m = /CPU ([\d.]+) ([\d.]+)/.exec(out.stderr);
      if (m) samples.push((Number(m[1]) + Number(m[2])) * 1000);
    }
    return median(samples);
  };
  const reference = median(rows[0]!.wallMs);
  const bare = caSet ? median(rows[1]!.wallMs) : reference;
  console.log(`CLI start, ${rounds} rounds, median wall time per run through ip netns exec (same run, shuffled order)${caSet ? '; NODE_EXTRA_CA_CERTS is set here' : ''}:`);
  console.log(`| command | median ms | p90 ms | vs node -e 0 |${caSet ? ' vs node -e 0 without it |' : ''} goal |`);
  console.log(`|---|---|---|---|${caSet ? '---|' : ''}---|`);
  for (const row of rows) {
    const sorted = [...row.wallMs].sort((a, b) => a - b);
    const p90 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))] ?? NaN;
    const ratio = median(row.wallMs) / reference;
    const goal = row.label === 'loom --help' ? `<= 1.3x: **${ratio <= 1.3 ? 'pass' : 'fail'}**` : '';
    const second = caSet ? ` ${(median(row.wallMs) / bare).toFixed(2)}x |` : '';
    console.log(`| ${row.label} | ${median(row.wallMs).toFixed(0)} | ${p90.toFixed(0)} | ${ratio.toFixed(2)}x |${second} ${goal} |`);
  }
  const cpuNode = await cpu(node, ['-e', '0']);
  const cpuHelp = await cpu(loom, ['--help']);
  console.log(`CPU time (user+sys, median of ${rounds}): node -e 0 ${cpuNode.toFixed(0)} ms, loom --help ${cpuHelp.toFixed(0)} ms (${(cpuHelp / cpuNode).toFixed(2)}x)`);
} finally {
  await lab.destroy();
}
