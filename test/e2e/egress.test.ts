/**
 * Containers reach the outside (issue 11), in the lab with real routers (`bin/loom`), real
 * containers (`loom run`, IPAM addresses) and an "outside" namespace on the underlay that is not
 * part of the mesh, running a TCP server that answers each connection with the source address it
 * saw. Three hosts: h1 and h2 masquerade (the default), h3 runs with --no-masq; the outside has a
 * route to the Loom range via h3 only, so:
 *  - a container on h1 reaches the outside, which sees h1's underlay address (masqueraded), and
 *    h1's forwarding was turned on by the router (the test turns it off before launch);
 *  - a container on h3 reaches it too, and it sees the container's own address (not masqueraded);
 *  - a container in another subnet of the range (net:10.36.0.0/16) gets a gateway of its host in
 *    that subnet, is masqueraded out, and reaches a container of the default subnet unmasqueraded;
 *  - a namespace plugged in by `loom attach` (twice) has one default route via its host and gets
 *    out masqueraded too;
 *  - container to container across hosts keeps the real source, on the fast path and on the
 *    relay path (UDP cut between h1 and h2: through h3's relay);
 *  - the table survives `loom stop` and a relaunch leaves exactly the two rules (no duplicates),
 *    and the container, which outlived the router, still gets out.
 * Needs root, nft, unshare, nsenter (skips otherwise). Everything stays in the lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { labSkipFor, withLab, killPids } from '../helpers/lab.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { addOutside, routeVia, LAB_ENV_MARKER, type Lab, type LabHost, type LabOutside } from '../../src/lab/index.js';
import { startProcess, systemRunner } from '../../src/os/runner.js';
import type { ContainerList } from '../../src/containers/routes.js';
import type { DataplaneStatus } from '../../src/dataplane/controller/controller.js';
import type { EgressStatus } from '../../src/dataplane/controller/egress.js';
import { parseEgressTable } from '../../src/dataplane/egress.js';

const skip = labSkipFor(['unshare', 'nsenter']);
const PORT = 8080;

/** Answers every connection with the source address it came from, then closes. */
const WHOAMI_SERVER = `require('node:net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(${PORT}, '0.0.0.0');`;
/** Prints what the server at `ip` answers; exit 4 after 3 s without an answer. */
const WHOAMI_CLIENT = (ip: string) => `
  const s = require('node:net').connect(${PORT}, '${ip}'); let got = '';
  s.on('data', (d) => (got += d)); s.on('end', () => { process.stdout.write(got); process.exit(0); });
  s.on('error', (e) => { console.log('error ' + e.message); process.exit(2); });
  setTimeout(() => { console.log('timeout'); process.exit(4); }, 3000);
`;

interface Box {
  host: LabHost;
  name: string;
  ip: string;
  pid: number;
}

const containerPids = new Set<number>();
function killContainers(): void {
  killPids(containerPids);
}

async function run(cli: LoomCli, h: LabHost, name: string, command: string[] = ['sleep', '3600'], address = 'net:default'): Promise<Box> {
  const id = (await cli.run(h, ['run', '--name', name, address, '--', ...command])).stdout.trim();
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  const list = JSON.parse(out.stdout) as ContainerList;
  for (const c of list.containers) containerPids.add(c.pid);
  const row = list.containers.find((c) => c.id === id);
  assert.ok(row, `container ${name} is listed on ${h.name}`);
  return { host: h, name, ip: row.cidrs[0]!.split('/')[0]!, pid: row.pid };
}

/**
 * The source address the whoami server at `ip` saw for a connection from `from`; retried (bounded)
 * while paths settle. Enters the container's namespace with nsenter, so it works while the
 * router is down too (`loom exec` asks the router where the container is).
 */
async function seenBy(lab: Lab, from: Box, ip: string, what: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const r = await lab.exec(from.host, 'nsenter', ['--target', String(from.pid), '--net', process.execPath, '-e', WHOAMI_CLIENT(ip)], { allowFailure: true, timeoutMs: 15_000 });
    if (r.code === 0 && r.stdout.trim() !== '') return r.stdout.trim();
    last = `exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`${what}: no answer within 30 s (last: ${last})`);
}

async function dataplaneOf(cli: LoomCli, h: LabHost): Promise<DataplaneStatus & { egress?: EgressStatus }> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dataplane?: DataplaneStatus & { egress?: EgressStatus } };
  if (!report.dataplane) throw new Error(`no dataplane section on ${h.name}`);
  return report.dataplane;
}

/** The comments of Loom's table on `h`, in chain order; null when there is no table. */
async function loomRules(lab: Lab, h: LabHost): Promise<string[] | null> {
  const r = await lab.exec(h, 'nft', ['-j', 'list', 'table', 'ip', 'loom'], { allowFailure: true });
  if (r.code !== 0) return null;
  return parseEgressTable(r.stdout).rules.map((x) => x.comment ?? '');
}

function startOutsideServer(lab: Lab, outside: LabOutside): number {
  const fd = openSync(join(lab.workDir, 'outside.log'), 'a');
  try {
    const child = startProcess(process.execPath, ['-e', WHOAMI_SERVER], { netns: outside.netns, env: { ...process.env, [LAB_ENV_MARKER]: lab.prefix }, logFile: fd });
    if (child.pid === undefined) throw new Error('outside server did not start');
    lab.track(child.pid);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

const WANT_RULES = ['loom: 10.32.0.0/12 to 10.32.0.0/12', 'loom: masquerade 10.32.0.0/12 out of !loom'];

test('egress: masqueraded out of its host, --no-masq not, container to container never (fast path and relay), no duplicate rules after a restart', { skip, timeout: 240_000 }, (t) => {
  process.on('exit', killContainers);
  return withLab(t, { hosts: 3, subnet: '192.168.113.0/24' }, async (lab, cli) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const outside = await addOutside(lab, 200);
    await routeVia(outside, '10.32.0.0/12', h3.address);
    startOutsideServer(lab, outside);
    await lab.exec(h1, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);

    await cli.launch(h1);
    const n2 = (await cli.launch(h2, { peers: [h1.address] })).name;
    await cli.launch(h3, { peers: [h1.address], args: ['--no-masq'] });
    assert.equal((await lab.exec(h1, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim(), '1', 'the router turned forwarding on');
    assert.deepEqual(await loomRules(lab, h1), WANT_RULES);
    assert.equal(await loomRules(lab, h3), null, '--no-masq: no table');
    const egress1 = (await dataplaneOf(cli, h1)).egress;
    assert.deepEqual(egress1 && { ...egress1, attempts: 0 }, { range: '10.32.0.0/12', masquerade: true, applied: true, attempts: 0, lastError: null });
    assert.equal((await dataplaneOf(cli, h3)).egress?.masquerade, false);

    const c1 = await run(cli, h1, 'c1');
    const c2 = await run(cli, h2, 'c2', [process.execPath, '-e', WHOAMI_SERVER]);
    const c3 = await run(cli, h3, 'c3');
    const route = await cli.run(h1, ['exec', 'c1', '--', 'ip', '-4', 'route', 'show', 'default']);
    assert.match(route.stdout, /^default via 10\.(3[2-9]|4[0-7])\.\d+\.\d+ dev ethwe/, `c1's default route: ${route.stdout}`);

    assert.equal(await seenBy(lab, c1, outside.address, 'c1 -> outside'), h1.address, 'masqueraded: the outside sees h1');
    assert.equal(await seenBy(lab, c2, outside.address, 'c2 -> outside'), h2.address, 'masqueraded: the outside sees h2');
    assert.equal(await seenBy(lab, c3, outside.address, 'c3 -> outside'), c3.ip, '--no-masq: the outside sees the container itself');
    assert.equal(await seenBy(lab, c1, c2.ip, 'c1 -> c2 (fast path)'), c1.ip, 'between containers the source stays');
    assert.equal(await seenBy(lab, c3, c2.ip, 'c3 -> c2'), c3.ip);

    // Another subnet of the range: the host gets an address in it (expose net:SUBNET) as the gateway;
    // masqueraded out, never between subnets of the range.
    const c4 = await run(cli, h2, 'c4', ['sleep', '3600'], 'net:10.36.0.0/16');
    assert.match(c4.ip, /^10\.36\./);
    const gw4 = (await lab.exec(h2, 'nsenter', ['--target', String(c4.pid), '--net', 'ip', '-4', 'route', 'show', 'default'])).stdout;
    assert.match(gw4, /^default via 10\.36\.\d+\.\d+ dev ethwe/, `c4's gateway is in its own subnet: ${gw4}`);
    assert.equal(await seenBy(lab, c4, outside.address, 'c4 (10.36/16) -> outside'), h2.address);
    assert.equal(await seenBy(lab, c4, c2.ip, 'c4 -> c2 (another subnet of the range)'), c4.ip, 'between subnets of the range: not masqueraded');

    // `loom attach` of a plain namespace: the same default route, idempotent when attached again.
    const attached = `${lab.prefix}-att`;
    await systemRunner.run('ip', ['netns', 'add', attached]);
    lab.adoptNetns(attached);
    for (let i = 0; i < 2; i++) await cli.run(h2, ['attach', 'net:default', `/run/netns/${attached}`]);
    const routes = (await systemRunner.run('ip', ['-4', 'route', 'show', 'default'], { netns: attached })).stdout.trim().split('\n');
    assert.equal(routes.length, 1, `one default route after two attaches: ${routes.join(' | ')}`);
    assert.match(routes[0]!, /^default via 10\.(3[2-9]|4[0-7])\.\d+\.\d+ dev ethwe/);
    const fromAttached = await systemRunner.run(process.execPath, ['-e', WHOAMI_CLIENT(outside.address)], { netns: attached, allowFailure: true, timeoutMs: 15_000 });
    assert.equal(fromAttached.stdout.trim(), h2.address, `an attached namespace gets out masqueraded too: ${fromAttached.stdout}${fromAttached.stderr}`);

    // The relay path: UDP cut between h1 and h2, so h1's frames for h2 go through h3's relay.
    await lab.blockUdp(h1, h2);
    await pollUntil(async () => ((await dataplaneOf(cli, h1)).peers.some((p) => p.peer === n2 && p.path === 'sleeve') ? true : undefined), { what: 'h1 reaches h2 by the relay', timeoutMs: 45_000, intervalMs: 300 });
    assert.equal(await seenBy(lab, c1, c2.ip, 'c1 -> c2 (relay)'), c1.ip, 'on the relay path the source stays too');
    assert.equal(await seenBy(lab, c1, outside.address, 'c1 -> outside (UDP to h2 cut)'), h1.address);

    // A clean stop keeps the table; a relaunch finds it as wanted and adds nothing.
    await cli.stop(h1);
    assert.deepEqual(await loomRules(lab, h1), WANT_RULES, 'the table stays while the router is down');
    assert.equal(await seenBy(lab, c1, outside.address, 'c1 -> outside, router down'), h1.address, 'egress does not need the router process');
    await cli.launch(h1);
    assert.deepEqual(await loomRules(lab, h1), WANT_RULES, 'no duplicate rules after a restart');
    assert.equal((await dataplaneOf(cli, h1)).egress?.applied, true);
    assert.equal(await seenBy(lab, c1, outside.address, 'c1 -> outside after the restart'), h1.address);
  }).finally(() => {
    killContainers();
    containerPids.clear();
    process.off('exit', killContainers);
  });
});

