/**
 * Chaos scenario "rmpeer" (issue 12, Faults): `loom rmpeer` of a dead peer, run on several live
 * routers at the same moment, claims its space once. Routers on every lab host (a star around
 * h1, consensus bootstrap as `loom launch` does by default), containers allocated on each without
 * an address so every peer owns space. Then, for each round: `kill -9` of one router for good
 * (never restarted), and once every live router sees it unreachable, `loom rmpeer NAME` started
 * on `runners` live routers together (the CLI processes are spawned in one tick). Invariants:
 * - every answer is clear: a runner either takes the space over or is told it had nothing to take
 *   (moved 0), every runner names the same heir, and at least one moved all the dead peer's space;
 * - after convergence every live router shows the same owners with the same sizes, the dead peer
 *   owns nothing, the heir's share grew by exactly the dead peer's share, and the owners' sizes
 *   add up to the whole range (each address owned once);
 * - more containers allocated on every live router afterwards get addresses no container holds.
 * Bounded: every wait has a deadline; the containers are killed by PID at the end.
 */
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { ContainerPids } from '../../src/demo/containers.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import type { IpamStatus } from '../../src/ipam/status.js';

export interface RmpeerOptions {
  /** One entry per round: how many live routers run rmpeer at once ('all': every live one). */
  rounds: Array<number | 'all'>;
  /** Containers `loom run` on each host before the first kill, and again after each round. */
  containersPerHost: number;
  log: (line: string) => void;
}

export interface RmpeerRound {
  dead: string;
  runners: string[];
  /** What each runner printed, or its error. */
  answers: string[];
  heir: string | null;
  deadOwned: number;
  convergedMs: number | null;
}

export interface RmpeerResult {
  rounds: RmpeerRound[];
  containers: number;
  problems: string[];
}

const RUN_TIMEOUT_MS = 60_000;
const CONVERGE_MS = 30_000;

async function ipamStatus(cli: LoomCli, h: LabHost): Promise<IpamStatus> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { ipam?: IpamStatus };
  if (!report.ipam) throw new Error(`no ipam section in ${h.name}'s report`);
  return report.ipam;
}

/** Owner -> addresses owned, as one router's ring says (owners with nothing left out). */
function owners(s: IpamStatus): Map<string, number> {
  return new Map(s.peers.filter((p) => p.owned > 0).map((p) => [p.name, p.owned]));
}

function describe(m: Map<string, number>): string {
  return [...m].sort(([a], [b]) => a.localeCompare(b)).map(([n, o]) => `${n}=${o}`).join(' ');
}

export async function rmpeerChaos(lab: Lab, cli: LoomCli, options: RmpeerOptions): Promise<RmpeerResult> {
  const kills = options.rounds.length;
  if (lab.hosts.length < kills + 2) throw new Error(`rmpeer with ${kills} round(s) needs ${kills + 2} hosts`);
  const pids = new ContainerPids();
  const problems: string[] = [];
  const rounds: RmpeerRound[] = [];
  let live = [...lab.hosts];
  const names = new Map<string, string>();
  let serial = 0;

  /** `loom run` (no address) `count` times on each live host at once; returns how many ran. */
  const allocate = async (count: number): Promise<number> => {
    const runs = live.flatMap((h) => Array.from({ length: count }, () => cli.run(h, ['run', '--name', `${h.name}c${serial++}`, '--', 'sleep', '3600'], { timeoutMs: RUN_TIMEOUT_MS, allowFailure: true })));
    const results = await Promise.all(runs);
    for (const h of live) for (const c of await cli.containers(h)) pids.add(c.pid);
    const failed = results.filter((r) => r.code !== 0);
    for (const r of failed.slice(0, 3)) problems.push(`loom run failed: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
    return results.length - failed.length;
  };

  /** Addresses held by more than one container on the live hosts. */
  const duplicates = async (): Promise<{ total: number; dups: string[] }> => {
    const holders = new Map<string, string[]>();
    for (const h of live) {
      for (const c of await cli.containers(h)) {
        if (!c.alive) continue;
        for (const cidr of c.cidrs) {
          const a = cidr.split('/')[0]!;
          holders.set(a, [...(holders.get(a) ?? []), `${h.name}/${c.name}`]);
        }
      }
    }
    return { total: holders.size, dups: [...holders].filter(([, who]) => who.length > 1).map(([a, who]) => `${a}: ${who.join(', ')}`) };
  };

  try {
    const [h1] = lab.hosts as [LabHost];
    names.set(h1.name, (await cli.launch(h1)).name);
    for (const h of lab.hosts.slice(1)) names.set(h.name, (await cli.launch(h, { peers: [h1.address] })).name);
    const t0 = Date.now();
    await allocate(options.containersPerHost);
    // Every peer owns space once its first allocation is done (a donation if it had none).
    const rangeSize = (await ipamStatus(cli, h1)).rangeSize;
    await pollUntil(
      async () => {
        for (const h of live) if (!owners(await ipamStatus(cli, h)).has(names.get(h.name)!)) return undefined;
        return true;
      },
      { what: 'every peer to own space', timeoutMs: CONVERGE_MS, intervalMs: 300 },
    );
    options.log(`${live.length} routers, ${live.length * options.containersPerHost} containers allocated in ${Date.now() - t0} ms; range ${rangeSize} addresses`);

    for (const wanted of options.rounds) {
      const victim = live.at(-1)!;
      const deadName = names.get(victim.name)!;
      live = live.slice(0, -1);
      const runners = wanted === 'all' ? live : live.slice(live.length - wanted);
      const before = owners(await ipamStatus(cli, runners[0]!));
      const deadOwned = before.get(deadName) ?? 0;
      if (deadOwned === 0) problems.push(`${victim.name} owned no space before its router was killed (nothing to test)`);
      process.kill(cli.pid(victim)!, 'SIGKILL');
      const tDead = Date.now();
      await pollUntil(
        async () => {
          for (const h of runners) if (!(await ipamStatus(cli, h)).unreachableOwners.includes(deadName as IpamStatus['self'])) return undefined;
          return true;
        },
        { what: `every runner to see ${victim.name} unreachable`, timeoutMs: CONVERGE_MS, intervalMs: 200 },
      );
      const seenDeadMs = Date.now() - tDead;

      // The runners' CLI processes start in the same tick.
      const tRm = Date.now();
      const results = await Promise.all(runners.map((h) => cli.run(h, ['rmpeer', deadName], { allowFailure: true, timeoutMs: 20_000 })));
      const rmMs = Date.now() - tRm;
      const answers = results.map((r, i) => `${runners[i]!.name}: ${r.code === 0 ? r.stdout.trim() : `exit ${String(r.code)}: ${r.stderr.trim()}`}`);
      const heirs = new Set<string>();
      let fullMoves = 0;
      results.forEach((r, i) => {
        const m = /^(\d+) IPs taken over by (\S+) from /.exec(r.stdout.trim());
        if (r.code !== 0 || m === null) {
          problems.push(`rmpeer on ${runners[i]!.name} gave no clear answer: ${answers[i]}`);
          return;
        }
        heirs.add(m[2]!);
        const moved = Number(m[1]);
        if (moved === deadOwned) fullMoves++;
        else if (moved !== 0) problems.push(`rmpeer on ${runners[i]!.name} moved ${moved} addresses, neither all ${deadOwned} nor none`);
      });
      if (heirs.size > 1) problems.push(`the runners named ${heirs.size} heirs: ${[...heirs].join(', ')}`);
      if (fullMoves === 0) problems.push('no runner took the dead peer\'s space over');
      const heir = heirs.size === 1 ? [...heirs][0]! : null;

      // Convergence: every live router shows one ring, the dead peer gone, the heir grown by its share.
      const expected = new Map(before);
      expected.delete(deadName);
      if (heir !== null) expected.set(heir, (expected.get(heir) ?? 0) + deadOwned);
      let convergedMs: number | null = null;
      let views: string[] = [];
      try {
        await pollUntil(
          async () => {
            views = [];
            for (const h of live) views.push(`${h.name}: ${describe(owners(await ipamStatus(cli, h)))}`);
            return views.every((v) => v.endsWith(`: ${describe(expected)}`)) ? true : undefined;
          },
          { what: 'every live router to agree on the ring', timeoutMs: CONVERGE_MS, intervalMs: 200 },
        );
        convergedMs = Date.now() - tRm;
      } catch {
        problems.push(`the live routers did not converge on one ring with ${victim.name}'s ${deadOwned} addresses at ${heir ?? '?'} within ${CONVERGE_MS} ms: ${views.join('; ')} (expected ${describe(expected)})`);
      }
      const sum = [...expected.values()].reduce((a, b) => a + b, 0);
      if (sum !== rangeSize) problems.push(`the owners' shares add up to ${sum} addresses, the range has ${rangeSize}`);

      const added = await allocate(options.containersPerHost);
      const { total, dups } = await duplicates();
      for (const d of dups) problems.push(`duplicate address after rmpeer of ${victim.name}: ${d}`);
      options.log(
        `killed ${victim.name} (${deadName}, owned ${deadOwned}); seen unreachable by ${runners.length} runner(s) after ${seenDeadMs} ms; rmpeer on ${runners.map((h) => h.name).join(' + ')} at once (${rmMs} ms): ${answers.join(' | ')}; ` +
          `every live router agrees ${convergedMs === null ? 'NEVER' : `${convergedMs} ms after the start`}: ${describe(expected)}; then ${added} more containers, ${total} distinct addresses on ${live.length} live hosts, ${dups.length} duplicates`,
      );
      rounds.push({ dead: victim.name, runners: runners.map((h) => h.name), answers, heir, deadOwned, convergedMs });
    }
    return { rounds, containers: pids.pids.length, problems };
  } finally {
    pids.killAll();
  }
}
