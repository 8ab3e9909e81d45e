/**
 * Router memory (issue 14 "Memory", issue 12 soak): RSS of each of three routers idle, after
 * `--minutes` of relay traffic (default 5) and after `--containers` starts and stops (default
 * 1,000), each next to a bare idle `node` started in the same run (the reference: what any
 * Node process costs here), with the counts that must not grow.
 *
 *   npm run bench -- memory [--minutes 5] [--containers 1000] [--detail] [--env NAME=VALUE]...     (--minutes 0.5 for a quick run)
 *
 * --env adds to the routers' environment (e.g. LOOM_QUIET_GC=off, NODE_OPTIONS=--v8-pool-size=1),
 * to measure a setting run by run.
 *
 * --detail prints where each router's RSS is, idle and at the end, beside the bare node's
 * (bench/memory-breakdown.ts).
 *
 * Set-up: a lab of four hosts; h1-h3 run routers in a full mesh with `--no-fastdp` (every frame
 * between hosts goes through the user-space relay, so its buffers are in use), h4 their upstream
 * DNS. One long-lived container per router host. Phases, one after the other on the same routers:
 *   idle       the mesh up, the containers started, then 20 s of quiet;
 *   relay      iperf3 TCP from keep1 to keep2 and from keep2 to keep3 at 50 Mbit/s each (bounded
 *              rate: the machine is shared) and a ping between each pair, for --minutes; then 20 s
 *              of quiet;
 *   churn      --containers x (`loom run` of a sleeper, `loom rm`), split over the three hosts,
 *              through the typed client in one process per host (bench/memory-churn.ts); then
 *              20 s of quiet.
 * Read after each phase, per router: RSS (VmRSS, and its anonymous part RssAnon) from
 * /proc/PID/status; V8's heap used and committed, external memory and active handles from the
 * router's /metrics (no GC is forced: garbage not yet collected is included); open fds and
 * sockets (/proc/PID/fd); containers, IPAM addresses in use, live DNS records and tombstones,
 * event-log length (from the API); vx-loom and the bridge's static FDB entries. RSS is also
 * sampled every 2 s for the peak.
 *
 * Bounded: every command has a time-out, iperf3 and ping stop by themselves, the churn is
 * sequential per host; nothing leaves the lab's namespaces.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../src/core/errors.js';
import { Lab, type LabHost } from '../src/lab/index.js';
import { LoomCli, repoRoot } from '../src/demo/loom-cli.js';
import { pollUntil } from '../src/demo/poll.js';
import { useUpstream } from '../test/helpers/upstream-dns.js';
import { fdCounts } from '../test/helpers/proc.js';
import { breakdownTable, residentBreakdown, type Breakdown } from './memory-breakdown.js';

function parseArgs(argv: string[]): { minutes: number; containers: number; detail: boolean; env: Record<string, string> } {
  let minutes = 5;
  let containers = 1000;
  let detail = false;
  const env: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const n = Number(argv[i + 1]);
    if (argv[i] === '--detail') {
      detail = true;
      i -= 1;
    } else if (argv[i] === '--env' && /^[A-Z_][A-Z0-9_]*=/.test(argv[i + 1] ?? '')) {
      const [k = '', ...v] = argv[i + 1]!.split('=');
      env[k] = v.join('=');
    } else if (argv[i] === '--minutes' && Number.isFinite(n) && n >= 0 && n <= 30) minutes = n;
    else if (argv[i] === '--containers' && Number.isInteger(n) && n >= 0 && n <= 5000) containers = n;
    else throw new LoomError('ERR_INVALID_ARGUMENT', `bad argument ${String(argv[i])} ${String(argv[i + 1])}: use --minutes 0..30, --containers 0..5000, --detail, --env NAME=VALUE`);
  }
  return { minutes, containers, detail, env };
}

const QUIET_MS = 20_000;
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
const MB = 1024 * 1024;

interface Reading {
  rssMb: number;
  anonMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  handles: number;
  fds: number;
  sockets: number;
  containers: number;
  ipamInUse: number;
  dnsLive: number;
  dnsTombstones: number;
  events: number;
  fdbVxlan: number;
  fdbBridgeStatic: number;
}

/** Counts that must come back after a phase (the others are printed). */
const STEADY: ReadonlyArray<keyof Reading> = ['handles', 'fds', 'sockets', 'containers', 'ipamInUse', 'dnsLive', 'fdbVxlan', 'fdbBridgeStatic'];

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
const mb = (kb: number): number => Math.round(kb / 102.4) / 10;

const READ_API = `Promise.all(['/metrics','/containers','/ipam/status','/dns/status','/events?limit=10000'].map((p)=>fetch('http://127.0.0.1:6784'+p).then((r)=>r.text()))).then((t)=>process.stdout.write(JSON.stringify(t)))`;

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function read(lab: Lab, h: LabHost, pid: number): Promise<Reading> {
  const [metrics = '', containers = '{}', ipam = '{}', dns = '{}', events = '{}'] = JSON.parse((await lab.exec(h, process.execPath, ['-e', READ_API], { timeoutMs: 15_000 })).stdout) as string[];
  const fdb = async (args: string[]): Promise<string[]> => (await lab.exec(h, 'bridge', ['fdb', 'show', ...args], { allowFailure: true })).stdout.split('\n').filter((l) => l.trim() !== '');
  const { fds, sockets } = fdCounts(pid);
  const dnsStatus = JSON.parse(dns) as { counts?: { live?: number; tombstones?: number } };
  return {
    rssMb: mb(statusKb(pid, 'VmRSS')),
    anonMb: mb(statusKb(pid, 'RssAnon')),
    heapUsedMb: Math.round((metric(metrics, 'nodejs_heap_size_used_bytes') / MB) * 10) / 10,
    heapTotalMb: Math.round((metric(metrics, 'nodejs_heap_size_total_bytes') / MB) * 10) / 10,
    externalMb: Math.round((metric(metrics, 'nodejs_external_memory_bytes') / MB) * 10) / 10,
    handles: metric(metrics, 'nodejs_active_handles_total'),
    fds,
    sockets,
    containers: (JSON.parse(containers) as { containers?: unknown[] }).containers?.length ?? NaN,
    ipamInUse: (JSON.parse(ipam) as { allocations?: number }).allocations ?? NaN,
    dnsLive: dnsStatus.counts?.live ?? NaN,
    dnsTombstones: dnsStatus.counts?.tombstones ?? NaN,
    events: (JSON.parse(events) as { events?: unknown[] }).events?.length ?? NaN,
    fdbVxlan: (await fdb(['dev', 'vx-loom'])).filter((l) => / self\b/.test(l)).length,
    fdbBridgeStatic: (await fdb(['br', 'loom'])).filter((l) => / master loom\b/.test(l) && / static\b/.test(l)).length,
  };
}

/** RSS of a bare idle `node` in a lab host, started now (the reference of this run), and where it is. */
async function bareNodeRss(lab: Lab, h: LabHost): Promise<{ rssMb: number; anonMb: number; breakdown: Breakdown }> {
  const p = lab.start(h, process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)']);
  try {
    await new Promise((r) => setTimeout(r, 3_000));
    return { rssMb: mb(statusKb(p.pid, 'VmRSS')), anonMb: mb(statusKb(p.pid, 'RssAnon')), breakdown: residentBreakdown(p.pid) };
  } finally {
    await lab.stopProcess(p.pid, 1000);
  }
}

const { minutes, containers, detail, env } = parseArgs(process.argv.slice(2));
const lab = await Lab.create({ hosts: 4, subnet: '192.168.72.0/24' });
const cli = new LoomCli(lab);
const routers = lab.hosts.slice(0, 3);
const peak = new Map<string, number>();
const pids = new Map<string, number>();
const sampler = setInterval(() => {
  for (const [name, pid] of pids) {
    try {
      peak.set(name, Math.max(peak.get(name) ?? 0, mb(statusKb(pid, 'VmRSS'))));
    } catch {
      // gone
    }
  }
}, 2_000);
const containerPids: number[] = [];
try {
  console.log(`Router memory, three routers (--no-fastdp: every frame through the relay); relay traffic ${minutes} min, ${containers} container starts and stops${Object.keys(env).length === 0 ? '' : `; routers' environment ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  await useUpstream(lab, lab.hosts[3]!, routers);
  for (const h of routers) {
    await cli.launch(h, { peers: routers.filter((o) => o !== h).map((o) => o.address), args: ['--no-fastdp'], env });
    pids.set(h.name, cli.pid(h)!);
  }
  // One long-lived container per host, each pinging the next once the mesh carries it.
  const keep: Array<{ host: LabHost; ip: string; pid: number }> = [];
  for (const h of routers) {
    await cli.run(h, ['run', '--name', `keep${h.index}`, 'net:default', '--', ...SLEEPER], { timeoutMs: 30_000 });
    const row = (await cli.containers(h)).find((c) => c.name === `keep${h.index}`);
    if (row?.cidrs[0] === undefined) throw new LoomError('ERR_NOT_FOUND', `keep${h.index} has no address`);
    keep.push({ host: h, ip: row.cidrs[0].split('/')[0]!, pid: row.pid });
    containerPids.push(row.pid);
  }
  const inBox = (k: (typeof keep)[number], cmd: string[]): string[] => ['--target', String(k.pid), '--net', ...cmd];
  for (let i = 0; i < keep.length; i++) {
    const from = keep[i]!;
    const to = keep[(i + 1) % keep.length]!;
    await pollUntil(async () => ((await lab.exec(from.host, 'nsenter', inBox(from, ['ping', '-c', '1', '-W', '1', to.ip]), { allowFailure: true })).code === 0 ? true : undefined), {
      what: `keep${from.host.index} -> keep${to.host.index}`,
      timeoutMs: 45_000,
      intervalMs: 300,
    });
  }
  const readAll = async (): Promise<Record<string, Reading>> => {
    const out: Record<string, Reading> = {};
    for (const h of routers) out[h.name] = await read(lab, h, pids.get(h.name)!);
    return out;
  };
  const quiet = (): Promise<void> => new Promise((r) => setTimeout(r, QUIET_MS));

  await quiet();
  const phases: Array<{ name: string; reading: Record<string, Reading> }> = [{ name: 'idle', reading: await readAll() }];
  const idleBreakdown = detail ? routers.map((h) => ({ name: `${h.name} idle`, breakdown: residentBreakdown(pids.get(h.name)!) })) : [];

  if (minutes > 0) {
    const seconds = Math.max(5, Math.round(minutes * 60));
    const servers = keep.map((k) => lab.start(k.host, 'nsenter', inBox(k, ['iperf3', '-s', '-1', '-p', '5201'])));
    await new Promise((r) => setTimeout(r, 1_000));
    const clients = [0, 1].map((i) => lab.start(keep[i]!.host, 'nsenter', inBox(keep[i]!, ['iperf3', '-c', keep[i + 1]!.ip, '-p', '5201', '-t', String(seconds), '-b', '50M'])));
    const pings = keep.map((k, i) => lab.start(k.host, 'nsenter', inBox(k, ['ping', '-q', '-i', '0.2', '-w', String(seconds), keep[(i + 2) % keep.length]!.ip])));
    await Promise.all([...clients, ...pings].map((p) => p.exited));
    for (const s of servers) await lab.stopProcess(s.pid, 1000);
    await quiet();
    phases.push({ name: `after ${minutes} min of relay traffic`, reading: await readAll() });
  }

  if (containers > 0) {
    const churnJs = join(repoRoot(), 'dist', 'bench', 'memory-churn.js');
    const share = (i: number): number => Math.floor(containers / 3) + (i < containers % 3 ? 1 : 0);
    const t0 = Date.now();
    const results = await Promise.all(
      routers.map((h, i) => (share(i) === 0 ? Promise.resolve('') : lab.exec(h, process.execPath, [churnJs, String(share(i)), `c${h.index}x`], { timeoutMs: 20 * 60_000 }).then((r) => r.stdout.trim()))),
    );
    console.log(`churn: ${containers} starts and stops in ${Math.round((Date.now() - t0) / 1000)} s (${results.filter((r) => r !== '').join(' ')})`);
    await quiet();
    phases.push({ name: `after ${containers} container starts and stops`, reading: await readAll() });
  }

  const bare = await bareNodeRss(lab, lab.hosts[3]!);
  const first = phases[0]!.reading;
  console.log(`\nReference, same run: a bare idle \`node\` ${bare.rssMb} MB RSS (${bare.anonMb} MB anonymous). Goal (issue 14): <= 64 MB idle, flat under churn.\n`);
  console.log('| router | phase | RSS MB (anon) | vs bare node | V8 heap used / committed MB | external MB | handles | fds (sockets) | containers | IPAM in use | DNS live (tombstones) | events | FDB vx-loom / bridge static |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const h of routers) {
    for (const p of phases) {
      const r = p.reading[h.name]!;
      console.log(
        `| ${h.name} | ${p.name} | ${r.rssMb} (${r.anonMb}) | ${(r.rssMb / bare.rssMb).toFixed(2)}x | ${r.heapUsedMb} / ${r.heapTotalMb} | ${r.externalMb} | ${r.handles} | ${r.fds} (${r.sockets}) | ${r.containers} | ${r.ipamInUse} | ${r.dnsLive} (${r.dnsTombstones}) | ${r.events} | ${r.fdbVxlan} / ${r.fdbBridgeStatic} |`,
      );
    }
  }
  const problems: string[] = [];
  for (const h of routers) {
    for (const p of phases.slice(1)) {
      for (const k of STEADY) if (p.reading[h.name]![k] !== first[h.name]![k]) problems.push(`${h.name} ${p.name}: ${k} ${first[h.name]![k]} -> ${p.reading[h.name]![k]}`);
    }
  }
  if (detail) {
    const lastBreakdown = phases.length > 1 ? routers.map((h) => ({ name: `${h.name} end`, breakdown: residentBreakdown(pids.get(h.name)!) })) : [];
    console.log(`\nWhere the RSS is (bench/memory-breakdown.ts: smaps, and the node binary's resident pages by ELF section):\n`);
    console.log(breakdownTable([...idleBreakdown, ...lastBreakdown, { name: 'bare node', breakdown: bare.breakdown }]));
  }
  const rss = routers.map((h) => first[h.name]!.rssMb);
  const last = phases.at(-1)!.reading;
  console.log(`\nidle RSS ${Math.min(...rss)}-${Math.max(...rss)} MB (goal <= 64: **${Math.max(...rss) <= 64 ? 'pass' : 'fail'}**); peak over the run ${routers.map((h) => `${h.name} ${peak.get(h.name)}`).join(', ')} MB; growth idle -> end ${routers.map((h) => `${h.name} ${(last[h.name]!.rssMb - first[h.name]!.rssMb).toFixed(1)}`).join(', ')} MB`);
  console.log(problems.length === 0 ? 'counts that must not grow: every one back to its idle value' : `counts that changed: ${problems.join('; ')}`);
  if (problems.length > 0) process.exitCode = 1;
} finally {
  clearInterval(sampler);
  for (const h of routers) {
    try {
      for (const c of await cli.containers(h)) containerPids.push(c.pid);
    } catch {
      // the router is gone
    }
  }
  for (const pid of containerPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await lab.destroy();
}
