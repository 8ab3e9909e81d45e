/**
 * `npm run chaos`: the long chaos scenarios, bounded in time, each in a lab of namespaces it
 * creates and destroys (also on failure and Ctrl-C: a lab tears itself down on exit and signals).
 * Each scenario prints its figures and its broken invariants; the exit code is non-zero when any
 * invariant broke. The short form of each runs inside `npm test` (test/e2e/chaos-short.test.ts).
 *
 *   npm run chaos [-- --hosts 5] [-- --scenario kill-restart|link-flap|flood|soak|rmpeer|disk|link-flap-long|partition] [-- --minutes 10]
 *   npm run chaos -- --scenario soak [--minutes 10] [--leak-kb N]   (--leak-kb: a deliberate leak in h3's router, N KiB per mutating API call)
 *   npm run chaos -- --scenario partition [--seed S] [--steps 40] [--hold 2-4] [--seconds 240] [--history FILE]   (replay a run by its seed)
 *
 * docs/RELIABILITY.md records the last full run.
 */
import { Lab } from '../../src/lab/index.js';
import { LoomCli } from '../../src/demo/loom-cli.js';
import { killContainers } from '../helpers/underlay.js';
import { flood } from './flood.js';
import { killRestart } from './kill-restart.js';
import { linkFlap } from './link-flap.js';
import { killSoakContainers, soak } from './soak.js';
import { rmpeerChaos } from './rmpeer.js';
import { diskChaos } from './disk.js';
import { partitionScenario } from './partition.js';

function option(name: string, fallback: number, min: number, max: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`chaos: --${name} takes an integer ${min}..${max}`);
    process.exit(2);
  }
  return v;
}

const SCENARIOS = ['kill-restart', 'link-flap', 'flood', 'soak', 'rmpeer', 'disk', 'link-flap-long', 'partition'] as const;
type Scenario = (typeof SCENARIOS)[number];
const picked = process.argv.includes('--scenario') ? process.argv[process.argv.indexOf('--scenario') + 1] : undefined;
if (picked !== undefined && !SCENARIOS.includes(picked as Scenario)) {
  console.error(`chaos: --scenario takes one of ${SCENARIOS.join(', ')}`);
  process.exit(2);
}
const hosts = option('hosts', 5, 3, 8);
const soakMinutes = option('minutes', 10, 1, 120);

/** Runs one scenario in a lab of its own; returns its broken invariants. */
async function inLab(labHosts: number, subnet: string, body: (lab: Lab, cli: LoomCli) => Promise<string[]>): Promise<string[]> {
  const lab = await Lab.create({ hosts: labHosts, subnet });
  try {
    return await body(lab, new LoomCli(lab));
  } catch (err) {
    return [`the scenario failed to run: ${err instanceof Error ? err.message : String(err)}`];
  } finally {
    killContainers();
    await lab.destroy();
  }
}

const RUNS: Record<Scenario, () => Promise<string[]>> = {
  'kill-restart': () =>
    inLab(hosts, '192.168.89.0/24', async (lab, cli) => {
      console.log(`== kill-restart: kill -9 of each of ${hosts} routers in turn (h1-h2 without UDP: relayed), pings between all containers, a fast-path TCP transfer across each crash`);
      return (await killRestart(lab, cli, { victims: lab.hosts.map((_, i) => i), wholeWithinMs: 5_000, log: (line) => console.log(`  ${line}`) })).problems;
    }),
  'link-flap': () =>
    inLab(3, '192.168.85.0/24', async (lab, cli) => {
      console.log("== link-flap: h2's underlay link down and up every 2 s for a minute, containers on three hosts");
      return (await linkFlap(lab, cli, { flapMs: 60_000, periodMs: 2_000, quietMs: 15_000, maxGrowthMb: 5, log: (line) => console.log(`  ${line}`) })).problems;
    }),
  partition: () =>
    inLab(hosts, '192.168.83.0/24', async (lab, cli) => {
      const seed = option('seed', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31 - 1);
      const steps = option('steps', 40, 4, 1_000);
      const holdText = process.argv.includes('--hold') ? (process.argv[process.argv.indexOf('--hold') + 1] ?? '') : undefined;
      const holdMatch = holdText === undefined ? null : /^(\d{1,2})-(\d{1,2})$/.exec(holdText);
      if (holdText !== undefined && (holdMatch === null || Number(holdMatch[1]) < 1 || Number(holdMatch[1]) > Number(holdMatch[2]))) {
        console.error('chaos: --hold takes MIN-MAX container steps per partition, 1 <= MIN <= MAX <= 99 (default 2-4)');
        process.exit(2);
      }
      const holdSteps = holdMatch === null ? undefined : ([Number(holdMatch[1]), Number(holdMatch[2])] as const);
      console.log(`== partition: seed ${seed}, ${steps} steps on ${hosts} hosts: symmetric and one-way partitions, heals, containers started, removed and moved on both sides; a history checker over addresses, DNS and pings`);
      const result = await partitionScenario(lab, cli, {
        seed,
        steps,
        ...(holdSteps === undefined ? {} : { holdSteps }),
        timeBoundMs: option('seconds', 240, 10, 3_600) * 1000,
        maxPerHost: 2,
        dnsWithinMs: 2_000,
        routesWithinMs: 5_000,
        observeMs: 20_000,
        stableMs: 2_000,
        ...(process.argv.includes('--history') ? { historyFile: process.argv[process.argv.indexOf('--history') + 1] ?? 'partition-history.json' } : {}),
        log: (line) => console.log(`  ${line}`),
      });
      return result.problems;
    }),
  flood: () =>
    inLab(3, '192.168.87.0/24', async (lab, cli) => {
      console.log('== flood: a TCP burst on 6783, UDP garbage on the data ports, a slowloris on the API, while two containers ping');
      const result = await flood(lab, cli, {
        tcpConnections: 10_000,
        udpSeconds: 20,
        udpPacketsPerSecond: 20_000,
        slowlorisConnections: 1_000,
        slowlorisSeconds: 20,
        statusLimitMs: 1_000,
        maxPingGapMs: 2_000,
        log: (line) => console.log(`  ${line}`),
      });
      return result.problems;
    }),
  soak: () =>
    inLab(4, '192.168.83.0/24', async (lab, cli) => {
      console.log(`== soak: ${soakMinutes} minutes of container churn (start, stop, move, rename) on three hosts with pings and DNS queries; leaks counted, RSS growth checked between two settled readings`);
      try {
        const seed = Date.now() % 1_000_000;
        console.log(`  seed ${seed}`);
        const leakKb = option('leak-kb', 0, 0, 65_536);
        const result = await soak(lab, cli, {
          churnMs: soakMinutes * 60_000,
          quietMs: 5_000,
          warmupMs: 20_000,
          warmupMinOps: 10,
          quietGcSeconds: 6,
          settledTimeoutMs: 90_000,
          ...(leakKb > 0 ? { leak: { host: 3, kbPerRequest: leakKb } } : {}),
          settleMs: 60_000,
          pauseMs: 250,
          maxChurnPerHost: 6,
          maxPingGapMs: 2_000,
          maxRssGrowthMb: 5,
          rssGoalMb: 64,
          seed,
          log: (line) => console.log(`  ${line}`),
        });
        return result.problems;
      } finally {
        killSoakContainers();
      }
    }),
  rmpeer: () =>
    inLab(Math.max(hosts, 5), '192.168.83.0/24', async (lab, cli) => {
      console.log(`== rmpeer: ${Math.max(hosts, 5)} routers with containers; kill -9 of one for good, rmpeer of it on two live routers at once; then kill another, rmpeer on every live router at once; then more containers everywhere`);
      return (await rmpeerChaos(lab, cli, { rounds: [2, 'all'], containersPerHost: 3, log: (line) => console.log(`  ${line}`) })).problems;
    }),
  disk: () =>
    inLab(2, '192.168.82.0/24', async (lab, cli) => {
      console.log("== disk: h1's state dir a 16 MB tmpfs; filled up, then read-only under the running router, then read-only at start; a restart in between finds consistent state");
      return (await diskChaos(lab, cli, { tmpfsMb: 16, attempts: 5, log: (line) => console.log(`  ${line}`) })).problems;
    }),
  'link-flap-long': () =>
    inLab(3, '192.168.81.0/24', async (lab, cli) => {
      console.log("== link-flap-long: h2's underlay link down for 8 s (past the 5 s heartbeat timeout) and up for 12 s, five times, containers on three hosts");
      return (await linkFlap(lab, cli, { flapMs: 100_000, periodMs: 20_000, downMs: 8_000, minEndings: 2, quietMs: 20_000, maxGrowthMb: 5, log: (line) => console.log(`  ${line}`) })).problems;
    }),
};

const started = Date.now();
let failed = false;
for (const scenario of SCENARIOS) {
  if (picked !== undefined && picked !== scenario) continue;
  const problems = await RUNS[scenario]();
  for (const p of problems) console.log(`  BROKEN: ${p}`);
  console.log(`${scenario}: ${problems.length === 0 ? 'every invariant held' : `${problems.length} invariant(s) broken`}`);
  failed ||= problems.length > 0;
}
console.log(`chaos: ${failed ? 'FAILED' : 'passed'} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(failed ? 1 : 0);
