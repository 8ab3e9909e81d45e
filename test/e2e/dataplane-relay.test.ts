/**
 * The relay in the running product, driven as a user would (`bin/loom launch/run/exec/status`),
 * three lab hosts chained h2 -> h1, h3 -> h2 (discovery completes the mesh):
 *  (a) UDP between h1 and h3 cut on the underlay: their containers still reach each other through
 *      h2's relay; `loom status connections` on h1 says h3 goes by the sleeve via h2, h2 by fastdp;
 *      a capture on the underlay finds a container's marker in clear (the control for (b));
 *      `loom exec` returns the command's own exit code.
 *  (b) with --password: every pair pings, TCP and UDP between containers work, the marker is not
 *      on the underlay, and a router with another password is refused.
 *  (c) h1 behind a NAT that lets nothing in: h1 dials h2, h3 is given h2; h1's and h3's containers
 *      reach each other both ways; h3 never sends h1's frames by the fast path (the NAT would drop
 *      them) but by the relay.
 * Needs root, nft, tcpdump, ping, unshare, nsenter (skips otherwise). Everything stays in the lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { labSkipFor, withLab, killPids } from '../helpers/lab.js';
import { promtoolComplaints } from '../helpers/promtool.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { type Lab, type LabHost, putBehindNat } from '../../src/lab/index.js';
import { systemRunner, type CommandResult } from '../../src/os/runner.js';
import type { ContainerList } from '../../src/containers/routes.js';
import type { DataplaneStatus } from '../../src/dataplane/controller/controller.js';
import type { PeerPathStatus } from '../../src/dataplane/controller/desired.js';
import { FASTDP_MTU, SEALED_MTU } from '../../src/dataplane/controller/settings.js';

const skip = labSkipFor(['ping', 'unshare', 'nsenter', 'tcpdump', 'timeout']);
const hasIperf = ['/usr/bin/iperf3', '/bin/iperf3'].some((p) => existsSync(p));
const CONVERGE_MS = 45_000;

interface Box {
  host: LabHost;
  name: string;
  ip: string;
}

const containerPids = new Set<number>();
function killContainers(): void {
  killPids(containerPids);
}

async function containersOf(cli: LoomCli, h: LabHost): Promise<ContainerList> {
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  const list = JSON.parse(out.stdout) as ContainerList;
  for (const c of list.containers) containerPids.add(c.pid);
  return list;
}

async function run(cli: LoomCli, box: Box, command: string[] = ['sleep', '3600']): Promise<Box> {
  await cli.run(box.host, ['run', '--name', box.name, `${box.ip}/24`, '--', ...command]);
  await containersOf(cli, box.host);
  return box;
}

async function dataplaneOf(cli: LoomCli, h: LabHost): Promise<DataplaneStatus> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dataplane?: DataplaneStatus };
  if (!report.dataplane) throw new Error(`no dataplane section on ${h.name}`);
  return report.dataplane;
}

/** Waits until `accept(host, peer rows)` holds on every host; returns the rows by host. */
async function waitPaths(cli: LoomCli, hosts: readonly LabHost[], what: string, accept: (h: LabHost, rows: PeerPathStatus[]) => boolean): Promise<Map<LabHost, PeerPathStatus[]>> {
  return pollUntil(
    async () => {
      const all = new Map<LabHost, PeerPathStatus[]>();
      for (const h of hosts) {
        const dp = await dataplaneOf(cli, h);
        if (dp.lastError !== null || !accept(h, dp.peers)) return undefined;
        all.set(h, dp.peers);
      }
      return all;
    },
    { what, timeoutMs: CONVERGE_MS, intervalMs: 300 },
  );
}

function exec(cli: LoomCli, box: Box, command: string[], timeoutMs = 20_000): Promise<CommandResult> {
  return cli.run(box.host, ['exec', box.name, '--', ...command], { allowFailure: true, timeoutMs });
}

async function ping(cli: LoomCli, from: Box, to: Box): Promise<boolean> {
  return (await exec(cli, from, ['ping', '-c', '1', '-W', '2', to.ip])).code === 0;
}

/** Average RTT in ms of `count` pings, or null if any was lost. */
async function rttMs(cli: LoomCli, from: Box, to: Box, count = 10): Promise<number | null> {
  const r = await exec(cli, from, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to.ip]);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return r.code === 0 && m ? Number(m[1]) : null;
}

/** Every ordered pair that cannot ping, as "a->b"; retried a few times while paths settle. */
async function pingFailures(cli: LoomCli, boxes: readonly Box[]): Promise<string[]> {
  const failures: string[] = [];
  for (const from of boxes) {
    for (const to of boxes) {
      if (from === to) continue;
      let ok = false;
      for (let attempt = 0; attempt < 3 && !ok; attempt++) ok = await ping(cli, from, to);
      if (!ok) failures.push(`${from.name}->${to.name}`);
    }
  }
  return failures;
}

const TCP_SERVER = `
  let total = 0;
  require('node:net').createServer((s) => { s.on('data', (d) => (total += d.length)); s.on('end', () => s.end(String(total))); }).listen(7000);
`;
/** Sends `bytes` in 64 KiB chunks, expects the server's count back. Bounded in time. */
const TCP_CLIENT = (ip: string, bytes: number) => `
  const s = require('node:net').connect(7000, '${ip}');
  const chunk = Buffer.alloc(65536, 7); let sent = 0;
  s.on('connect', () => { while (sent < ${bytes}) { s.write(chunk); sent += chunk.length; } s.end(); });
  let answer = ''; s.on('data', (d) => (answer += d)); s.on('end', () => { console.log(sent + '/' + answer); process.exit(Number(answer) === sent ? 0 : 3); });
  s.on('error', (e) => { console.log('error ' + e.message); process.exit(2); });
  setTimeout(() => { console.log('timeout ' + sent); process.exit(4); }, 20000);
`;
const UDP_ECHO = `const s = require('node:dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(m, r.port, r.address)); s.bind(7001);`;
/** Sends `marker` to the echo server every 100 ms (at most 30 times) until it comes back. */
const UDP_CLIENT = (ip: string, marker: string) => `
  const s = require('node:dgram').createSocket('udp4'); let n = 0;
  s.on('message', (m) => { console.log('echo ' + m); process.exit(m.toString() === '${marker}' ? 0 : 3); });
  const t = setInterval(() => { if (++n > 30) { clearInterval(t); console.log('no echo'); process.exit(4); } s.send('${marker}', 7001, '${ip}'); }, 100);
`;

/**
 * Captures UDP on the underlay bridge while `during` runs; returns the pcap bytes. Bounded by
 * `timeout` and a packet count; the file lives in the lab's scratch dir (removed with the lab).
 */
async function captureUnderlay(lab: Lab, during: () => Promise<void>): Promise<{ pcap: Buffer; packets: number }> {
  const file = join(lab.workDir, `underlay-${randomBytes(3).toString('hex')}.pcap`);
  const capture = systemRunner.run('timeout', ['10', 'tcpdump', '-i', 'br0', '-U', '-n', '-s', '0', '-c', '20000', '-w', file, 'udp'], { netns: lab.underlay, allowFailure: true, timeoutMs: 20_000 });
  await pollUntil(async () => (existsSync(file) && statSync(file).size >= 24 ? true : undefined), { what: 'tcpdump started', timeoutMs: 5_000, intervalMs: 50 });
  await during();
  await capture;
  const pcap = readFileSync(file);
  return { pcap, packets: pcapRecords(pcap) };
}

/** Number of records in a classic pcap file (24-byte header, 16-byte record headers). */
function pcapRecords(pcap: Buffer): number {
  let at = 24;
  let n = 0;
  const le = pcap.readUInt32LE(0) === 0xa1b2c3d4 || pcap.readUInt32LE(0) === 0xa1b23c4d;
  while (at + 16 <= pcap.length && n < 1_000_000) {
    const incl = le ? pcap.readUInt32LE(at + 8) : pcap.readUInt32BE(at + 8);
    at += 16 + incl;
    n++;
  }
  return n;
}

function occurrences(haystack: Buffer, needle: Buffer): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1 && n < 1_000_000; at = haystack.indexOf(needle, at + 1)) n++;
  return n;
}

/** Sends a UDP marker from `from` to an echo server in `to`, and pings with a hex pattern. */
async function sendMarkers(cli: LoomCli, from: Box, udpEcho: Box, pingTo: Box, marker: string, pattern: string): Promise<void> {
  const udp = await exec(cli, from, [process.execPath, '-e', UDP_CLIENT(udpEcho.ip, marker)]);
  assert.equal(udp.code, 0, `UDP echo ${from.name} -> ${udpEcho.name}: ${udp.stdout}${udp.stderr}`);
  const p = await exec(cli, from, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '-p', pattern, pingTo.ip]);
  assert.equal(p.code, 0, `ping -p ${from.name} -> ${pingTo.name}: ${p.stdout}`);
}

function withContainers(t: Parameters<typeof withLab>[0], options: Parameters<typeof withLab>[1], body: Parameters<typeof withLab>[2]): Promise<void> {
  process.on('exit', killContainers);
  return withLab(t, options, body).finally(() => {
    killContainers();
    containerPids.clear();
    process.off('exit', killContainers);
  });
}

const PATTERN = '4c6f6f6d4d61726b'; // "LoomMark"

test('(a) UDP blocked between h1 and h3: their containers talk through h2\'s relay', { skip, timeout: 240_000 }, (t) =>
  withContainers(t, { hosts: 3, subnet: '192.168.97.0/24' }, async (lab, cli) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    await lab.blockUdp(h1, h3);
    await cli.launch(h1);
    const n2 = (await cli.launch(h2, { peers: [h1.address] })).name;
    await cli.launch(h3, { peers: [h2.address] });
    const a1 = await run(cli, { host: h1, name: 'a1', ip: '10.48.0.1' });
    const a2 = await run(cli, { host: h2, name: 'a2', ip: '10.48.0.2' }, [process.execPath, '-e', UDP_ECHO]);
    const a3 = await run(cli, { host: h3, name: 'a3', ip: '10.48.0.3' }, [process.execPath, '-e', UDP_ECHO]);
    const names = new Map(await Promise.all(lab.hosts.map(async (h) => [(await cli.report(h)).router.name, h] as const)));
    const rows = await waitPaths(cli, lab.hosts, 'h1-h3 relayed via h2, everything else fastdp', (h, peers) => {
      if (peers.length !== 2 || !peers.every((p) => p.macs === 1)) return false;
      return peers.every((p) => {
        const other = names.get(p.peer);
        const cut = (h === h1 && other === h3) || (h === h3 && other === h1);
        return cut ? p.path === 'sleeve' && p.via === n2 : p.path === 'fastdp';
      });
    });
    assert.ok(rows.get(h1)!.find((p) => names.get(p.peer) === h3)!.reason!.includes('UDP to the peer is blocked'));
    const conn = await cli.status(h1, 'connections');
    assert.match(conn, new RegExp(`sleeve\\s+unencrypted\\s+mtu=${FASTDP_MTU}\\s+.*via ${n2}`), conn);
    assert.match(conn, new RegExp(`${n2}\\s+fastdp\\s+unencrypted`), conn);

    assert.deepEqual(await pingFailures(cli, [a1, a2, a3]), []);
    const relayed = await rttMs(cli, a1, a3);
    const direct = await rttMs(cli, a1, a2);
    assert.ok(relayed !== null && direct !== null, 'no ping lost');
    t.diagnostic(`ping RTT a1->a3 (relay via h2): ${relayed} ms; a1->a2 (fastdp): ${direct} ms`);

    // Control for (b): without a password the relay carries frames in clear, and the capture sees them.
    const marker = `loom-clear-${randomBytes(6).toString('hex')}`;
    const { pcap, packets } = await captureUnderlay(lab, () => sendMarkers(cli, a1, a3, a3, marker, PATTERN));
    assert.ok(packets > 0);
    assert.ok(occurrences(pcap, Buffer.from(marker)) > 0, 'an unencrypted relay shows the marker on the underlay');
    assert.ok(occurrences(pcap, Buffer.from(PATTERN, 'hex')) > 0, 'and the ping pattern');

    const exit = await exec(cli, a1, ['sh', '-c', 'exit 3']);
    assert.equal(exit.code, 3, 'loom exec returns the command\'s exit code');
    assert.equal((await exec(cli, a1, ['true'])).code, 0);

    // /metrics of real routers: per-peer RTT and path MTU, the paths, the relay's counters, and
    // Prometheus's linter finds nothing to complain about.
    const m1 = await metricsOf(cli, h1);
    const n3 = [...names].find(([, h]) => h === h3)![0];
    const rtt = sample(m1, 'loom_peer_rtt_seconds', { peer: n2 });
    assert.ok(rtt !== null && rtt > 0 && rtt < 0.5, `h1 -> h2 RTT ${rtt} s`);
    const pmtu = sample(m1, 'loom_peer_path_mtu_bytes', { peer: n2 });
    assert.ok(pmtu !== null && pmtu >= 1280 && pmtu <= 1500, `h1 -> h2 path MTU ${pmtu} bytes (1500-byte underlay)`);
    assert.equal(sample(m1, 'loom_peer_path', { peer: n3, path: 'sleeve' }), 1, 'h3 by the relay');
    assert.equal(sample(m1, 'loom_peer_path', { peer: n2, path: 'fastdp' }), 1, 'h2 by the fast path');
    assert.equal(sample(m1, 'loom_dataplane_peers', { path: 'sleeve', encrypted: 'false' }), 1);
    assert.ok((sample(m1, 'loom_relay_packets_total', { direction: 'sent' }) ?? 0) >= 10, 'pings and markers went out by the relay');
    assert.ok((sample(m1, 'loom_relay_bytes_total', { direction: 'received' }) ?? 0) > 1000);
    assert.equal(sample(m1, 'loom_relay_drops_total', { reason: 'auth-failed' }), 0, 'every drop reason listed, none of these');
    assert.equal(sample(m1, 'loom_connections', { state: 'established', encrypted: 'false' }), 2);
    const m2 = await metricsOf(cli, h2);
    assert.ok((sample(m2, 'loom_relay_forwarded_packets_total', {}) ?? 0) >= 10, 'h2 passed h1 <-> h3 frames on');
    assert.deepEqual(promtoolComplaints(m1), [], 'promtool check metrics on h1');
    t.diagnostic(`metrics: h1 -> h2 RTT ${((rtt ?? 0) * 1000).toFixed(2)} ms, path MTU ${pmtu}; h2 forwarded ${sample(m2, 'loom_relay_forwarded_packets_total', {})} relay packets`);
  }),
);

/** h's /metrics, as Prometheus would scrape it (the read-only TCP API inside the host). */
async function metricsOf(cli: LoomCli, h: LabHost): Promise<string> {
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  return out.stdout;
}

/** The value of the one sample of `name` whose labels include `labels`; null if none. */
function sample(text: string, name: string, labels: Record<string, string>): number | null {
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) {
    const have = new Map([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[2]);
  }
  return null;
}

test('(b) --password: every peer through the sealed relay; nothing readable on the underlay; another password is refused', { skip, timeout: 240_000 }, (t) =>
  withContainers(t, { hosts: 4, subnet: '192.168.98.0/24' }, async (lab, cli) => {
    const [h1, h2, h3, h4] = lab.hosts as [LabHost, LabHost, LabHost, LabHost];
    const password = `pw-${randomBytes(8).toString('hex')}`;
    await cli.launch(h1, { password });
    await cli.launch(h2, { password, peers: [h1.address] });
    await cli.launch(h3, { password, peers: [h2.address] });
    const b1 = await run(cli, { host: h1, name: 'b1', ip: '10.49.0.1' });
    const b2 = await run(cli, { host: h2, name: 'b2', ip: '10.49.0.2' }, [process.execPath, '-e', UDP_ECHO]);
    const b3 = await run(cli, { host: h3, name: 'b3', ip: '10.49.0.3' }, [process.execPath, '-e', UDP_ECHO]);
    const srv = await run(cli, { host: h3, name: 'b3srv', ip: '10.49.0.9' }, [process.execPath, '-e', TCP_SERVER]);
    await waitPaths(cli, [h1, h2, h3], 'every peer sleeve, encrypted', (_h, peers) => (peers.length === 2 && peers.every((p) => p.path === 'sleeve' && p.encrypted && p.via === undefined && p.macs >= 1)));
    const conn = await cli.status(h1, 'connections');
    assert.match(conn, new RegExp(`sleeve\\s+encrypted\\s+mtu=${SEALED_MTU}`), conn);
    assert.doesNotMatch(conn, /fastdp/, conn);

    assert.deepEqual(await pingFailures(cli, [b1, b2, b3]), []);
    const tcp = await exec(cli, b1, [process.execPath, '-e', TCP_CLIENT(srv.ip, 4 << 20)], 40_000);
    assert.equal(tcp.code, 0, `TCP b1 -> b3srv through the sealed relay: ${tcp.stdout}${tcp.stderr}`);
    const sealedRtt = await rttMs(cli, b1, b3);
    assert.ok(sealedRtt !== null);
    t.diagnostic(`ping RTT b1->b3 (sealed relay): ${sealedRtt} ms`);

    const marker = `loom-secret-${randomBytes(6).toString('hex')}`;
    const { pcap, packets } = await captureUnderlay(lab, async () => {
      await sendMarkers(cli, b1, b2, b3, marker, PATTERN);
      await sendMarkers(cli, b3, b2, b1, marker, PATTERN);
    });
    assert.ok(packets >= 20, `the capture saw the relay's traffic (${packets} packets)`);
    assert.equal(occurrences(pcap, Buffer.from(marker)), 0, 'the UDP marker never crosses the underlay in clear');
    assert.equal(occurrences(pcap, Buffer.from(PATTERN, 'hex')), 0, 'nor the ping pattern');

    if (hasIperf) {
      const server = await run(cli, { host: h3, name: 'b3iperf', ip: '10.49.0.10' }, ['iperf3', '-s', '-1']);
      const r = await exec(cli, b1, ['iperf3', '-c', server.ip, '-t', '3', '-J'], 30_000);
      const mbps = r.code === 0 ? Math.round((JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6) : null;
      t.diagnostic(`iperf3 b1->b3 (sealed relay, 1 TCP stream, 3 s): ${mbps ?? `failed: ${r.stdout.slice(0, 200)}`} Mbit/s`);
    }

    // A router with another password never joins.
    const intruder = await cli.launch(h4, { password: 'not-the-password', peers: [h1.address] });
    const refused = await pollUntil(
      async () => {
        const r = await cli.report(h4);
        const c = r.router.connections.find((x) => x.address.startsWith(h1.address));
        return c && (c.state === 'retrying' || c.state === 'failed') ? c : undefined;
      },
      { what: 'h4 refused by h1', timeoutMs: 20_000, intervalMs: 200 },
    );
    assert.ok(refused.errorCode, `a stable error code (${JSON.stringify(refused)})`);
    const h1Peers = (await cli.report(h1)).router.peers.map((p) => p.name);
    assert.ok(!h1Peers.some((p) => p === intruder.name), 'h1 never lists the intruder');
  }),
);

test('(c) h1 behind a NAT: h1 and h3 containers reach each other both ways', { skip, timeout: 240_000 }, (t) =>
  withContainers(t, { hosts: 3, subnet: '192.168.99.0/24' }, async (lab, cli) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const nat = await putBehindNat(lab, h1);
    // Proof the NAT lets nothing in: h3 cannot reach h1's private address, and its public one answers nothing.
    assert.notEqual((await lab.exec(h3, 'ping', ['-c', '1', '-W', '1', nat.publicAddress], { allowFailure: true })).code, 0, 'nothing gets in through the NAT');
    await cli.launch(h2);
    const n1 = (await cli.launch(h1, { peers: [h2.address] })).name;
    const n3 = (await cli.launch(h3, { peers: [h2.address] })).name;
    const c1 = await run(cli, { host: h1, name: 'c1', ip: '10.50.0.1' });
    const c2 = await run(cli, { host: h2, name: 'c2', ip: '10.50.0.2' });
    const c3 = await run(cli, { host: h3, name: 'c3', ip: '10.50.0.3' });
    const rows = await waitPaths(cli, lab.hosts, 'every peer has a path and its MACs', (h, peers) => {
      if (peers.length !== 2 || !peers.every((p) => p.path !== 'unreachable' && p.macs === 1)) return false;
      // The NAT drops what nobody asked for: no one may send h1's frames by kernel VXLAN.
      return h === h1 || peers.find((p) => p.peer === n1)?.path === 'sleeve';
    });
    const describe = (h: LabHost): string => rows.get(h)!.map((p) => `${p.peer}:${p.path}${p.via ? ` via ${p.via}` : ''}`).join(', ');
    t.diagnostic(`paths: h1 [${describe(h1)}]; h2 [${describe(h2)}]; h3 [${describe(h3)}]`);
    assert.equal(rows.get(h3)!.find((p) => p.peer === n1)!.path, 'sleeve');
    assert.ok(rows.get(h1)!.find((p) => p.peer === n3), 'h1 has a path to h3');

    assert.deepEqual(await pingFailures(cli, [c1, c2, c3]), []);
    const rtt = await rttMs(cli, c3, c1);
    assert.ok(rtt !== null);
    t.diagnostic(`ping RTT c3->c1 (into the NAT, relay): ${rtt} ms`);
  }),
);
