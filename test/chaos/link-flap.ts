/**
 * Chaos scenario "link-flap" (issue 12, Faults): h2's underlay link goes down and up every
 * `periodMs` for `flapMs` while containers on three hosts ping each other. Afterwards:
 * - no connection flapping: over `quietMs` after the flaps, no router ends another connection
 *   (loom_connection_terminations_total, read from each router's metrics, does not move) and
 *   every router keeps its peers connected;
 * - no memory growth: each router's RSS after the flaps and a settle is within `maxGrowthMb` of
 *   its RSS before them (the figure printed for each router);
 * - the ping matrix is whole again (every pair answers within the settle time);
 * - every router lists each peer once, holds at most one established connection per peer, one
 *   to each other host, and a route to each.
 * With `downMs` longer than the mesh heartbeat timeout (5 s; detected within 6 s, see
 * src/mesh/connection.ts) the outages really end connections (`minEndings`: at least that many
 * must end during the flaps), and the same invariants say they all came back once and stay.
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
  /** How long each outage lasts (default periodMs / 2); the link is up for the rest of the period. */
  downMs?: number;
  /** Connections that must end during the flaps (default 0): proves long outages do end them. */
  minEndings?: number;
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
  const downMs = options.downMs ?? options.periodMs / 2;
  while (Date.now() < end) {
    await lab.exec(h2, 'ip', ['link', 'set', 'dev', 'eth0', 'down']);
    await new Promise((r) => setTimeout(r, downMs));
    await lab.exec(h2, 'ip', ['link', 'set', 'dev', 'eth0', 'up']);
    await new Promise((r) => setTimeout(r, options.periodMs - downMs));
    flaps++;
  }

  // Settle: the mesh reconnects and the matrix is whole again.
  await matrixWhole(cli, boxes, 60_000);
  const before = new Map<string, number>();
  for (const h of lab.hosts) before.set(h.name, await terminations(lab, h));
  const endedDuringFlaps = [...before.values()].reduce((a, b) => a + b, 0) - endedBefore;
  if (endedDuringFlaps < (options.minEndings ?? 0)) problems.push(`only ${endedDuringFlaps} connection(s) ended during the flaps, expected at least ${options.minEndings} (outages of ${downMs} ms)`);
  await new Promise((r) => setTimeout(r, options.quietMs));
  const terminationsDuringQuiet: Record<string, number> = {};
  for (const h of lab.hosts) {
    const n = (await terminations(lab, h)) - before.get(h.name)!;
    terminationsDuringQuiet[h.name] = n;
    if (n > 0) problems.push(`${h.name}: ${n} connection(s) ended in the ${options.quietMs} ms after the flaps stopped (flapping)`);
    const report = await cli.report(h);
    const peers = report.router.peers.map((p) => p.name);
    if (peers.length !== lab.hosts.length) problems.push(`${h.name}: lists ${peers.length} peers after the flaps, expected ${lab.hosts.length}`);
    if (new Set(peers).size !== peers.length) problems.push(`${h.name}: lists a peer twice: ${peers.join(', ')}`);
    const established = report.router.connections.filter((c) => c.state === 'established' && c.peer !== undefined).map((c) => c.peer!.name);
    if (new Set(established).size !== established.length) problems.push(`${h.name}: two established connections to one peer: ${established.join(', ')}`);
    if (established.length !== lab.hosts.length - 1) problems.push(`${h.name}: ${established.length} established connections after the flaps, expected ${lab.hosts.length - 1}`);
    const routed = new Set(report.router.routes.unicast.map((r) => r.destination));
    const missing = peers.filter((p) => p !== report.router.name && !routed.has(p));
    if (missing.length > 0) problems.push(`${h.name}: no route to ${missing.join(', ')} after the flaps`);
  }
  const rssAfterMb = Object.fromEntries([...pids].map(([name, pid]) => [name, rssMb(pid)]));
  for (const [name, after] of Object.entries(rssAfterMb)) {
    const growth = after - rssBeforeMb[name]!;
    if (!(growth <= options.maxGrowthMb)) problems.push(`${name}: router RSS grew ${growth.toFixed(1)} MB over the flaps (${rssBeforeMb[name]} -> ${after} MB; limit ${options.maxGrowthMb} MB)`);
  }
  options.log(
    `${flaps} flaps of h2's link in ${options.flapMs / 1000} s, ${downMs} ms down each (${endedDuringFlaps} connections ended meanwhile, all routers); connections ended in the ${options.quietMs / 1000} s after: ${JSON.stringify(terminationsDuringQuiet)}; ` +
      `router RSS before -> after (MB): ${Object.keys(rssBeforeMb).map((n) => `${n} ${rssBeforeMb[n]} -> ${rssAfterMb[n]}`).join(', ')}`,
  );
  return { flaps, rssBeforeMb, rssAfterMb, terminationsDuringQuiet, endedDuringFlaps, problems };
}
