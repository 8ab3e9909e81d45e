/**
 * The mesh's security claims (docs/SECURITY.md, issue 12 "Security"), attacked from the underlay
 * and from a container, in real namespaces. Routers on h1 and h2 share a password (so every frame
 * between them is relayed and sealed), a container on each pings the other; h3 is the attacker,
 * on the same underlay.
 *
 * (1) Through the overlay a container reaches no router's control ports: TCP to the mesh port and
 *     the API port of its own host's and the other host's bridge address is refused, and VXLAN
 *     sent to the other host's bridge address (UDP 4789) does not put a frame on its bridge.
 * (2) Nobody without the password joins: a router with none is refused (h1 counts the failed
 *     handshake, never lists it; another password: test/e2e/mesh.test.ts, dataplane-relay (b)).
 * (3) Nobody without the password injects a frame: plain VXLAN from the underlay to a host's
 *     4789 reaches no container; sealed relay datagrams captured on the underlay and replayed
 *     with the sender's address are dropped as `replayed`; a forged one (counter moved, bytes
 *     changed) as `auth-failed` and it does not move the replay window; datagrams held back
 *     (dropped by nft while captured) and delivered late are accepted within the window and
 *     dropped as `too-old` beyond it.
 * (4) Throttling: a client redialling every 100 ms with a wrong-password handshake, then a burst
 *     of 1,000 handshakes, are refused at accept after a few tries (h1's handshake counters),
 *     while GET /status on h1 answers within 1 s and the containers' pings keep flowing.
 * Needs root, nft, tcpdump, python3, ping, nsenter (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { labSkipFor, withLab } from '../helpers/lab.js';
import { execIn, parsePingLog, readText, type Box } from '../helpers/underlay.js';
import { killPids } from '../helpers/lab.js';
import { icmpEchoFrame, icmpInEchos, readPcapUdp, sendRawUdp, vxlanPayload } from '../helpers/raw-packets.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { LOOM_VNI } from '../../src/dataplane/controller/settings.js';
import { OFFSET, PacketType } from '../../src/dataplane/relay/wire.js';
import { REPLAY_WINDOW_BITS } from '../../src/dataplane/relay/replay-window.js';
import { createHello, encodeHello } from '../../src/mesh/handshake.js';
import { generateEphemeralKeyPair } from '../../src/mesh/crypto.js';
import { encodeFrame } from '../../src/mesh/framing.js';
import type { PeerName, PeerUid } from '../../src/core/ids.js';

const skip = labSkipFor(['ping', 'nsenter', 'tcpdump', 'python3', 'timeout']);
const MESH_PORT = 6783;
const containerPids = new Set<number>();
const trackPid = (pid: number): void => void containerPids.add(pid);
const killContainers = (): void => killPids(containerPids);
const API_PORT = 6784;

interface RelayCounters {
  fromNeighbours: number;
  drops: Record<string, number>;
}

async function relayCounters(cli: LoomCli, h: LabHost): Promise<RelayCounters> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dataplane?: { relay?: { stats?: RelayCounters } } };
  const stats = report.dataplane?.relay?.stats;
  if (!stats) throw new Error(`no relay counters in ${h.name}'s report`);
  return stats;
}

async function metric(lab: Lab, h: LabHost, name: string): Promise<number> {
  const out = await lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:${API_PORT}/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`], { timeoutMs: 10_000 });
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(out.stdout);
  if (!m) throw new Error(`no ${name} in ${h.name}'s metrics`);
  return Number(m[1]);
}

/** TCP connects from inside a container: each target "ip:port" answers CONNECTED, or the error code. */
const TCP_PROBE = `
const net = require('node:net');
const one = (t) => new Promise((resolve) => {
  const [host, port] = t.split(':');
  const s = net.connect({ host, port: Number(port), timeout: 2000 });
  s.on('connect', () => { s.destroy(); resolve('CONNECTED'); });
  s.on('timeout', () => { s.destroy(); resolve('TIMEOUT'); });
  s.on('error', (e) => resolve(e.code || e.message));
});
(async () => { const out = []; for (const t of JSON.parse(process.argv[1])) out.push(await one(t)); process.stdout.write(JSON.stringify(out)); })();
`;

/** Sends one UDP datagram (hex) from inside a container. */
const UDP_SEND = `
const s = require('node:dgram').createSocket('udp4');
s.send(Buffer.from(process.argv[1], 'hex'), Number(process.argv[3]), process.argv[2], () => s.close());
`;

/**
 * A hostile client: every `everyMs` for `seconds`, a TCP connection to HOST:6783 that sends a Loom
 * hello (with the password flag) and a 32-byte "confirm" sealed with no key we know, then waits
 * for the close. Prints {tries, answered, refused}: answered = the router sent its hello back (the
 * handshake ran), refused = closed without a byte (throttled at accept).
 */
const REDIALLER = (host: string, helloHex: string, everyMs: number, seconds: number, parallel: number, total: number) => `
const net = require('node:net'); const crypto = require('node:crypto');
const hello = Buffer.from('${helloHex}', 'hex');
let tries = 0, answered = 0, refused = 0, open = 0;
const end = Date.now() + ${seconds * 1000};
const finish = () => { console.log(JSON.stringify({ tries, answered, refused })); process.exit(0); };
const one = () => {
  if (Date.now() >= end || tries >= ${total}) { if (open === 0) finish(); return; }
  tries++; open++;
  let got = 0;
  const s = net.connect(${MESH_PORT}, '${host}');
  s.setTimeout(6000, () => s.destroy());
  s.on('connect', () => { const confirm = Buffer.alloc(36); confirm.writeUInt32BE(32, 0); crypto.randomBytes(32).copy(confirm, 4); s.write(Buffer.concat([hello, confirm])); });
  s.on('data', (d) => { got += d.length; });
  s.on('error', () => {});
  s.on('close', () => { open--; if (got > 0) answered++; else refused++; setTimeout(one, ${everyMs}); });
};
for (let i = 0; i < ${parallel}; i++) one();
setTimeout(finish, ${seconds * 1000} + 10000);
`;

/** GET /status every 200 ms for `seconds`: one line per call, its latency in ms or "fail". */
const PROBER = (seconds: number) => `
const http = require('node:http'); const end = Date.now() + ${seconds * 1000};
const tick = () => {
  if (Date.now() >= end) process.exit(0);
  const t0 = performance.now();
  const req = http.get({ host: '127.0.0.1', port: ${API_PORT}, path: '/status', timeout: 5000 }, (res) => { res.resume(); res.on('end', () => { console.log(res.statusCode === 200 ? (performance.now() - t0).toFixed(1) : 'fail'); setTimeout(tick, 200); }); });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => { console.log('fail'); setTimeout(tick, 200); });
};
tick();
`;

function counterOf(p: Buffer): number {
  return p.readUInt32BE(OFFSET.counterHi) * 2 ** 32 + p.readUInt32BE(OFFSET.counterLo);
}

test('security: no way in without the password, through the underlay or a container; replays dropped; handshake abuse throttled', { skip, timeout: 300_000 }, (t) => {
  process.on('exit', killContainers);
  return withLab(t, { hosts: 3, subnet: '192.168.81.0/24' }, async (lab, cli) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const password = `pw-${randomBytes(8).toString('hex')}`;
    await cli.launch(h1, { password });
    await cli.launch(h2, { password, peers: [h1.address] });
    // Addresses from IPAM: in the subnet of the hosts' bridge addresses, so the overlay reaches those.
    const boxOf = async (h: LabHost, name: string): Promise<Box> => {
      await cli.run(h, ['run', '--name', name, 'net:default', '--', 'sleep', '3600']);
      const row = (await cli.containers(h)).find((c) => c.name === name)!;
      trackPid(row.pid);
      return { host: h, name, ip: row.cidrs[0]!.split('/')[0]! };
    };
    const c1 = await boxOf(h1, 'c1');
    const c2 = await boxOf(h2, 'c2');
    await pollUntil(async () => ((await execIn(cli, c1, ['ping', '-c', '1', '-W', '1', c2.ip])).code === 0 ? true : undefined), { what: 'c1 -> c2 over the sealed relay', timeoutMs: 45_000, intervalMs: 300 });
    const rows = new Map<string, { pid: number; mac: string }>();
    for (const h of [h1, h2]) for (const c of await cli.containers(h)) rows.set(c.name, { pid: c.pid, mac: c.mac });
    const bridgeOf = async (h: LabHost): Promise<string> =>
      pollUntil(
        async () => {
          const r = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: { cidr?: string | null } };
          return r['host-address']?.cidr?.split('/')[0];
        },
        { what: `${h.name}'s bridge address`, timeoutMs: 30_000, intervalMs: 300 },
      );
    const bridge1 = await bridgeOf(h1);
    const bridge2 = await bridgeOf(h2);
    const c2Frame = (id: number): Buffer => icmpEchoFrame({ dstMac: rows.get('c2')!.mac, srcMac: '02:00:00:ba:d0:01', srcIp: '10.32.0.250', dstIp: c2.ip, id });

    await t.test('(1) a container reaches no control port through the overlay', async () => {
      const probe = await execIn(cli, c1, [process.execPath, '-e', TCP_PROBE, JSON.stringify([`${bridge2}:${MESH_PORT}`, `${bridge2}:${API_PORT}`, `${bridge1}:${MESH_PORT}`, `${bridge1}:${API_PORT}`])], 30_000);
      const results = JSON.parse(probe.stdout) as string[];
      t.diagnostic(`c1 -> ${bridge2}:6783, :6784, ${bridge1}:6783, :6784: ${results.join(', ')}`);
      for (const r of results) assert.notEqual(r, 'CONNECTED');
      assert.deepEqual(results, ['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED'], 'refused: the packets arrive and are turned away');
      // VXLAN from the container to h2's bridge address: no frame appears on h2's bridge.
      const before = await icmpInEchos(lab, h2, rows.get('c2')!.pid);
      for (let i = 0; i < 3; i++) await execIn(cli, c1, [process.execPath, '-e', UDP_SEND, vxlanPayload(LOOM_VNI, c2Frame(100 + i)).toString('hex'), bridge2, '4789']);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await icmpInEchos(lab, h2, rows.get('c2')!.pid), before, 'c2 received none of the echo requests sent as VXLAN from c1 to h2');
    });

    // A router with another password: test/e2e/mesh.test.ts and dataplane-relay.test.ts (b).
    await t.test('(2) a router with no password does not join', async () => {
      const refusals = async (): Promise<number> => (await metric(lab, h1, 'loom_handshakes_failed_total')) + (await metric(lab, h1, 'loom_handshakes_throttled_total'));
      const base = await refusals();
      const intruder = await cli.launch(h3, { peers: [h1.address] });
      await pollUntil(async () => ((await refusals()) > base ? true : undefined), { what: 'h1 to refuse a router with no password', timeoutMs: 20_000, intervalMs: 300 });
      const peers = (await cli.report(h1)).router.peers.map((p) => p.name);
      assert.ok(!peers.includes(intruder.name), 'h1 never lists the intruder');
      assert.equal(peers.length, 2);
      await cli.stop(h3);
    });

    await t.test('(3) nobody injects a frame: plain VXLAN, replayed, forged and late sealed datagrams', async () => {
      const c2pid = rows.get('c2')!.pid;
      // Plain VXLAN from the underlay to h2's 4789.
      const echosBefore = await icmpInEchos(lab, h2, c2pid);
      await sendRawUdp(lab, h3, { srcIp: h3.address, srcPort: 40000, dstIp: h2.address, dstPort: 4789 }, [0, 1, 2].map((i) => vxlanPayload(LOOM_VNI, c2Frame(200 + i))));
      // And as if from h1 (a forged source): the kernel VXLAN port checks nothing.
      await sendRawUdp(lab, h3, { srcIp: h1.address, srcPort: 40000, dstIp: h2.address, dstPort: 4789 }, [0, 1, 2].map((i) => vxlanPayload(LOOM_VNI, c2Frame(300 + i))));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await icmpInEchos(lab, h2, c2pid), echosBefore, 'no echo request sent as VXLAN from the underlay reached c2');

      // Capture h1 -> h2 relay datagrams on h2's eth0 while c1 pings c2; for a while h2's nft
      // drops them (the capture still sees them: it taps the device before netfilter).
      const pcap = join(lab.workDir, 'relay.pcap');
      const capture = lab.start(h2, 'timeout', ['12', 'tcpdump', '-i', 'eth0', '-U', '-n', '-w', pcap, 'udp', 'and', 'src', 'host', h1.address, 'and', 'src', 'port', String(MESH_PORT), 'and', 'dst', 'port', String(MESH_PORT)], { logFile: join(lab.workDir, 'tcpdump.log') });
      await new Promise((r) => setTimeout(r, 1_500));
      await execIn(cli, c1, ['ping', '-c', '5', '-i', '0.2', c2.ip]);
      await lab.exec(h2, 'nft', ['-f', '-'], { input: `table inet sectest {\n chain input {\n  type filter hook input priority -10; policy accept;\n  ip saddr ${h1.address} udp sport ${MESH_PORT} udp dport ${MESH_PORT} counter drop\n }\n}\n` });
      await execIn(cli, c1, ['ping', '-c', '6', '-i', '0.2', '-W', '1', c2.ip]);
      const blocked = Number(/counter packets (\d+)/.exec((await lab.exec(h2, 'nft', ['list', 'table', 'inet', 'sectest'])).stdout)?.[1] ?? NaN);
      await lab.exec(h2, 'nft', ['delete', 'table', 'inet', 'sectest']);
      await execIn(cli, c1, ['ping', '-c', '3', '-i', '0.2', c2.ip]);
      await pollUntil(async () => (readPcapUdp(pcap).length > 20 ? true : undefined), { what: 'the capture', timeoutMs: 10_000, intervalMs: 200 });
      await lab.stopProcess(capture.pid, 500).catch(() => undefined);
      const all = readPcapUdp(pcap).filter((d) => d.payload.length > 30);
      assert.ok(all.length > 20, `captured ${all.length} relay datagrams`);
      const before = await relayCounters(cli, h2);
      // Replays of everything captured, with h1's address and port: each is either already seen
      // (replayed) or held back by the block (fresh, accepted once). None is accepted twice.
      const sent = await sendRawUdp(lab, h3, { srcIp: h1.address, srcPort: MESH_PORT, dstIp: h2.address, dstPort: MESH_PORT }, all.map((d) => d.payload));
      const afterFirst = await pollUntil(async () => {
        const c = await relayCounters(cli, h2);
        return c.fromNeighbours - before.fromNeighbours >= sent ? c : undefined;
      }, { what: 'h2 to count the replayed datagrams', timeoutMs: 10_000, intervalMs: 200 });
      const replayed1 = afterFirst.drops['replayed']! - before.drops['replayed']!;
      const tooOld1 = afterFirst.drops['too-old']! - before.drops['too-old']!;
      const late = sent - replayed1 - tooOld1;
      t.diagnostic(`replayed ${sent} captured datagrams: ${replayed1} dropped as replayed, ${tooOld1} as too old, ${late} accepted (h2's nft held back ${blocked}: never seen before)`);
      assert.equal(tooOld1, 0, 'all within the window');
      assert.ok(late >= 1, 'held-back datagrams, delivered late and out of order within the window, are accepted');
      // nft's counter is read a moment before its table goes, so a datagram or two dropped in between are not in it.
      assert.ok(late <= blocked + 3, 'only held-back datagrams are accepted; every one h2 had taken is dropped as replayed');
      // A second replay of the same: now every one is dropped.
      await sendRawUdp(lab, h3, { srcIp: h1.address, srcPort: MESH_PORT, dstIp: h2.address, dstPort: MESH_PORT }, all.map((d) => d.payload));
      const afterSecond = await pollUntil(async () => {
        const c = await relayCounters(cli, h2);
        return c.fromNeighbours - afterFirst.fromNeighbours >= sent ? c : undefined;
      }, { what: 'h2 to count the second replay', timeoutMs: 10_000, intervalMs: 200 });
      assert.equal(afterSecond.drops['replayed']! + afterSecond.drops['too-old']! - afterFirst.drops['replayed']! - afterFirst.drops['too-old']!, sent, 'a datagram is accepted at most once');

      // Forged: a captured datagram with its counter moved far ahead (fresh to the window) and a byte changed.
      const forged = all.slice(0, 5).map((d, i) => {
        const p = Buffer.from(d.payload);
        const counter = counterOf(p) + 1_000_000 + i;
        p.writeUInt32BE(Math.floor(counter / 2 ** 32), OFFSET.counterHi);
        p.writeUInt32BE(counter % 2 ** 32, OFFSET.counterLo);
        p[p.length - 20]! ^= 0xff;
        return p;
      });
      await sendRawUdp(lab, h3, { srcIp: h1.address, srcPort: MESH_PORT, dstIp: h2.address, dstPort: MESH_PORT }, forged);
      const afterForged = await pollUntil(async () => {
        const c = await relayCounters(cli, h2);
        return c.drops['auth-failed']! - afterSecond.drops['auth-failed']! >= 5 ? c : undefined;
      }, { what: 'h2 to drop the forged datagrams as auth-failed', timeoutMs: 10_000, intervalMs: 200 });
      assert.equal(afterForged.drops['auth-failed']! - afterSecond.drops['auth-failed']!, 5);
      // They did not move the window: traffic from h1 is still accepted.
      assert.equal((await execIn(cli, c1, ['ping', '-c', '3', '-i', '0.2', '-W', '1', c2.ip])).code, 0, 'c1 still reaches c2 after the forgeries');

      // Beyond the window: hold back more datagrams, then push the counter past the window before delivering them.
      const pcap2 = join(lab.workDir, 'relay2.pcap');
      const capture2 = lab.start(h2, 'timeout', ['30', 'tcpdump', '-i', 'eth0', '-U', '-n', '-w', pcap2, 'udp', 'and', 'src', 'host', h1.address, 'and', 'src', 'port', String(MESH_PORT), 'and', 'dst', 'port', String(MESH_PORT)], { logFile: join(lab.workDir, 'tcpdump2.log') });
      await new Promise((r) => setTimeout(r, 1_500));
      const seen = new Set(all.map((d) => counterOf(d.payload)));
      await lab.exec(h2, 'nft', ['-f', '-'], { input: `table inet sectest {\n chain input {\n  type filter hook input priority -10; policy accept;\n  ip saddr ${h1.address} udp sport ${MESH_PORT} udp dport ${MESH_PORT} counter drop\n }\n}\n` });
      await execIn(cli, c1, ['ping', '-c', '4', '-i', '0.2', '-W', '1', c2.ip]);
      await lab.exec(h2, 'nft', ['delete', 'table', 'inet', 'sectest']);
      await new Promise((r) => setTimeout(r, 300));
      const heldBack = readPcapUdp(pcap2).filter((d) => d.payload.length > 30 && !seen.has(counterOf(d.payload)));
      // Push h1's counter towards h2 past the window: a burst of pings (each echo is one sealed datagram, plus probes).
      await execIn(cli, c1, ['ping', '-c', String(REPLAY_WINDOW_BITS + 500), '-i', '0.002', '-q', '-W', '1', c2.ip], 60_000);
      await lab.stopProcess(capture2.pid, 500).catch(() => undefined);
      const top = Math.max(...readPcapUdp(pcap2).map((d) => counterOf(d.payload)));
      const old = heldBack.filter((d) => top - counterOf(d.payload) >= REPLAY_WINDOW_BITS && d.payload[OFFSET.type] !== PacketType.probe);
      t.diagnostic(`held back ${heldBack.length} datagrams; ${old.length} are now beyond the window (top counter ${top})`);
      assert.ok(old.length >= 1, 'some held-back datagrams are beyond the window');
      const beforeOld = await relayCounters(cli, h2);
      await sendRawUdp(lab, h3, { srcIp: h1.address, srcPort: MESH_PORT, dstIp: h2.address, dstPort: MESH_PORT }, old.map((d) => d.payload));
      const afterOld = await pollUntil(async () => {
        const c = await relayCounters(cli, h2);
        return c.drops['too-old']! - beforeOld.drops['too-old']! >= old.length ? c : undefined;
      }, { what: 'h2 to drop the late datagrams as too-old', timeoutMs: 10_000, intervalMs: 200 });
      assert.equal(afterOld.drops['too-old']! - beforeOld.drops['too-old']!, old.length);
    });

    await t.test('(4) wrong-password redials and a handshake flood are throttled; the router keeps serving', async () => {
      const hello = encodeFrame(
        encodeHello(
          createHello({
            identity: { name: '02:ba:d0:00:00:01' as PeerName, nickname: 'intruder', uid: '00000000000000ff' as PeerUid },
            minVersion: 1,
            maxVersion: 1,
            passwordSet: true,
            listenPort: MESH_PORT,
            keyPair: generateEphemeralKeyPair(),
          }),
        ),
      ).toString('hex');
      const failed0 = await metric(lab, h1, 'loom_handshakes_failed_total');
      const throttled0 = await metric(lab, h1, 'loom_handshakes_throttled_total');
      const pingLog = join(lab.workDir, 'sec-ping.txt');
      lab.start(h1, 'nsenter', ['--target', String(rows.get('c1')!.pid), '--net', 'ping', '-D', '-O', '-i', '0.1', '-W', '1', '-w', '40', c2.ip], { logFile: pingLog });
      const probeLog = join(lab.workDir, 'sec-probe.txt');
      const prober = lab.start(h1, process.execPath, ['-e', PROBER(40)], { logFile: probeLog });
      const startedAt = Date.now();
      const redial = await lab.exec(h3, process.execPath, ['-e', REDIALLER(h1.address, hello, 100, 8, 1, 1_000_000)], { timeoutMs: 40_000 });
      const failed1 = await metric(lab, h1, 'loom_handshakes_failed_total');
      const flood = await lab.exec(h3, process.execPath, ['-e', REDIALLER(h1.address, hello, 0, 10, 100, 1_000)], { timeoutMs: 40_000 });
      const endedAt = Date.now();
      await lab.stopProcess(prober.pid, 500).catch(() => undefined);
      const failed2 = await metric(lab, h1, 'loom_handshakes_failed_total');
      const throttled2 = await metric(lab, h1, 'loom_handshakes_throttled_total');
      const r = JSON.parse(redial.stdout.trim().split('\n').at(-1)!) as { tries: number; answered: number; refused: number };
      const f = JSON.parse(flood.stdout.trim().split('\n').at(-1)!) as { tries: number; answered: number; refused: number };
      const lines = readText(probeLog).trim().split('\n').filter((l) => l !== '');
      const latencies = lines.filter((l) => l !== 'fail').map(Number).sort((a, b) => a - b);
      const replies = parsePingLog(readText(pingLog)).replies.map((x) => x.atMs).filter((x) => x >= startedAt && x <= endedAt).sort((a, b) => a - b);
      let gap = replies.length > 0 ? Math.max(replies[0]! - startedAt, endedAt - replies.at(-1)!) : endedAt - startedAt;
      for (let i = 1; i < replies.length; i++) gap = Math.max(gap, replies[i]! - replies[i - 1]!);
      t.diagnostic(
        `redialler (every 100 ms for 8 s): ${r.tries} tries, ${r.answered} handshakes run, ${r.refused} refused at accept; h1 counted ${failed1 - failed0} failed handshakes (${Math.round(((failed1 - failed0) * 60) / 8)} per minute). ` +
          `flood (1,000 handshakes, 100 at once): ${f.answered} run, ${f.refused} refused; h1: ${failed2 - failed1} failed, ${throttled2 - throttled0} throttled in all. ` +
          `status p50 ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms, ${lines.length - latencies.length} failed of ${lines.length}; longest ping gap ${Math.round(gap)} ms`,
      );
      assert.ok(r.tries >= 30, `the redialler tried (${r.tries})`);
      assert.ok(failed1 - failed0 <= 8, `a wrong-password redialler gets at most 8 handshakes in 8 s, not 80 (got ${failed1 - failed0})`);
      assert.ok(r.refused >= r.tries * 0.8, 'most of its connections are refused at accept');
      assert.ok(f.refused >= f.tries * 0.9, `most of the flood is refused at accept (${f.refused} of ${f.tries})`);
      assert.ok(failed2 - failed1 <= 30, `few flood handshakes run (${failed2 - failed1})`);
      assert.ok(latencies.length > 0 && latencies.at(-1)! < 1_000 && latencies.length === lines.length, 'status answers within 1 s throughout');
      assert.ok(gap < 2_000, `container traffic keeps flowing (longest ping gap ${Math.round(gap)} ms)`);
    });
  }).finally(() => {
    killContainers();
    process.off('exit', killContainers);
  });
});
