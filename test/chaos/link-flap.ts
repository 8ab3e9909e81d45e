/**
 * Chaos scenario "link-flap" (issue 12, Faults): h2's underlay link goes down and up every
 * `periodMs` for `flapMs` while containers on three hosts ping each other. Afterwards:
 * - no connection flapping: over `quietMs` after the flaps, no router ends another connection
 *   (loom_connection_terminations_total, read from each router's metrics, does not move) and
 *   every router keeps its peers connected;
 * - no memory growth: each router's RSS after the flaps and a settle is within `maxGrowthMb` of
 *   its RSS before them (the figure printed for each router);
 * - the ping matrix is whole again (every pair answers within the settle time).
 * Bounded: the flaps are counted, every wait has a timeout, the lab removes everything.
 */
import { readFileSync } from 'node:fs';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { execIn, runContainer, type Box } from '../helpers/underlay.js';

export interface LinkFlapOptions {
  flapMs: number;
  periodMs: number;
  quietMs: number;
  maxGrowthMb: number;
  log: (line: string) => void;
}

export interface LinkFlapResult {
  flaps: number;
  rssBeforeMb: Record<string, number>;
  rssAfterMb: Record<string, number>;
  terminationsDuringQuiet: Record<string, number>;
  endedDuringFlaps: number;
  problems: string[];
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

/** The sum of loom_connection_terminations_total over its labels, from the router's read-only metrics. */
async function terminations(lab: Lab, h: LabHost): Promise<number> {
  const out = await lab.exec(h, process.execPath, ['-e', "fetch('http://127.0.0.1:6784/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"], { timeoutMs: 10_000 });
  let sum = 0;
  for (const m of out.stdout.matchAll(/^loom_connection_terminations_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/gm)) sum += Number(m[1]);
  return sum;
}

async function matrixWhole(cli: LoomCli, boxes: Box[], timeoutMs: number): Promise<void> {
  for (const from of boxes) {
    for (const to of boxes) {
      if (from === to) continue;
      await pollUntil(async () => ((await execIn(cli, from, ['ping', '-c', '1', '-W', '1', to.ip])).code === 0 ? true : undefined), { what: `${from.name} -> ${to.name}`, timeoutMs, intervalMs: 300 });
    }
  }
}

export async function linkFlap(lab: Lab, cli: LoomCli, options: LinkFlapOptions): Promise<LinkFlapResult> {
  if (lab.hosts.length < 3) throw new Error('link-flap needs three hosts');
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const problems: string[] = [];
  await cli.launch(h1);
  for (const h of lab.hosts.slice(1)) await cli.launch(h, { peers: [h1.address] });
  const boxes: Box[] = [];
  for (const h of lab.hosts) boxes.push(await runContainer(cli, { host: h, name: `l${h.index}`, ip: `10.68.0.${h.index}` }));
  await matrixWhole(cli, boxes, 45_000);

  const pids = new Map(lab.hosts.map((h) => [h.name, cli.pid(h)!]));
  const rssBeforeMb = Object.fromEntries([...pids].map(([name, pid]) => [name, rssMb(pid)]));
  let endedBefore = 0;
  for (const h of lab.hosts) endedBefore += await terminations(lab, h);

  const end = Date.now() + options.flapMs;
  let flaps = 0;
  while (Date.now() < end) {
    await lab.exec(h2, 'ip', ['link', 'set', 'dev', 'eth0', 'down']);
    await new Promise((r) => setTimeout(r, options.periodMs / 2));
    await lab.exec(h2, 'ip', ['link', 'set', 'dev', 'eth0', 'up']);
    await new Promise((r) => setTimeout(r, options.periodMs / 2));
    flaps++;
  }

  // Settle: the mesh reconnects and the matrix is whole again.
  await matrixWhole(cli, boxes, 60_000);
  const before = new Map<string, number>();
  for (const h of lab.hosts) before.set(h.name, await terminations(lab, h));
  const endedDuringFlaps = [...before.values()].reduce((a, b) => a + b, 0) - endedBefore;
  await new Promise((r) => setTimeout(r, options.quietMs));
  const terminationsDuringQuiet: Record<string, number> = {};
  for (const h of lab.hosts) {
    const n = (await terminations(lab, h)) - before.get(h.name)!;
    terminationsDuringQuiet[h.name] = n;
    if (n > 0) problems.push(`${h.name}: ${n} connection(s) ended in the ${options.quietMs} ms after the flaps stopped (flapping)`);
    const peers = (await cli.report(h)).router.peers.length;
    if (peers !== lab.hosts.length) problems.push(`${h.name}: lists ${peers} peers after the flaps, expected ${lab.hosts.length}`);
  }
  const rssAfterMb = Object.fromEntries([...pids].map(([name, pid]) => [name, rssMb(pid)]));
  for (const [name, after] of Object.entries(rssAfterMb)) {
    const growth = after - rssBeforeMb[name]!;
    if (!(growth <= options.maxGrowthMb)) problems.push(`${name}: router RSS grew ${growth.toFixed(1)} MB over the flaps (${rssBeforeMb[name]} -> ${after} MB; limit ${options.maxGrowthMb} MB)`);
  }
  options.log(
    `${flaps} flaps of h2's link in ${options.flapMs / 1000} s (${endedDuringFlaps} connections ended meanwhile, all routers); connections ended in the ${options.quietMs / 1000} s after: ${JSON.stringify(terminationsDuringQuiet)}; ` +
      `router RSS before -> after (MB): ${Object.keys(rssBeforeMb).map((n) => `${n} ${rssBeforeMb[n]} -> ${rssAfterMb[n]}`).join(', ')}`,
  );
  return { flaps, rssBeforeMb, rssAfterMb, terminationsDuringQuiet, endedDuringFlaps, problems };
}
