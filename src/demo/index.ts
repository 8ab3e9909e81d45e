/**
 * `loom demo`: the whole story on one machine. Four hosts (network namespaces on a shared
 * "underlay" bridge): routers on h1..h3, chained h2 -> h1 and h3 -> h2, converge to a full mesh;
 * h4 runs the demo's own upstream DNS server; containers get addresses from IPAM, ping across
 * hosts over kernel VXLAN, keep going through h2's relay when UDP between h1 and h3 is cut, and
 * find a service by name after it moves to another host. The demo is a list of steps, each
 * printing the commands a user would type and their output. Needs root, iproute2, nftables,
 * util-linux (unshare, nsenter), ping and dig. Every wait is bounded; nothing leaves the lab.
 */
import { join } from 'node:path';
import { LoomError, toLoomError } from '../core/errors.js';
import { Lab, LAB_PREFIX_RE, cleanupStale, terminate } from '../lab/index.js';
import { LoomCli } from './loom-cli.js';
import { pollUntil } from './poll.js';
import { ContainerPids, markedProcesses } from './containers.js';
import { deadLabPrefixes } from './leftovers.js';
import type { DemoContext, DemoResult, DemoStep } from './context.js';
import { launchRouters, upstreamDns } from './steps-mesh.js';
import { pingAcrossHosts, runContainers } from './steps-containers.js';
import { blockUdp } from './steps-relay.js';
import { serviceMoves } from './steps-dns.js';

export { LoomCli, repoRoot } from './loom-cli.js';
export { pollUntil, within } from './poll.js';
export { parseReport, establishedTo, routeTo, type LoomReport } from './report.js';
export type { DemoResult } from './context.js';

export interface DemoOptions {
  /** Leave the lab running after the demo, with instructions to explore and clean up. */
  keep?: boolean;
  /** Where the demo's narration goes (default: stdout). */
  log?: (line: string) => void;
  /** Upper bound on each wait for the mesh, IPAM or the data plane to settle (default 60 s). */
  convergeTimeoutMs?: number;
}

const ROUTERS = 3;
const STEPS: readonly DemoStep[] = [launchRouters, upstreamDns, runContainers, pingAcrossHosts, blockUdp, serviceMoves];
const TEARDOWN_TITLE = 'Teardown: containers killed by PID, then routers, namespaces and scratch files removed';

/**
 * Runs the demo and returns what it proved. Tears the lab down at the end (also on failure)
 * unless `keep`: containers first, by PID (they live in namespaces of their own), then the lab.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const say = options.log ?? ((line: string) => process.stdout.write(line + '\n'));
  if (process.getuid?.() !== 0) throw new LoomError('ERR_UNAVAILABLE', 'loom demo creates network namespaces and needs root');
  const started = Date.now();
  const stale = await cleanupStale();
  if (stale.prefixes.length > 0) say(`Removed leftovers of earlier labs: ${stale.prefixes.join(', ')}`);
  say(`Creating ${ROUTERS + 1} hosts (network namespaces on a shared underlay bridge)...`);
  const lab = await Lab.create({ hosts: ROUTERS + 1, subnet: '192.168.77.0/24' });
  const containers = new ContainerPids();
  const killContainers = (): void => void containers.killAll();
  process.on('exit', killContainers);
  const routers = lab.hosts.slice(0, ROUTERS);
  const dnsHost = lab.hosts[ROUTERS]!;
  for (const h of lab.hosts) say(`  ${h.name}: namespace ${h.netns}, eth0 ${h.address}/24${h === dnsHost ? ' (no router: the upstream DNS server)' : ''}`);
  say(pageAddress(lab.hosts[0]!.netns, join(lab.workDir, 'browser')));
  const result: DemoResult = {
    prefix: lab.prefix,
    converged: false,
    pings: { ok: 0, total: 0 },
    relay: { via: null, viaHost: null, switchMs: null, pingsOk: 0, pingsTotal: 0 },
    service2: { before: null, after: null, roundsWithoutReply: 0 },
    containerPids: [],
    routerPids: [],
    kept: false,
  };
  const ctx: DemoContext = { lab, cli: new LoomCli(lab), routers, dnsHost, say, peerNames: new Map(), containers, result, convergeTimeoutMs: options.convergeTimeoutMs ?? 60_000 };
  const total = STEPS.length + 1;
  let failed = true;
  try {
    for (const [i, step] of STEPS.entries()) {
      say(`\n[${i + 1}/${total}] ${step.title}`);
      const stepStarted = Date.now();
      await step.run(ctx);
      say(`  (${((Date.now() - stepStarted) / 1000).toFixed(1)} s)`);
    }
    failed = false;
  } catch (err) {
    for (const h of routers) {
      const tail = ctx.cli.logTail(h, 15);
      if (tail) say(`\n--- ${h.name} loom.log (last lines) ---\n${tail}`);
    }
    throw err;
  } finally {
    result.containerPids = containers.pids;
    if (options.keep && !failed) {
      lab.keep();
      result.kept = true;
      process.off('exit', killContainers);
      say(`\n[${total}/${total}] Kept running`);
      say(explainKept(ctx));
    } else {
      say(`\n[${total}/${total}] ${TEARDOWN_TITLE}`);
      await teardown(ctx);
      process.off('exit', killContainers);
    }
    say(`\nThe demo took ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  }
  return result;
}

async function teardown(ctx: DemoContext): Promise<void> {
  const { lab, say, containers } = ctx;
  const killed = containers.killAll();
  say(`  kill -9 ${killed.join(' ') || '(no container left)'}     # every container the demo saw`);
  try {
    await pollUntil(async () => (containers.alive().length === 0 ? true : undefined), { what: 'the containers to exit', timeoutMs: 10_000, intervalMs: 50 });
  } catch (err) {
    say(`  ${toLoomError(err).message}`);
  }
  await lab.destroy();
  // Anything still carrying the lab's marker (a container started behind the demo's back) goes too.
  const strays = markedProcesses(lab.prefix);
  if (strays.length > 0) {
    await terminate(strays, 2000);
    say(`  stopped ${strays.length} more processes of the lab: ${strays.join(' ')}`);
  }
  say(`  removed the routers, namespaces ${lab.prefix}-* and ${lab.workDir}`);
}

/**
 * Where to watch the demo live: h1's router serves the page at its status address, 127.0.0.1:6784
 * inside h1's namespace (nothing is forwarded to the host's own namespace), so a browser started
 * in that namespace reaches it; `loom status --watch` there is the same in a terminal.
 */
export function pageAddress(netns: string, profileDir: string): string {
  return [
    `  Live page of h1's router (once it runs): http://127.0.0.1:6784/ui inside namespace ${netns}; open it with`,
    `    ip netns exec ${netns} chromium --no-sandbox --user-data-dir=${profileDir} http://127.0.0.1:6784/ui`,
    `  or follow it in a terminal: ip netns exec ${netns} loom status --watch`,
  ].join('\n');
}

function explainKept(ctx: DemoContext): string {
  const { lab, cli } = ctx;
  const [h1, , h3] = ctx.routers;
  const loomIn = (ns: string): string => `ip netns exec ${ns} ${cli.bin}`;
  return [
    `The lab is still running (namespaces ${lab.prefix}-*). Explore it:`,
    `  ${loomIn(h1!.netns)} status`,
    `  ${loomIn(h1!.netns)} ps`,
    `  ${loomIn(h1!.netns)} status connections`,
    `  ${loomIn(h1!.netns)} status --watch          # live, as the page at http://127.0.0.1:6784/ui in ${h1!.netns}`,
    `  ip netns exec ${h1!.netns} chromium --no-sandbox --user-data-dir=${join(lab.workDir, 'browser')} http://127.0.0.1:6784/ui`,
    `  ${loomIn(h1!.netns)} exec service1 -- ping -c 3 service2`,
    `  ${loomIn(h3!.netns)} run --name web -- sleep 600`,
    'Clean up (containers, routers, namespaces):',
    `  ${cli.bin} demo --clean`,
  ].join('\n');
}

/**
 * `loom demo --clean`: removes labs left by `--keep` (or by a crashed run) whose owner is gone
 * (`only`: just the lab with that prefix).
 * Their containers first: they carry the lab's marker but sit in namespaces of their own, where
 * the lab cleanup does not look.
 */
export async function cleanDemo(options: { log?: (line: string) => void; only?: string } = {}): Promise<void> {
  const say = options.log ?? ((line: string) => process.stdout.write(line + '\n'));
  if (options.only !== undefined && !LAB_PREFIX_RE.test(options.only)) throw new LoomError('ERR_INVALID_ARGUMENT', `not a lab prefix: "${options.only.slice(0, 20)}"`);
  let processes = 0;
  for (const prefix of deadLabPrefixes()) {
    if (options.only !== undefined && prefix !== options.only) continue;
    const pids = markedProcesses(prefix);
    await terminate(pids, 2000);
    processes += pids.length;
  }
  const pattern = options.only === undefined ? undefined : new RegExp(`^${options.only}-`);
  const result = await cleanupStale(pattern, { includeKept: true });
  processes += result.killed.length;
  say(result.prefixes.length > 0 ? `Removed labs ${result.prefixes.join(', ')} (${result.namespaces.length} namespaces, ${processes} processes)` : 'Nothing to clean up.');
}
