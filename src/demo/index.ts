/**
 * `loom demo`: three hosts on one machine (network namespaces on a shared "underlay" bridge),
 * a router on each, chained h2 -> h1 and h3 -> h2, and the mesh converging to a full set of
 * connections by peer discovery. The demo is a list of steps so later features (IPAM, DNS,
 * containers) add steps rather than rewrite it. Needs root, iproute2 and nftables.
 */
import { LoomError } from '../core/errors.js';
import { Lab } from '../os/netns.js';
import { cleanupStale } from '../os/lab-cleanup.js';
import { LoomCli } from './loom-cli.js';
import { pollUntil } from './poll.js';

export { LoomCli, repoRoot } from './loom-cli.js';
export { pollUntil } from './poll.js';
export { parseReport, establishedTo, routeTo, type LoomReport } from './report.js';

export interface DemoOptions {
  /** Leave the lab running after the demo, with instructions to explore and clean up. */
  keep?: boolean;
  /** Where the demo's narration goes (default: stdout). */
  log?: (line: string) => void;
  /** Upper bound on waiting for convergence (default 60 s). */
  convergeTimeoutMs?: number;
}

interface DemoContext {
  lab: Lab;
  cli: LoomCli;
  say: (line: string) => void;
  names: Map<string, string>;
  convergeTimeoutMs: number;
}

interface DemoStep {
  title: string;
  run(ctx: DemoContext): Promise<void>;
}

const HOSTS = 3;

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

const steps: DemoStep[] = [
  {
    title: 'Launch a router on each host: h1 alone, h2 -> h1, h3 -> h2',
    async run({ lab, cli, say, names }) {
      for (const h of lab.hosts) {
        const previous = h.index > 1 ? lab.host(h.index - 1) : undefined;
        const peers = previous ? [previous.address] : [];
        const { name, pid } = await cli.launch(h, { peers });
        names.set(h.name, name);
        say(`  ${h.name} (${h.address}): peer ${name}, pid ${pid}${previous ? `, told to connect to ${previous.name}` : ''}`);
      }
    },
  },
  {
    title: 'Watch the mesh converge (h3 learns about h1 from gossip and connects to it)',
    async run({ lab, cli, say, convergeTimeoutMs }) {
      const lastShown = new Map<string, string>();
      await pollUntil(
        async () => {
          let converged = true;
          for (const h of lab.hosts) {
            const report = await cli.report(h);
            const peers = report.router.peers.length;
            const established = report.router.connections.filter((c) => c.state === 'established').length;
            const summary = `${peers} peers, ${established} established connections`;
            if (lastShown.get(h.name) !== summary) {
              lastShown.set(h.name, summary);
              say(`  ${h.name}: ${summary}`);
              say(indent(await cli.status(h)));
            }
            if (peers < HOSTS || established < HOSTS - 1) converged = false;
          }
          return converged ? true : undefined;
        },
        { what: `every router to see ${HOSTS} peers and ${HOSTS - 1} connections`, timeoutMs: convergeTimeoutMs, intervalMs: 300 },
      );
      say('  converged: every router knows every peer and is connected to both others');
    },
  },
  {
    title: 'Connections as each router sees them (`loom status connections`)',
    async run({ lab, cli, say }) {
      for (const h of lab.hosts) {
        say(`  ${h.name}:`);
        say(indent(await cli.status(h, 'connections')));
      }
    },
  },
];

/** Runs the demo. Tears the lab down at the end (also on failure) unless `keep`. */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const say = options.log ?? ((line: string) => process.stdout.write(line + '\n'));
  if (process.getuid?.() !== 0) throw new LoomError('ERR_UNAVAILABLE', 'loom demo creates network namespaces and needs root');
  const stale = await cleanupStale();
  if (stale.prefixes.length > 0) say(`Removed leftovers of earlier labs: ${stale.prefixes.join(', ')}`);
  say(`Creating ${HOSTS} hosts (network namespaces on a shared underlay bridge)...`);
  const lab = await Lab.create({ hosts: HOSTS, subnet: '192.168.77.0/24' });
  for (const h of lab.hosts) say(`  ${h.name}: namespace ${h.netns}, eth0 ${h.address}/24`);
  const ctx: DemoContext = { lab, cli: new LoomCli(lab), say, names: new Map(), convergeTimeoutMs: options.convergeTimeoutMs ?? 60_000 };
  let failed = true;
  try {
    for (const [i, step] of steps.entries()) {
      say(`\n[${i + 1}/${steps.length}] ${step.title}`);
      await step.run(ctx);
    }
    failed = false;
  } catch (err) {
    for (const h of lab.hosts) {
      const tail = ctx.cli.logTail(h, 15);
      if (tail) say(`\n--- ${h.name} loom.log (last lines) ---\n${tail}`);
    }
    throw err;
  } finally {
    if (options.keep && !failed) {
      lab.keep();
      say(explainKept(lab, ctx.cli));
    } else {
      await lab.destroy();
      say(`\nRemoved the demo hosts (${lab.prefix}-*).`);
    }
  }
}

function explainKept(lab: Lab, cli: LoomCli): string {
  const first = lab.hosts[0]!;
  return [
    '',
    `The lab is still running (namespaces ${lab.prefix}-*). Explore it:`,
    `  ip netns exec ${first.netns} ${cli.bin} status`,
    `  ip netns exec ${first.netns} ${cli.bin} report`,
    `  ip netns exec ${first.netns} ping -c1 ${lab.host(2).address}`,
    'Clean up:',
    `  ${cli.bin} demo --clean`,
    'or by hand:',
    ...lab.hosts.map((h) => `  kill $(cat ${cli.stateDir(h)}/loom.pid)`),
    ...lab.namespaces().map((ns) => `  ip netns del ${ns}`),
    `  rm -rf ${lab.workDir} /run/loom-lab/${lab.prefix}.pid`,
  ].join('\n');
}

/** `loom demo --clean`: removes labs left by `--keep` (or by a crashed run) whose owner is gone. */
export async function cleanDemo(options: { log?: (line: string) => void } = {}): Promise<void> {
  const say = options.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const result = await cleanupStale(undefined, { includeKept: true });
  say(result.prefixes.length > 0 ? `Removed labs ${result.prefixes.join(', ')} (${result.namespaces.length} namespaces, ${result.killed.length} processes)` : 'Nothing to clean up.');
}
