/**
 * Chaos scenario "partition" (issue 12, Faults): partitions and heals of the underlay (nft drops
 * in the underlay namespace: symmetric splits into two sides, and asymmetric ones where one side's
 * packets to the other are dropped but not the reverse) while containers are started, removed and
 * moved on both sides. The schedule is a pure function of the seed (`planSchedule`), printed at
 * the start and in every failure, so `npm run chaos -- --scenario partition --seed S` replays it.
 *
 * Every operation goes into a history with its invoke and complete times (history.ts); after each
 * heal the scenario lists every host's containers, asks every host's DNS server for every name of
 * the run every 100 ms (one long-lived prober per host, dns-prober.ts: a DNS query per name from
 * one socket, no process per round) and pings every ordered pair of live containers of one subnet
 * from inside their namespaces (a prober per container, a round every 200 ms), until everything
 * has looked right for `stableMs` or `observeMs` passed; then one real `dig` per host, whose
 * answers go into the history too. Then `checkHistory` decides: no duplicate address, DNS right
 * (so identical) on every host within 2 s of each heal, every pair answering within 5 s.
 *
 * Containers: `start` is `loom run --name NAME net:default` (IPAM). A container that moves keeps
 * its address and name on another host of the same side: IPAM refuses by design to hand one
 * peer's address to another (docs/IPAM.md, claim), so movable containers have static addresses
 * of MOBILE_SUBNET, outside the IPAM range (used as given), picked by the planner and never reused.
 *
 * Bounded: at most `steps` steps and `timeBoundMs` of them, every command and observation window
 * with a time limit, probers with their own deadline; the lab (and `containers.killAll`) removes
 * everything.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { ContainerPids } from '../../src/demo/containers.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { Lab, LabBlock, LabHost, LabProcess } from '../../src/lab/index.js';
import { seededRandom } from '../helpers/random.js';
import { readText } from '../helpers/underlay.js';
import type { ProbeRound } from './dns-prober.js';
import { checkHistory, type HistoryOp, type ListedContainer, type OpResult, type Verdict } from './history.js';

export const MOBILE_SUBNET_PREFIX = '10.99.0';
const DOMAIN = 'loom.local';
const SHARED_NAMES = ['web', 'api', 'db', 'cache'];

export type ContainerStep =
  | { op: 'start'; container: string; host: string; name: string; address?: string }
  | { op: 'stop'; container: string }
  | { op: 'move'; container: string; to: string; next: string };

export type Step = { kind: 'partition'; sides: [string[], string[]]; oneWay: boolean } | { kind: 'heal' } | { kind: 'ops'; ops: ContainerStep[] };

export interface PlanOptions {
  steps: number;
  /** Live containers per host at most (the ping matrix grows with the square). */
  maxPerHost: number;
  /**
   * Container steps a partition lasts, [min, max] (default [2, 4]: 8-21 s in the lab, past the
   * routers' 5 s heartbeat time-out). [1, 1] gives partitions of 2-8 s, some of which the
   * connections across the cut outlive (TCP retransmitting in backoff, no heartbeat time-out yet).
   */
  holdSteps?: readonly [number, number];
}


/**
 * The schedule of a run: a pure function of the seed, the host names and the options. Starts with
 * a step of starts on every host, alternates container steps (1-3 operations at once, on distinct
 * containers) with partitions, each healed after 2-4 container steps; the first partition is
 * asymmetric, later ones are with probability 1/2; ends healed. Moves stay on one side of the
 * current partition; no host gets two live containers of one name or more than `maxPerHost`.
 */
export function planSchedule(seed: number, hosts: readonly string[], options: PlanOptions): Step[] {
  if (hosts.length < 2) throw new Error('a partition needs two hosts');
  const hold = options.holdSteps;
  if (hold !== undefined && !(Number.isInteger(hold[0]) && Number.isInteger(hold[1]) && hold[0] >= 1 && hold[0] <= hold[1])) throw new Error('holdSteps: integers 1 <= min <= max');
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const live = new Map<string, { host: string; name: string; address?: string }>();
  let counter = 0;
  let mobile = 0;
  let sides: [string[], string[]] | null = null;
  let partitions = 0;
  let untilHeal = 0;
  const steps: Step[] = [];
  const sideOf = (host: string): string[] => (sides === null ? [...hosts] : sides[0].includes(host) ? sides[0] : sides[1]);
  const count = (host: string): number => [...live.values()].filter((c) => c.host === host).length;
  /** Names removed from a host in the current step: its operations run at once, so a start must not race the removal. */
  const leaving = new Set<string>();
  const nameFree = (host: string, name: string): boolean => !leaving.has(`${host}/${name}`) && ![...live.values()].some((c) => c.host === host && c.name === name);

  const startOn = (host: string, busy: Set<string>): ContainerStep | null => {
    if (count(host) >= options.maxPerHost) return null;
    const container = `c${++counter}`;
    if (random() < 0.3) {
      const address = `${MOBILE_SUBNET_PREFIX}.${++mobile}`;
      const name = `m${mobile}`;
      live.set(container, { host, name, address });
      busy.add(container);
      return { op: 'start', container, host, name, address };
    }
    const names = SHARED_NAMES.filter((n) => nameFree(host, n));
    if (names.length === 0) return null;
    const name = pick(names);
    live.set(container, { host, name });
    busy.add(container);
    return { op: 'start', container, host, name };
  };

  const containerOp = (busy: Set<string>): ContainerStep | null => {
    const idle = [...live.keys()].filter((c) => !busy.has(c));
    const roll = random();
    if (roll < 0.3 && idle.length > 0) {
      const container = pick(idle);
      const x = live.get(container)!;
      leaving.add(`${x.host}/${x.name}`);
      live.delete(container);
      busy.add(container);
      return { op: 'stop', container };
    }
    if (roll < 0.6) {
      const movable = idle.filter((c) => {
        const x = live.get(c)!;
        return x.address !== undefined && sideOf(x.host).some((h) => h !== x.host && count(h) < options.maxPerHost && nameFree(h, x.name));
      });
      if (movable.length > 0) {
        const container = pick(movable);
        const x = live.get(container)!;
        const to = pick(sideOf(x.host).filter((h) => h !== x.host && count(h) < options.maxPerHost && nameFree(h, x.name)));
        const next = `c${++counter}`;
        leaving.add(`${x.host}/${x.name}`);
        live.delete(container);
        live.set(next, { ...x, host: to });
        busy.add(container).add(next);
        return { op: 'move', container, to, next };
      }
    }
    return startOn(pick(hosts), busy);
  };

  {
    const busy = new Set<string>();
    steps.push({ kind: 'ops', ops: hosts.map((h) => startOn(h, busy)).filter((o): o is ContainerStep => o !== null) });
  }
  while (steps.length < options.steps - (sides === null ? 0 : 1)) {
    if (sides === null && steps.length >= 2 && random() < 0.4) {
      const shuffled = [...hosts].sort(() => random() - 0.5);
      const cut = 1 + Math.floor(random() * (hosts.length - 1));
      sides = [shuffled.slice(0, cut).sort(), shuffled.slice(cut).sort()];
      steps.push({ kind: 'partition', sides, oneWay: partitions === 0 || random() < 0.5 });
      partitions++;
      const [minHold, maxHold] = options.holdSteps ?? [2, 4];
      untilHeal = minHold + Math.floor(random() * (maxHold - minHold + 1));
      continue;
    }
    if (sides !== null && untilHeal === 0) {
      steps.push({ kind: 'heal' });
      sides = null;
      continue;
    }
    const busy = new Set<string>();
    leaving.clear();
    const ops: ContainerStep[] = [];
    const n = 1 + Math.floor(random() * 3);
    for (let i = 0; i < n; i++) {
      const op = containerOp(busy);
      if (op) ops.push(op);
    }
    if (ops.length > 0) steps.push({ kind: 'ops', ops });
    if (sides !== null) untilHeal--;
  }
  if (sides !== null) steps.push({ kind: 'heal' });
  return steps;
}

export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'partition':
      return step.oneWay ? `drop ${step.sides[0].join(',')} -> ${step.sides[1].join(',')} (one way)` : `partition ${step.sides[0].join(',')} | ${step.sides[1].join(',')}`;
    case 'heal':
      return 'heal';
    case 'ops':
      return step.ops
        .map((o) => (o.op === 'start' ? `start ${o.container}=${o.name}@${o.host}${o.address ? `(${o.address})` : ''}` : o.op === 'stop' ? `stop ${o.container}` : `move ${o.container}->${o.next}@${o.to}`))
        .join(' ; ');
  }
}

export interface PartitionOptions {
  seed: number;
  steps: number;
  /** planSchedule's holdSteps (default [2, 4]). */
  holdSteps?: readonly [number, number];
  /** The chaos phase stops issuing steps after this long (then heals and checks). */
  timeBoundMs: number;
  maxPerHost: number;
  dnsWithinMs: number;
  routesWithinMs: number;
  /** Longest observation window after a heal. */
  observeMs: number;
  /** A window ends early once DNS and pings have looked right for this long. */
  stableMs: number;
  /** Where to write the history as JSON (for a look at a failure); none by default. */
  historyFile?: string;
  log: (line: string) => void;
}

export interface PartitionResult {
  seed: number;
  verdict: Verdict;
  history: HistoryOp[];
  problems: string[];
}

/** Runs in a container's namespace: one ping loop per "label=ip" target (a ping, then `interval` ms), a JSON line per ping, until the deadline. */
const PING_PROBER = `
  const { spawn } = require('node:child_process');
  const [deadline, interval, ...targets] = process.argv.slice(1);
  for (const t of targets) {
    const [label, ip] = t.split('=');
    const loop = () => {
      if (Date.now() > Number(deadline)) return;
      const t0 = Date.now();
      let reported = false;
      const done = (ok) => { if (reported) return; reported = true; process.stdout.write(JSON.stringify({ to: label, t0, t1: Date.now(), ok }) + '\\n'); setTimeout(loop, Number(interval)); };
      const p = spawn('ping', ['-n', '-q', '-c', '1', '-W', '1', ip], { stdio: 'ignore' });
      p.on('error', () => done(false));
      p.on('exit', (code) => done(code === 0));
    };
    loop();
  }
`;

/** The fine DNS prober (dns-prober.ts), compiled or run through tsx beside this file. */
const here = fileURLToPath(import.meta.url);
const PROBER_ARGV = here.endsWith('.ts') ? ['--import', 'tsx', join(dirname(here), 'dns-prober.ts')] : [join(dirname(here), 'dns-prober.js')];
/** How often each host's DNS is asked every name (issue 12's limit is 2 s: the bound must be far finer). */
const DNS_PROBE_INTERVAL_MS = 100;

interface LiveContainer {
  label: string;
  host: LabHost;
  name: string;
  id: string;
  address: string;
}

/** `dig` for every name at once against one server: name -> addresses, or null when any query got no reply. */
export function parseDigBatch(text: string, names: readonly string[]): Record<string, string[]> | null {
  const statuses = [...text.matchAll(/status: ([A-Z]+)/g)].map((m) => m[1]);
  if (statuses.length !== names.length || statuses.some((s) => s !== 'NOERROR' && s !== 'NXDOMAIN')) return null;
  const out: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, [] as string[]]));
  for (const line of text.split('\n')) {
    const m = /^(\S+)\.\s+\d+\s+IN\s+A\s+(\d+\.\d+\.\d+\.\d+)$/.exec(line.trim());
    if (!m) continue;
    const short = m[1]!.toLowerCase().replace(new RegExp(`\\.${DOMAIN.replace(/\./g, '\\.')}$`), '');
    out[short]?.push(m[2]!);
  }
  return out;
}

export async function partitionScenario(lab: Lab, cli: LoomCli, options: PartitionOptions): Promise<PartitionResult> {
  const { seed } = options;
  const hosts = lab.hosts;
  const history: HistoryOp[] = [];
  const containers = new ContainerPids();
  const log = options.log;
  const schedule = planSchedule(
    seed,
    hosts.map((h) => h.name),
    { steps: options.steps, maxPerHost: options.maxPerHost, ...(options.holdSteps === undefined ? {} : { holdSteps: options.holdSteps }) },
  );
  const holdArg = options.holdSteps === undefined ? '' : ` --hold ${options.holdSteps[0]}-${options.holdSteps[1]}`;
  log(`seed ${seed}: ${schedule.length} steps on ${hosts.length} hosts (replay: npm run chaos -- --scenario partition --hosts ${hosts.length} --seed ${seed} --steps ${options.steps}${holdArg})`);
  schedule.forEach((s, i) => log(`  step ${i + 1}: ${describeStep(s)}`));

  try {
    // Routers: every host knows every other; IPAM by consensus of all, so each host owns a share
    // of the range before the first partition. DNS upstream: the host's own loopback (nothing
    // listens; no query of this scenario leaves the domain anyway).
    for (const h of hosts) lab.setResolvConf(h, 'nameserver 127.0.0.1\n');
    for (const h of hosts) {
      await cli.launch(h, { peers: hosts.filter((o) => o !== h).map((o) => o.address), args: ['--ipalloc-init', `consensus=${hosts.length}`] });
    }
    const dnsServer = new Map<string, string>();
    for (const h of hosts) {
      const cidr = await pollUntil(
        async () => {
          const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: { cidr: string | null; dns: boolean } };
          const s = report['host-address'];
          return s?.dns === true && s.cidr !== null ? s.cidr : undefined;
        },
        { what: `${h.name}'s host address with DNS on it`, timeoutMs: 90_000, intervalMs: 300 },
      );
      dnsServer.set(h.name, cidr.split('/')[0]!);
    }

    const live = new Map<string, LiveContainer>();
    const pidOf = new Map<string, number>();
    const names = new Set<string>();
    let block: LabBlock | null = null;
    let heals = 0;

    /** The host's containers from its router, retried: on a loaded machine one fetch can miss its time limit. */
    const listContainers = (h: LabHost): ReturnType<LoomCli['containers']> =>
      pollUntil(() => cli.containers(h), { what: `${h.name}'s container list`, timeoutMs: 60_000, intervalMs: 500 });

    const classify = (code: number, stderr: string, tookMs: number, limitMs: number): OpResult => {
      const err = /loom: (ERR_[A-Z_]+)[^\n]*/.exec(stderr)?.[0] ?? `exit ${code}: ${stderr.trim().slice(0, 200)}`;
      return tookMs >= limitMs || /ERR_TIMEOUT/.test(err) || !/loom: ERR_/.test(err) ? { type: 'info', error: err } : { type: 'fail', error: err };
    };

    const start = async (label: string, host: LabHost, name: string, address: string | undefined): Promise<void> => {
      names.add(name);
      const limit = 30_000;
      const invokeMs = Date.now();
      const r = await cli.run(host, ['run', '--name', name, ...(address === undefined ? [] : [`${address}/24`]), '--', 'sleep', '3600'], { allowFailure: true, timeoutMs: limit });
      const completeMs = Date.now();
      if (r.code !== 0) {
        history.push({ op: 'start', host: host.name, container: label, name, ...(address === undefined ? {} : { requested: address }), invokeMs, completeMs, result: classify(r.code, r.stderr, completeMs - invokeMs, limit) });
        log(`start ${label}=${name}@${host.name}: ${r.stderr.trim().slice(0, 200)}`);
        return;
      }
      const id = r.stdout.trim();
      const row = (await listContainers(host)).find((c) => c.id === id);
      if (row) containers.add(row.pid);
      const got = row?.cidrs[0]?.split('/')[0];
      history.push({ op: 'start', host: host.name, container: label, name, ...(address === undefined ? {} : { requested: address }), invokeMs, completeMs, result: got === undefined ? { type: 'info', error: `${id} not listed after its run` } : { type: 'ok', address: got, id } });
      if (row && got !== undefined) {
        live.set(label, { label, host, name, id, address: got });
        pidOf.set(label, row.pid);
      }
    };

    const stop = async (label: string): Promise<void> => {
      const c = live.get(label);
      if (!c) return; // its start failed: the schedule's step is skipped
      const limit = 30_000;
      const invokeMs = Date.now();
      const r = await cli.run(c.host, ['rm', c.id], { allowFailure: true, timeoutMs: limit });
      const completeMs = Date.now();
      const result: OpResult = r.code === 0 ? { type: 'ok' } : classify(r.code, r.stderr, completeMs - invokeMs, limit);
      history.push({ op: 'stop', host: c.host.name, container: label, invokeMs, completeMs, result });
      if (result.type !== 'fail') live.delete(label);
      if (result.type !== 'ok') log(`stop ${label}@${c.host.name}: ${r.stderr.trim().slice(0, 200)}`);
    };

    const runOp = async (op: ContainerStep): Promise<void> => {
      switch (op.op) {
        case 'start':
          return start(op.container, lab.host(op.host), op.name, op.address);
        case 'stop':
          return stop(op.container);
        case 'move': {
          const c = live.get(op.container);
          if (!c) return;
          await stop(op.container);
          if (live.has(op.container)) return; // the stop failed: the address is still held
          return start(op.next, lab.host(op.to), c.name, c.address);
        }
      }
    };

    /**
     * A heal and what follows it. The probers (a DNS prober per host, a ping loop per pair of
     * containers) start before the heal, so nothing after it waits for a process to start; only
     * observations invoked after the heal completed count (history.ts). Then each host lists its
     * containers, and the window lasts until DNS and pings have looked right for `stableMs`, or
     * `observeMs`.
     */
    const healAndObserve = async (): Promise<void> => {
      heals++;
      const deadline = Date.now() + options.observeMs + 15_000;
      const everyone = [...live.values()];
      const subnet = (address: string): string => (address.startsWith(`${MOBILE_SUBNET_PREFIX}.`) ? 'mobile' : 'ipam');
      const watchedNames = [...names].sort();
      const maxRounds = String(Math.ceil((deadline - Date.now()) / DNS_PROBE_INTERVAL_MS) + 10);
      const dnsProbers = hosts.map((h) => {
        const logFile = join(lab.workDir, `dns-probe-${heals}-${h.name}.jsonl`);
        const p = lab.start(h, process.execPath, [...PROBER_ARGV, dnsServer.get(h.name)!, '53', String(deadline), String(DNS_PROBE_INTERVAL_MS), maxRounds, DOMAIN, ...watchedNames], { logFile });
        return { host: h.name, log: logFile, process: p };
      });
      const pingProbers: Array<{ from: string; log: string; process: LabProcess }> = [];
      for (const c of everyone) {
        const targets = everyone.filter((o) => o !== c && subnet(o.address) === subnet(c.address)).map((o) => `${o.label}=${o.address}`);
        if (targets.length === 0) continue;
        const logFile = join(lab.workDir, `ping-${heals}-${c.label}.jsonl`);
        const p = lab.start(c.host, 'nsenter', ['--target', String(pidOf.get(c.label)!), '--net', process.execPath, '-e', PING_PROBER, String(deadline), '200', ...targets], { logFile });
        pingProbers.push({ from: c.label, log: logFile, process: p });
      }
      const expectedPairs = pingProbers.reduce((n, p) => n + everyone.filter((o) => o.label !== p.from && subnet(o.address) === subnet(everyone.find((c) => c.label === p.from)!.address)).length, 0);
      const linesOf = (file: string): unknown[] =>
        readText(file)
          .split('\n')
          .filter((l) => l.trim() !== '')
          .flatMap((l) => {
            try {
              return [JSON.parse(l) as unknown];
            } catch {
              return []; // a line being written, or cut off by the stop
            }
          });
      await pollUntil(async () => ([...dnsProbers, ...pingProbers].every((p) => linesOf(p.log).length > 0) ? true : undefined), { what: 'every prober to report once', timeoutMs: 30_000, intervalMs: 100 });

      const invokeMs = Date.now();
      if (block) await lab.unblock(block);
      block = null;
      const healedAt = Date.now();
      history.push({ op: 'heal', invokeMs, completeMs: healedAt });

      const listing = Promise.all(
        hosts.map(async (h) => {
          const listInvoke = Date.now();
          const rows = (await listContainers(h)).filter((c) => c.alive);
          for (const c of rows) containers.add(c.pid);
          const listed: ListedContainer[] = rows.map((c) => ({ id: c.id, name: c.name, cidr: c.cidrs[0] ?? '' })).filter((c) => c.cidr !== '');
          history.push({ op: 'listing', round: heals, host: h.name, invokeMs: listInvoke, completeMs: Date.now(), containers: listed });
        }),
      );
      const expectedDns = new Map(watchedNames.map((n) => [n, everyone.filter((c) => c.name === n).map((c) => c.address).sort().join(',')]));
      const dnsOf = (line: unknown): ProbeRound => line as ProbeRound;
      let goodSince: number | null = null;
      const windowEnd = healedAt + options.observeMs;
      while (Date.now() < windowEnd) {
        await new Promise((r) => setTimeout(r, 250));
        const dnsRight = dnsProbers.every((p) => {
          const last = linesOf(p.log).map(dnsOf).filter((o) => o.invokeMs >= healedAt).at(-1);
          const answers = last?.answers ?? null;
          return answers !== null && watchedNames.every((n) => [...(answers[n] ?? [])].sort().join(',') === expectedDns.get(n));
        });
        const lastPing = new Map<string, boolean>();
        for (const p of pingProbers) for (const o of linesOf(p.log) as Array<{ to: string; t0: number; ok: boolean }>) if (o.t0 >= healedAt) lastPing.set(`${p.from}>${o.to}`, o.ok);
        const pingRight = lastPing.size === expectedPairs && [...lastPing.values()].every(Boolean);
        const now = Date.now();
        goodSince = dnsRight && pingRight ? (goodSince ?? now) : null;
        if (goodSince !== null && now - goodSince >= options.stableMs) break;
      }
      for (const p of [...dnsProbers, ...pingProbers]) await lab.stopProcess(p.process.pid, 1_000).catch(() => undefined);
      // The real tool last: one `dig` per host with every name, in the window, so an answer it
      // disagrees on fails the check like any late wrong answer.
      const digs = await Promise.all(
        hosts.map(async (h) => {
          const invoke = Date.now();
          const r = await lab.exec(h, 'dig', ['+time=2', '+tries=1', '+noall', '+comments', '+answer', `@${dnsServer.get(h.name)!}`, ...watchedNames.map((n) => `${n}.${DOMAIN}`)], { allowFailure: true, timeoutMs: 10_000 });
          return { op: 'dns' as const, host: h.name, invokeMs: invoke, completeMs: Date.now(), answers: parseDigBatch(r.stdout, watchedNames) };
        }),
      );
      await listing;
      for (const p of dnsProbers) for (const o of linesOf(p.log).map(dnsOf)) history.push({ op: 'dns', host: p.host, ...o });
      history.push(...digs);
      const digWrong = digs.filter(({ answers }) => answers === null || watchedNames.some((n) => [...(answers[n] ?? [])].sort().join(',') !== expectedDns.get(n)));
      if (digWrong.length > 0) log(`heal ${heals}: dig after the window disagrees on ${digWrong.map((d) => d.host).join(', ')}`);
      for (const p of pingProbers) {
        for (const o of linesOf(p.log) as Array<{ to: string; t0: number; t1: number; ok: boolean }>) history.push({ op: 'ping', from: p.from, to: o.to, invokeMs: o.t0, completeMs: o.t1, ok: o.ok });
      }
      log(`heal ${heals}: observed ${Math.round((Date.now() - healedAt) / 100) / 10} s, ${everyone.length} containers, ${expectedPairs} pairs, ${watchedNames.length} names`);
    };

    const chaosEnd = Date.now() + options.timeBoundMs;
    for (const [i, step] of schedule.entries()) {
      if (Date.now() > chaosEnd && step.kind !== 'heal') {
        if (block === null) break;
        continue;
      }
      log(`step ${i + 1}: ${describeStep(step)}`);
      switch (step.kind) {
        case 'partition': {
          const invokeMs = Date.now();
          block = step.oneWay ? await lab.dropOneWay(step.sides[0], step.sides[1]) : await lab.partition(step.sides[0], step.sides[1]);
          history.push({ op: 'partition', sides: step.sides, oneWay: step.oneWay, invokeMs, completeMs: Date.now() });
          break;
        }
        case 'heal':
          await healAndObserve();
          break;
        case 'ops':
          await Promise.all(step.ops.map(runOp));
          break;
      }
    }
    if (block !== null) await healAndObserve();

    if (options.historyFile !== undefined) {
      writeFileSync(options.historyFile, JSON.stringify(history));
      log(`history written to ${options.historyFile}`);
    }
    const verdict = checkHistory(history, { dnsWithinMs: options.dnsWithinMs, routesWithinMs: options.routesWithinMs, seed });
    for (const f of verdict.heals) {
      log(`heal ${f.heal}: DNS right everywhere ${f.dnsMs === null ? 'never' : `after ${f.dnsMs} ms`} (last wrong answer asked at ${f.dnsLowerMs} ms), routes ${f.routesMs === null ? 'never' : `after ${f.routesMs} ms`} (last failed ping sent at ${f.routesLowerMs} ms) (${f.containers} containers, ${f.names} names, ${f.pairs} pairs)`);
    }
    log(`history: ${history.length} operations, ${verdict.starts} starts and ${verdict.stops} stops that succeeded, ${verdict.failedOps} failed or indeterminate`);
    return { seed, verdict, history, problems: verdict.problems };
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)} [seed ${seed}]`, { cause: err });
  } finally {
    containers.killAll();
  }
}
