/**
 * Path MTU through the relay, in the running product: two lab hosts with `--no-fastdp` (every
 * frame through the user-space relay), a container on each. The relay carries an inner IP packet
 * up to what one datagram holds on the 1500-byte underlay (1500 - 28 - 30 header - 10 virtio-net
 * - 14 Ethernet = 1418 plain), never more than the segment MTU; MTUs on the segment (bridge, vxlan
 * device, host veths, both containers' ethwe) are raised by hand to 9500, so frames over the
 * relay's limit reach it. Then:
 *  - a TCP transfer with DF full-size segments (MSS 9460) completes: the relay cuts TCP to the path
 *    (`segmentsSent` grows), no answer needed, nothing fragmented on the underlay;
 *  - `ping -M do -s 9300` (ICMP: cannot be cut) reports "Frag needed ... mtu = 1418" / "message
 *    too long, mtu=1418", and `ping -M do` of exactly 1418 bytes of IP gets through.
 * Needs root, ping, unshare, nsenter (skips otherwise). Everything stays in the lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipFor, withLab, killPids } from '../helpers/lab.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { LabHost } from '../../src/lab/index.js';
import type { CommandResult } from '../../src/os/runner.js';
import type { ContainerList } from '../../src/containers/routes.js';
import type { DataplaneStatus } from '../../src/dataplane/controller/controller.js';
import { BRIDGE_NAME, FASTDP_MTU, VXLAN_NAME } from '../../src/dataplane/controller/settings.js';
import { RELAY_HEADER_BYTES, VNET_HEADER_BYTES, type RelayStats } from '../../src/dataplane/relay/index.js';

const skip = labSkipFor(['ping', 'unshare', 'nsenter']);

/** The largest inner IP packet one plain relay datagram carries on a 1500-byte underlay (at most the segment MTU). */
const RELAY_INNER_IP_LIMIT = Math.min(FASTDP_MTU, 1500 - 20 - 8 - RELAY_HEADER_BYTES - VNET_HEADER_BYTES - 14);
const RAISED_MTU = 9500;

interface Box {
  host: LabHost;
  name: string;
  ip: string;
}

const containerPids = new Set<number>();
function killContainers(): void {
  killPids(containerPids);
}

async function rememberContainers(cli: LoomCli, h: LabHost): Promise<void> {
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  for (const c of (JSON.parse(out.stdout) as ContainerList).containers) containerPids.add(c.pid);
}

async function run(cli: LoomCli, box: Box, command: string[]): Promise<Box> {
  await cli.run(box.host, ['run', '--name', box.name, `${box.ip}/24`, '--', ...command]);
  await rememberContainers(cli, box.host);
  return box;
}

function exec(cli: LoomCli, box: Box, command: string[], timeoutMs = 20_000): Promise<CommandResult> {
  return cli.run(box.host, ['exec', box.name, '--', ...command], { allowFailure: true, timeoutMs });
}

async function dataplaneOf(cli: LoomCli, h: LabHost): Promise<DataplaneStatus> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dataplane?: DataplaneStatus };
  if (!report.dataplane) throw new Error(`no dataplane section on ${h.name}`);
  return report.dataplane;
}

async function relayStatsOf(cli: LoomCli, h: LabHost): Promise<RelayStats> {
  const relay = (await dataplaneOf(cli, h)).relay as { stats?: RelayStats } | undefined;
  assert.ok(relay?.stats, `relay stats in ${h.name}'s report`);
  return relay.stats;
}

/** Raises the MTU of the bridge and every port on it (vxlan device, container veths) in host `h`. */
async function raiseSegmentMtu(cli: LoomCli, h: LabHost): Promise<void> {
  const ports = JSON.parse((await cli.lab.exec(h, 'ip', ['-j', 'link', 'show', 'master', BRIDGE_NAME])).stdout) as Array<{ ifname: string }>;
  assert.ok(ports.some((p) => p.ifname === VXLAN_NAME), `${VXLAN_NAME} is on the bridge in ${h.name}`);
  for (const name of [...ports.map((p) => p.ifname), BRIDGE_NAME]) await cli.lab.exec(h, 'ip', ['link', 'set', 'dev', name, 'mtu', String(RAISED_MTU)]);
}

async function mtuOf(cli: LoomCli, h: LabHost, name: string): Promise<number> {
  const [link] = JSON.parse((await cli.lab.exec(h, 'ip', ['-j', 'link', 'show', 'dev', name])).stdout) as Array<{ mtu: number }>;
  return link?.mtu ?? 0;
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
  setTimeout(() => { console.log('timeout ' + sent); process.exit(4); }, 30000);
`;

test('over-size frames on the relay path: TCP is cut to the path, DF ICMP gets fragmentation needed', { skip, timeout: 240_000 }, (t) => {
  process.on('exit', killContainers);
  return withLab(t, { hosts: 2, subnet: '192.168.94.0/24' }, async (lab, cli) => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    await cli.launch(h1, { args: ['--no-fastdp'] });
    await cli.launch(h2, { args: ['--no-fastdp'], peers: [h1.address] });
    const a = await run(cli, { host: h1, name: 'pa', ip: '10.51.0.1' }, ['sleep', '3600']);
    const b = await run(cli, { host: h2, name: 'pb', ip: '10.51.0.2' }, [process.execPath, '-e', TCP_SERVER]);
    await pollUntil(
      async () => {
        for (const h of [h1, h2]) {
          const dp = await dataplaneOf(cli, h);
          if (dp.lastError !== null || dp.peers.length !== 1 || dp.peers[0]!.path !== 'sleeve' || dp.peers[0]!.macs !== 1) return undefined;
        }
        return true;
      },
      { what: 'both peers on the relay with each other\'s MAC', timeoutMs: 45_000, intervalMs: 300 },
    );
    assert.equal((await exec(cli, a, ['ping', '-c', '1', '-W', '2', b.ip])).code, 0, 'a reaches b through the relay');

    for (const h of [h1, h2]) await raiseSegmentMtu(cli, h);
    for (const box of [a, b]) assert.equal((await exec(cli, box, ['ip', 'link', 'set', 'dev', 'ethwe', 'mtu', String(RAISED_MTU)])).code, 0);
    for (const h of [h1, h2]) assert.equal(await mtuOf(cli, h, VXLAN_NAME), RAISED_MTU, `${VXLAN_NAME} in ${h.name} kept the raised MTU`);

    // TCP first, while a's kernel knows no path MTU to b: the relay cuts its segments to the path.
    const before = await relayStatsOf(cli, h1);
    const tcp = await exec(cli, a, [process.execPath, '-e', TCP_CLIENT(b.ip, 4 << 20)], 45_000);
    assert.equal(tcp.code, 0, `TCP a -> b with MSS ${RAISED_MTU - 40} over a ${RELAY_INNER_IP_LIMIT}-byte relay path: ${tcp.stdout}${tcp.stderr}`);
    const afterTcp = await relayStatsOf(cli, h1);
    assert.ok(afterTcp.segmentsSent > before.segmentsSent, `h1's relay cut the over-size segments to the path (${afterTcp.segmentsSent - before.segmentsSent} datagrams)`);
    t.diagnostic(
      `TCP 4 MiB a -> b completed; h1 relay: ${afterTcp.segmentsSent - before.segmentsSent} datagrams cut to the path, ${afterTcp.fragNeededSent - before.fragNeededSent} fragmentation-needed answers, ${afterTcp.drops.oversized - before.drops.oversized} over-size drops`,
    );

    const tooBig = await exec(cli, a, ['ping', '-M', 'do', '-s', '9300', '-c', '2', '-i', '0.3', '-W', '2', b.ip]);
    assert.notEqual(tooBig.code, 0);
    assert.match(`${tooBig.stdout}${tooBig.stderr}`, new RegExp(`mtu ?= ?${RELAY_INNER_IP_LIMIT}`), 'ping learns the relay path MTU');
    t.diagnostic(`ping -M do -s 9300: ${`${tooBig.stdout}${tooBig.stderr}`.split('\n').filter((l) => /mtu/i.test(l))[0] ?? ''}`);
    const fits = await exec(cli, a, ['ping', '-M', 'do', '-s', String(RELAY_INNER_IP_LIMIT - 28), '-c', '1', '-W', '3', b.ip]);
    assert.equal(fits.code, 0, `a ${RELAY_INNER_IP_LIMIT}-byte DF packet still crosses the relay: ${fits.stdout}${fits.stderr}`);
  }).finally(() => {
    killContainers();
    containerPids.clear();
    process.off('exit', killContainers);
  });
});
