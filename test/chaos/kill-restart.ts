/**
 * Chaos scenario "kill-restart" (issue 12, Faults): `kill -9` of each router in turn while the
 * containers of every host ping every other, on a mesh where one pair of hosts has no UDP between
 * them (so the fast path and the relay are mixed), and a fast-path TCP transfer runs from the
 * victim's container to another host's across the crash.
 *
 * Invariants, checked after every round (each a line in the returned `problems`):
 * - the ping matrix is whole again within `wholeWithinMs` of the restart (measured from the ping
 *   logs of one `ping -D -O` per ordered pair, run in the containers' namespaces with nsenter:
 *   `loom exec` needs the router, and the router is what dies);
 * - the fast-path TCP transfer across the crash completes, every byte acknowledged;
 * - with the router down its container still reaches another host over the fast path;
 * - the restarted router finds the same containers (ids and PIDs) and keeps its peer name, and no
 *   container changes address;
 * - no duplicate peer: every host's topology lists each of the N routers exactly once.
 * Figures per round are returned for printing (docs/RELIABILITY.md keeps the last full run).
 *
 * Bounded: pings stop by themselves (`-w`), the transfer by its own time limit, every wait by a
 * timeout; everything lives in the lab, which the caller destroys.
 */
import { join } from 'node:path';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { pollUntil } from '../../src/demo/poll.js';
import { isAlive, type Lab, type LabHost } from '../../src/lab/index.js';
import { TCP_SINK, TRANSFER_PORT, parsePingLog, readText, runContainer, execIn, type Box, type PingLog } from '../helpers/underlay.js';

export interface KillRestartOptions {
  /** Which hosts' routers are killed, in order (indexes into lab.hosts). */
  victims: readonly number[];
  /** The matrix must be whole again this long after the restart returned (issue: 5 s). */
  wholeWithinMs: number;
  /** Watched past the limit before giving up, so the figure is printed even when over. */
  watchMs?: number;
  log: (line: string) => void;
}

export interface KillRestartRound {
  victim: string;
  /** From `loom launch` returning to the last pair's first reply after its last loss; null: never within the watch. */
  wholeAfterMs: number | null;
  /** Pairs that lost anything in this round. */
  pairsHit: number;
  transfer: string;
}

export interface KillRestartResult {
  rounds: KillRestartRound[];
  problems: string[];
}

const PING_INTERVAL_MS = 200;
const TRANSFER_MS = 3_000;

interface Pinger {
  from: Box;
  to: Box;
  log: string;
}

/** The pair's outage in [fromMs, untilMs): the first reply after the last probe lost in it, or fromMs when none was lost. */
export function resumedAt(log: PingLog, fromMs: number, untilMs: number, intervalMs: number): number | null {
  const sorted = [...log.replies].sort((a, b) => a.seq - b.seq);
  const replied = new Set(sorted.map((r) => r.seq));
  const sentAt = (seq: number): number => {
    const before = sorted.filter((r) => r.seq < seq).at(-1);
    return before === undefined ? Number.NEGATIVE_INFINITY : before.atMs + (seq - before.seq) * intervalMs;
  };
  const lost = [...new Set(log.unanswered)].filter((s) => !replied.has(s) && sentAt(s) >= fromMs - intervalMs && sentAt(s) < untilMs);
  if (lost.length === 0) return sorted.some((r) => r.atMs >= fromMs) ? fromMs : null;
  const last = Math.max(...lost);
  return sorted.find((r) => r.seq > last)?.atMs ?? null;
}

export async function killRestart(lab: Lab, cli: LoomCli, options: KillRestartOptions): Promise<KillRestartResult> {
  const hosts = lab.hosts;
  if (hosts.length < 3) throw new Error('kill-restart needs at least three hosts (one pair relayed through a third)');
  const watchMs = options.watchMs ?? Math.max(15_000, options.wholeWithinMs * 3);
  const problems: string[] = [];
  const [h1, h2] = hosts as [LabHost, LabHost];

  // A mesh with one pair of hosts that has no UDP between them: relayed through the others.
  await cli.launch(h1);
  const names = new Map<LabHost, string>([[h1, (await cli.report(h1)).router.name]]);
  for (const h of hosts.slice(1)) names.set(h, (await cli.launch(h, { peers: [h1.address] })).name);
  await lab.blockUdp(h1, h2);

  const boxes: Box[] = [];
  for (const h of hosts) boxes.push(await runContainer(cli, { host: h, name: `c${h.index}`, ip: `10.66.0.${h.index}` }, ['sleep', '3600']));
  const sinks: Box[] = [];
  for (const h of hosts) sinks.push(await runContainer(cli, { host: h, name: `s${h.index}`, ip: `10.66.0.${100 + h.index}` }, [process.execPath, '-e', TCP_SINK]));
  const pidOf = new Map<string, number>();
  const addressesBefore = new Map<string, string>();
  for (const h of hosts) {
    for (const c of await cli.containers(h)) {
      pidOf.set(c.name, c.pid);
      addressesBefore.set(c.name, c.cidrs.join(','));
    }
  }

  // The matrix once before any kill, so a round's losses are the kill's.
  for (const from of boxes) {
    for (const to of boxes) {
      if (from === to) continue;
      await pollUntil(async () => ((await execIn(cli, from, ['ping', '-c', '1', '-W', '1', to.ip])).code === 0 ? true : undefined), {
        what: `${from.name} -> ${to.name} before the chaos`,
        timeoutMs: 45_000,
        intervalMs: 300,
      });
    }
  }

  const seconds = Math.ceil((options.victims.length * (watchMs + TRANSFER_MS + 20_000)) / 1000);
  const pingers: Pinger[] = [];
  for (const from of boxes) {
    for (const to of boxes) {
      if (from === to) continue;
      const log = join(lab.workDir, `ping-${from.name}-${to.name}.txt`);
      lab.start(from.host, 'nsenter', ['--target', String(pidOf.get(from.name)!), '--net', 'ping', '-D', '-O', '-i', String(PING_INTERVAL_MS / 1000), '-W', '1', '-w', String(seconds), to.ip], { logFile: log });
      pingers.push({ from, to, log });
    }
  }
  await new Promise((r) => setTimeout(r, 2_000));

  const rounds: KillRestartRound[] = [];
  for (const index of options.victims) {
    const victim = hosts[index]!;
    const box = boxes[index]!;
    // A sink on the fast path from the victim: never across the UDP-less pair h1-h2.
    const sink = sinks[index === 2 ? 0 : 2]!;

    // A fast-path transfer from the victim's container, running when the router dies.
    const sender = `
      const s = require('node:net').connect(${TRANSFER_PORT}, '${sink.ip}');
      const chunk = Buffer.alloc(65536, 7); let sent = 0; const end = Date.now() + ${TRANSFER_MS};
      s.on('connect', () => { console.log('connected'); const t = setInterval(() => { if (Date.now() >= end || sent > 4e8) { clearInterval(t); s.end(); return; } s.write(chunk); sent += chunk.length; }, 10); });
      let answer = ''; s.on('data', (d) => (answer += d)); s.on('end', () => { console.log(sent + '/' + answer); process.exit(Number(answer) === sent ? 0 : 3); });
      s.on('error', (e) => { console.log('error ' + e.message); process.exit(2); });
      setTimeout(() => { console.log('timeout ' + sent); process.exit(4); }, ${TRANSFER_MS} + 20000);
    `;
    const transferLog = join(lab.workDir, `transfer-${box.name}.txt`);
    const transfer = lab.start(victim, 'nsenter', ['--target', String(pidOf.get(box.name)!), '--net', process.execPath, '-e', sender], { logFile: transferLog });
    await pollUntil(async () => (readText(transferLog).includes('connected') ? true : undefined), { what: `${box.name}'s transfer to connect`, timeoutMs: 20_000, intervalMs: 50 });
    await new Promise((r) => setTimeout(r, 300));

    const pid = cli.pid(victim)!;
    const containersBefore = (await cli.containers(victim)).map((c) => `${c.id}/${c.pid}`).sort();
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await pollUntil(async () => (isAlive(pid) ? undefined : true), { what: `${victim.name}'s router to die`, timeoutMs: 10_000, intervalMs: 50 });
    // With the router down (no API, no `loom exec`), its container still reaches the sink's host over the kernel's fast path.
    const direct = await lab.exec(victim, 'nsenter', ['--target', String(pidOf.get(box.name)!), '--net', 'ping', '-c', '1', '-W', '2', sink.ip], { allowFailure: true });
    if (direct.code !== 0) problems.push(`${victim.name}: with its router down, ${box.name} could not ping ${sink.name} over the fast path`);
    await new Promise((r) => setTimeout(r, 500));
    const relaunched = await cli.launch(victim, { peers: [hosts[index === 0 ? 1 : 0]!.address] });
    const restartedAt = Date.now();
    if (relaunched.name !== names.get(victim)) problems.push(`${victim.name}: restarted as ${relaunched.name}, was ${names.get(victim)}`);
    const containersAfter = (await cli.containers(victim)).map((c) => `${c.id}/${c.pid}`).sort();
    if (containersAfter.join(',') !== containersBefore.join(',')) problems.push(`${victim.name}: containers before the crash ${containersBefore.join(',')}, after the restart ${containersAfter.join(',')}`);

    const code = await transfer.exited;
    const transferText = readText(transferLog).trim().split('\n').at(-1) ?? '';
    if (code !== 0) problems.push(`${victim.name}: the fast-path transfer ${box.name} -> ${sink.name} across the crash failed (${transferText})`);

    // Whole again: every pair's last loss in this round answered. Polled until then or the watch ends.
    let wholeAt: number | null = null;
    let hit = 0;
    const deadline = restartedAt + watchMs;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      const now = Date.now();
      let latest = killedAt;
      let all = true;
      hit = 0;
      for (const p of pingers) {
        const log = parsePingLog(readText(p.log));
        const at = resumedAt(log, killedAt, now - 1_500, PING_INTERVAL_MS);
        if (at === null) {
          all = false;
          break;
        }
        if (at > killedAt) hit++;
        latest = Math.max(latest, at);
      }
      // Settled: nothing lost in the last 1.5 s by any pair.
      if (all && now - 1_500 > latest) {
        wholeAt = latest;
        break;
      }
    }
    const wholeAfterMs = wholeAt === null ? null : Math.max(0, Math.round(wholeAt - restartedAt));
    rounds.push({ victim: victim.name, wholeAfterMs, pairsHit: hit, transfer: transferText });
    options.log(`kill -9 ${victim.name}: matrix whole ${wholeAfterMs === null ? `not within ${watchMs} ms` : `${wholeAfterMs} ms after the restart`} (${hit}/${pingers.length} pairs lost something); transfer ${transferText}`);
    if (wholeAfterMs === null || wholeAfterMs > options.wholeWithinMs) problems.push(`${victim.name}: ping matrix whole ${wholeAfterMs === null ? 'never (within the watch)' : `after ${wholeAfterMs} ms`}, limit ${options.wholeWithinMs} ms after the restart`);

    for (const h of hosts) {
      const peers = (await cli.report(h)).router.peers.map((p) => p.name);
      if (peers.length !== hosts.length || new Set(peers).size !== peers.length) problems.push(`${victim.name} round: ${h.name} lists ${peers.length} peers (${new Set(peers).size} distinct), expected ${hosts.length}`);
    }
  }

  for (const h of hosts) {
    for (const c of await cli.containers(h)) {
      if (addressesBefore.get(c.name) !== c.cidrs.join(',')) problems.push(`${c.name} changed address: ${addressesBefore.get(c.name)} -> ${c.cidrs.join(',')}`);
    }
  }
  return { rounds, problems };
}
