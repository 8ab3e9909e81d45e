/**
 * Container start: `loom run` until it returns, and until the new container gets its first ping
 * reply from a container on another host (issue 14: goals 150 ms and 300 ms), with `docker run -d`
 * until it returns as the reference on this machine when Docker is installed (a dockerd of the
 * lab's own, default bridge), in the same run.
 *
 *   npm run build && node dist/bench/run-latency.js [--rounds 10]
 *
 * Set-up: a lab of two hosts, routers h1 <-> h2 (kernel fast path, defaults), a target container
 * on h2. Each round, in h1: read the wall clock, `loom run --name rN -- sh -c 'ping -c1 -w5 -i0.01
 * TARGET; date +%s%N > FILE; sleep 30'` (ping every 10 ms until the first reply: no 1 s wait
 * on a first loss), note when the CLI returns, then read the time the container wrote. Phases:
 *   run returned      the CLI started, the router allocated the address, started the
 *                     namespaces, attached the veth, opened the gate, registered the DNS name;
 *   first reply       plus the new MAC's gossip to h2, h2's FDB update and the round trip.
 * `loom rm` after each round (not timed). Bounded: --rounds <= 50, each command 30 s.
 * bin/loom is the native front (native/loom.c): `run` goes to the router, which runs the CLI's
 * code in process. Two references in the same run: the same `loom run` through the Node CLI
 * (LOOM_CLI_FORWARD=0, what bin/loom was before), and what entering the lab host costs
 * (`ip netns exec HOST true`: every loom and docker figure here includes it; a user's shell on a
 * host does not pay it).
 * Nothing leaves the machine: the lab's namespaces only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../src/core/errors.js';
import { Lab } from '../src/lab/index.js';
import { LoomCli } from '../src/demo/loom-cli.js';
import { pollUntil } from '../src/demo/poll.js';
import { IMAGE, TestDockerd, dockerSkipReason } from '../test/helpers/dockerd.js';

function parseArgs(argv: string[]): { rounds: number } {
  let rounds = 10;
  for (let i = 0; i < argv.length; i += 2) {
    const n = Number(argv[i + 1]);
    if (argv[i] === '--rounds' && Number.isInteger(n) && n >= 1 && n <= 50) rounds = n;
    else throw new LoomError('ERR_INVALID_ARGUMENT', `bad argument ${String(argv[i])} ${String(argv[i + 1])}: use --rounds 1..50`);
  }
  return { rounds };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
}

/**
 * The router's own phases of each timed round, from its log's "container started" lines (`ms`:
 * time since the run was asked for), in the order first seen.
 */
const PHASE_NAMES: Record<string, string> = {
  spawn: 'address (IPAM, gateway) taken, container process spawned',
  pid: 'its PID 1 found',
  attach: 'veth attached, address and routes set (netlink)',
  save: 'record saved (fsync)',
  gate: 'gate opened: the command runs',
};

function routerPhases(log: string, rounds: number): Map<string, number[]> {
  const byPhase = new Map<string, number[]>();
  for (const line of log.split('\n')) {
    if (!line.includes('"container started"')) continue;
    let entry: { name?: unknown; ms?: unknown };
    try {
      entry = JSON.parse(line) as { name?: unknown; ms?: unknown };
    } catch {
      continue;
    }
    const round = typeof entry.name === 'string' ? /^r(\d+)$/.exec(entry.name) : null;
    if (round === null || Number(round[1]) >= rounds || typeof entry.ms !== 'object' || entry.ms === null) continue;
    for (const [phase, value] of Object.entries(entry.ms as Record<string, unknown>)) {
      if (typeof value !== 'number') continue;
      const list = byPhase.get(phase) ?? [];
      list.push(value);
      byPhase.set(phase, list);
    }
  }
  return byPhase;
}

const { rounds } = parseArgs(process.argv.slice(2));
const lab = await Lab.create({ hosts: 2, subnet: '192.168.77.0/24' });
const marks = mkdtempSync('/tmp/loom-run-latency-');
try {
  const cli = new LoomCli(lab);
  const [h1, h2] = lab.hosts as [(typeof lab.hosts)[number], (typeof lab.hosts)[number]];
  await cli.launch(h1, { peers: [h2.address] });
  await cli.launch(h2, { peers: [h1.address] });
  await cli.run(h2, ['run', '--name', 'target', '--', 'sleep', '3600']);
  const target = (await cli.containers(h2)).find((c) => c.name === 'target')?.cidrs[0]?.split('/')[0];
  if (target === undefined) throw new LoomError('ERR_NOT_FOUND', 'the target container has no address');
  // Warm-up (page cache, the routers' first allocation), not counted.
  await cli.run(h1, ['run', '--name', 'warm', '--', 'sh', '-c', `ping -c1 -w5 -i0.01 -q ${target}; sleep 30`]);
  await cli.run(h1, ['rm', 'warm']);
  const returned: number[] = [];
  const replied: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const mark = join(marks, `r${r}`);
    const started = Date.now();
    await cli.run(h1, ['run', '--name', `r${r}`, '--', 'sh', '-c', `ping -c1 -w5 -i0.01 -q ${target} >/dev/null; date +%s%N > ${mark}; sleep 30`]);
    returned.push(Date.now() - started);
    const ns = await pollUntil(
      async () => {
        try {
          const text = readFileSync(mark, 'utf8').trim();
          return text === '' ? undefined : Number(text);
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 10_000, intervalMs: 20, what: `round ${r}: the container's first ping reply` },
    );
    replied.push(ns / 1e6 - started);
    await cli.run(h1, ['rm', `r${r}`]);
  }
  // References: the Node CLI path, and the lab's own entry into the host.
  const nodeCli: number[] = [];
  const entry: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let started = Date.now();
    await cli.run(h1, ['run', '--name', `n${r}`, '--', 'sleep', '30'], { env: { LOOM_CLI_FORWARD: '0' } });
    nodeCli.push(Date.now() - started);
    await cli.run(h1, ['rm', `n${r}`]);
    started = Date.now();
    await lab.exec(h1, 'true', []);
    entry.push(Date.now() - started);
  }
  const dockerMs: number[] = [];
  const skip = dockerSkipReason();
  if (skip === null) {
    const d = new TestDockerd(lab, h1);
    try {
      await d.start();
      await d.importImage();
      for (let r = 0; r < rounds; r++) {
        const started = Date.now();
        await d.docker(['run', '-d', '--name', `d${r}`, IMAGE, 'sleep', '30'], { timeoutMs: 30_000 });
        dockerMs.push(Date.now() - started);
        await d.docker(['rm', '-f', `d${r}`], { allowFailure: true });
      }
    } finally {
      await d.stop();
    }
  }
  console.log(`Container start, ${rounds} rounds, medians (min-max), the same run:`);
  console.log('| phase | ms | goal |');
  console.log('|---|---|---|');
  const span = (v: number[]): string => `${median(v).toFixed(0)} (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
  console.log(`| loom run until it returns | ${span(returned)} | <= 150: **${median(returned) <= 150 ? 'pass' : 'fail'}** |`);
  console.log(`| loom run until the first ping reply from a container on another host | ${span(replied)} | <= 300: **${median(replied) <= 300 ? 'pass' : 'fail'}** |`);
  console.log(`| of which after loom run returned | ${median(replied.map((v, i) => v - returned[i]!)).toFixed(0)} | |`);
  console.log(`| reference: the same loom run through the Node CLI (LOOM_CLI_FORWARD=0) | ${span(nodeCli)} | |`);
  console.log(`| reference: entering the lab host (ip netns exec HOST true), inside every loom and docker figure | ${span(entry)} | |`);
  const phases = routerPhases(readFileSync(join(cli.stateDir(h1), 'loom.log'), 'utf8'), rounds);
  for (const [phase, values] of phases) console.log(`| router: ${PHASE_NAMES[phase] ?? phase} | ${span(values)} | |`);
  if (dockerMs.length > 0) console.log(`| reference: docker run -d (default bridge) until it returns | ${span(dockerMs)} | |`);
  else console.log(`| reference: docker run -d | skipped (${skip ?? 'no docker'}) | |`);
} finally {
  rmSync(marks, { recursive: true, force: true });
  await lab.destroy();
}
