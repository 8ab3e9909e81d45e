/**
 * Chaos scenario "flood" (issue 12, Hostile input): while two containers on two hosts ping each
 * other, a third lab host that is not a Loom peer attacks h1's router in turn with
 *  (a) a burst of TCP connections to the mesh port 6783, each sending garbage,
 *  (b) a UDP flood of random garbage at the data ports (6783, the relay, and 4789, VXLAN),
 * and a local process in h1 runs (c) a slowloris on the router's API (connections that send a
 * header byte now and then and never finish a request).
 *
 * Invariants, per attack: a status call (`GET /status` from a prober inside h1, Node's own start
 * not counted) answers within `statusLimitMs` the whole time; the container ping keeps flowing (no
 * gap longer than `maxPingGapMs`); h1's router is alive afterwards. Figures are returned for
 * printing: connections made, packets sent, status latency p50/max, longest ping gap.
 *
 * Bounded: every attacker and prober is a script with a hard deadline, run through the lab (which
 * kills what is left), with counts capped.
 */
import { join } from 'node:path';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { pollUntil } from '../../src/demo/poll.js';
import { isAlive, type Lab, type LabHost } from '../../src/lab/index.js';
import { execIn, parsePingLog, readText, runContainer } from '../helpers/underlay.js';

export interface FloodOptions {
  tcpConnections: number;
  udpSeconds: number;
  udpPacketsPerSecond: number;
  slowlorisConnections: number;
  slowlorisSeconds: number;
  statusLimitMs: number;
  maxPingGapMs: number;
  log: (line: string) => void;
}

export interface FloodResult {
  rows: Array<{ attack: string; attacker: string; statusP50Ms: number; statusMaxMs: number; statusFailures: number; pingGapMs: number }>;
  problems: string[];
}

const PING_INTERVAL_MS = 100;

/** Opens `total` connections, at most `parallel` at once; each sends garbage, lingers, closes. Prints a JSON summary. */
const TCP_BURST = (host: string, port: number, total: number, parallel: number, deadlineMs: number) => `
  const net = require('node:net'); const crypto = require('node:crypto');
  let started = 0, connected = 0, failed = 0, done = 0;
  const end = () => { console.log(JSON.stringify({ started, connected, failed })); process.exit(0); };
  setTimeout(end, ${deadlineMs});
  const one = () => {
    if (started >= ${total}) { if (done >= started) end(); return; }
    started++;
    const s = net.connect(${port}, '${host}');
    s.setTimeout(3000, () => s.destroy());
    s.on('connect', () => { connected++; s.write(crypto.randomBytes(64)); setTimeout(() => s.destroy(), 50); });
    s.on('error', () => { failed++; });
    s.on('close', () => { done++; one(); });
  };
  for (let i = 0; i < ${parallel}; i++) one();
`;

/** Random garbage datagrams (1-1400 bytes) to each port at about `pps` for `seconds`. */
const UDP_FLOOD = (host: string, ports: number[], pps: number, seconds: number) => `
  const s = require('node:dgram').createSocket('udp4'); const crypto = require('node:crypto');
  const ports = ${JSON.stringify(ports)}; let sent = 0; const end = Date.now() + ${seconds * 1000};
  const burst = Math.max(1, Math.round(${pps} / 100));
  const t = setInterval(() => {
    if (Date.now() >= end) { clearInterval(t); s.close(); console.log(JSON.stringify({ sent })); return; }
    for (let i = 0; i < burst; i++) { const p = ports[i % ports.length]; s.send(crypto.randomBytes(1 + Math.floor(Math.random() * 1400)), p, '${host}'); sent++; }
  }, 10);
`;

/** Slowloris: `conns` connections to the API, each a request line and then one header byte a second, never finished. */
const SLOWLORIS = (port: number, conns: number, seconds: number) => `
  const net = require('node:net'); let open = 0, closedEarly = 0; const socks = [];
  for (let i = 0; i < ${conns}; i++) {
    const s = net.connect(${port}, '127.0.0.1');
    s.on('connect', () => { open++; s.write('GET /status HTTP/1.1\\r\\nHost: x\\r\\n'); });
    s.on('error', () => {}); s.on('close', () => { closedEarly++; });
    socks.push(s);
  }
  const t = setInterval(() => { for (const s of socks) if (!s.destroyed) s.write('X'); }, 1000);
  setTimeout(() => { clearInterval(t); console.log(JSON.stringify({ open, closedEarly })); for (const s of socks) s.destroy(); process.exit(0); }, ${seconds * 1000});
`;

/** GET /status every 200 ms for `seconds`; one line per call: latency in ms, or "fail". */
const PROBER = (seconds: number) => `
  const http = require('node:http'); const end = Date.now() + ${seconds * 1000};
  const tick = () => {
    if (Date.now() >= end) { process.exit(0); }
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port: 6784, path: '/status', timeout: 5000 }, (res) => { res.resume(); res.on('end', () => { console.log(res.statusCode === 200 ? (performance.now() - t0).toFixed(1) : 'fail'); setTimeout(tick, 200); }); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => { console.log('fail'); setTimeout(tick, 200); });
  };
  tick();
`;

/** The longest time between two consecutive replies in [fromMs, toMs]. */
function longestGap(logText: string, fromMs: number, toMs: number): number {
  const at = parsePingLog(logText).replies.map((r) => r.atMs).filter((t) => t >= fromMs - 1000 && t <= toMs + 1000).sort((a, b) => a - b);
  if (at.length < 2) return toMs - fromMs;
  let gap = 0;
  for (let i = 1; i < at.length; i++) gap = Math.max(gap, at[i]! - at[i - 1]!);
  return Math.round(gap);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export async function flood(lab: Lab, cli: LoomCli, options: FloodOptions): Promise<FloodResult> {
  if (lab.hosts.length < 3) throw new Error('flood needs three hosts: two peers and an attacker');
  const [h1, h2, attacker] = lab.hosts as [LabHost, LabHost, LabHost];
  const problems: string[] = [];
  const rows: FloodResult['rows'] = [];

  await cli.launch(h1);
  await cli.launch(h2, { peers: [h1.address] });
  const c1 = await runContainer(cli, { host: h1, name: 'f1', ip: '10.67.0.1' });
  const c2 = await runContainer(cli, { host: h2, name: 'f2', ip: '10.67.0.2' });
  await pollUntil(async () => ((await execIn(cli, c1, ['ping', '-c', '1', '-W', '1', c2.ip])).code === 0 ? true : undefined), { what: 'f1 -> f2 before the flood', timeoutMs: 30_000, intervalMs: 300 });
  const pid1 = (await cli.containers(h1)).find((c) => c.name === 'f1')!.pid;
  const routerPid = cli.pid(h1)!;

  const attacks: Array<{ attack: string; where: LabHost; script: string; seconds: number }> = [
    { attack: `TCP burst: ${options.tcpConnections} connections to 6783`, where: attacker, script: TCP_BURST(h1.address, 6783, options.tcpConnections, 200, 30_000), seconds: 0 },
    { attack: `UDP garbage to 6783 and 4789 at ~${options.udpPacketsPerSecond}/s for ${options.udpSeconds} s`, where: attacker, script: UDP_FLOOD(h1.address, [6783, 4789], options.udpPacketsPerSecond, options.udpSeconds), seconds: options.udpSeconds },
    { attack: `slowloris: ${options.slowlorisConnections} never-finished requests on the API for ${options.slowlorisSeconds} s`, where: h1, script: SLOWLORIS(6784, options.slowlorisConnections, options.slowlorisSeconds), seconds: options.slowlorisSeconds },
  ];

  const totalSeconds = Math.ceil(attacks.reduce((s, a) => s + Math.max(a.seconds, 30) + 5, 10));
  const pingLog = join(lab.workDir, 'flood-ping.txt');
  lab.start(h1, 'nsenter', ['--target', String(pid1), '--net', 'ping', '-D', '-O', '-i', String(PING_INTERVAL_MS / 1000), '-W', '1', '-w', String(totalSeconds), c2.ip], { logFile: pingLog });
  await new Promise((r) => setTimeout(r, 1_000));

  for (const [i, a] of attacks.entries()) {
    const probeLog = join(lab.workDir, `flood-probe-${i}.txt`);
    const attackLog = join(lab.workDir, `flood-attack-${i}.txt`);
    const startedAt = Date.now();
    const prober = lab.start(h1, process.execPath, ['-e', PROBER(Math.max(a.seconds, 3) + 40)], { logFile: probeLog });
    const attackerProc = lab.start(a.where, process.execPath, ['-e', a.script], { logFile: attackLog });
    await attackerProc.exited;
    const endedAt = Date.now();
    await lab.stopProcess(prober.pid, 500).catch(() => undefined);
    const lines = readText(probeLog).trim().split('\n').filter((l) => l !== '');
    const latencies = lines.filter((l) => l !== 'fail').map(Number).sort((x, y) => x - y);
    const failures = lines.filter((l) => l === 'fail').length;
    const row = {
      attack: a.attack,
      attacker: readText(attackLog).trim().split('\n').at(-1) ?? '',
      statusP50Ms: Math.round(percentile(latencies, 50)),
      statusMaxMs: Math.round(latencies.at(-1) ?? NaN),
      statusFailures: failures,
      pingGapMs: longestGap(readText(pingLog), startedAt, endedAt),
    };
    rows.push(row);
    options.log(`${row.attack}: ${row.attacker}; status p50 ${row.statusP50Ms} ms, max ${row.statusMaxMs} ms, ${failures} failed of ${lines.length}; longest ping gap ${row.pingGapMs} ms over ${Math.round((endedAt - startedAt) / 1000)} s`);
    if (latencies.length === 0) problems.push(`${a.attack}: no status call answered`);
    else if (row.statusMaxMs > options.statusLimitMs || failures > 0) problems.push(`${a.attack}: status max ${row.statusMaxMs} ms (limit ${options.statusLimitMs}), ${failures} failed`);
    if (row.pingGapMs > options.maxPingGapMs) problems.push(`${a.attack}: container traffic stopped for ${row.pingGapMs} ms (limit ${options.maxPingGapMs})`);
    if (!isAlive(routerPid)) {
      problems.push(`${a.attack}: h1's router died`);
      break;
    }
  }
  return { rows, problems };
}
