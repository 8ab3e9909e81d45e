/**
 * The data plane through the daemon, as a user drives it: three lab hosts, `bin/loom launch`
 * (h2 -> h1, h3 -> h2; discovery completes the mesh), two containers per host with `bin/loom run`.
 * Proves: the controller programs kernel VXLAN from gossip alone (no hand-given state), every
 * container pings every other (`bin/loom exec`), ARP resolves across hosts, `loom status
 * connections` shows fastdp, and `loom rm` removes a container's MAC everywhere. (A `kill -9` of a
 * router with flows and pings running is the chaos scenario test/chaos/kill-restart.ts, whose
 * short form is test/e2e/chaos-short.test.ts.)
 * Needs root, nft, unshare, nsenter, ping (skips otherwise). Everything stays in the lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipFor, withLab, killPids } from '../helpers/lab.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import type { ContainerList } from '../../src/containers/routes.js';
import type { DataplaneStatus } from '../../src/dataplane/controller/controller.js';
import { FASTDP_MTU, VXLAN_NAME } from '../../src/dataplane/controller/settings.js';

const skip = labSkipFor(['ping', 'unshare', 'nsenter']);
const CONVERGE_MS = 45_000;

interface Box {
  host: LabHost;
  name: string;
  ip: string;
}

async function dataplaneOf(cli: LoomCli, h: LabHost): Promise<DataplaneStatus> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dataplane?: DataplaneStatus };
  if (!report.dataplane) throw new Error(`no dataplane section on ${h.name}`);
  return report.dataplane;
}

/**
 * Container PIDs seen in this run. Containers live in namespaces of their own, where the lab's
 * process sweep does not look, so the test kills them itself (by PID) when it ends, however it ends.
 */
const containerPids = new Set<number>();
function killContainers(): void {
  killPids(containerPids);
}

async function containersOf(cli: LoomCli, h: LabHost): Promise<ContainerList> {
  // `loom ps` is for people; the API's JSON is for checks.
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  const list = JSON.parse(out.stdout) as ContainerList;
  for (const c of list.containers) containerPids.add(c.pid);
  return list;
}

/** `loom run` in `h`; records the new container's PID for cleanup. */
async function run(cli: LoomCli, h: LabHost, args: string[]): Promise<string> {
  const out = await cli.run(h, ['run', ...args]);
  await containersOf(cli, h);
  return out.stdout.trim();
}

/** Waits until every host programs all others via fastdp, with `remoteMacs(host)` MACs in total. */
async function waitProgrammed(cli: LoomCli, lab: Lab, remoteMacs: (h: LabHost) => number): Promise<void> {
  await pollUntil(
    async () => {
      for (const h of lab.hosts) {
        const dp = await dataplaneOf(cli, h);
        if (dp.lastError !== null) return undefined;
        if (dp.peers.length !== lab.hosts.length - 1) return undefined;
        if (!dp.peers.every((p) => p.path === 'fastdp' && p.reason === undefined)) return undefined;
        if (dp.peers.reduce((sum, p) => sum + p.macs, 0) !== remoteMacs(h)) return undefined;
      }
      return true;
    },
    { what: 'every host programs the others and their MACs', timeoutMs: CONVERGE_MS, intervalMs: 300 },
  );
}

async function ping(cli: LoomCli, from: Box, to: Box): Promise<boolean> {
  const r = await cli.run(from.host, ['exec', from.name, '--', 'ping', '-c', '1', '-W', '2', to.ip], { allowFailure: true, timeoutMs: 15_000 });
  return r.code === 0;
}

/** Each host's VXLAN FDB and (where its router answers) data-plane peers, for failure messages. */
async function kernelState(cli: LoomCli, lab: Lab): Promise<string> {
  const out: string[] = [];
  for (const h of lab.hosts) {
    const fdb = await lab.exec(h, 'bridge', ['fdb', 'show', 'dev', VXLAN_NAME], { allowFailure: true });
    out.push(`${h.name} fdb: ${fdb.stdout.trim().split('\n').join(' | ')}${fdb.stderr.trim()}`);
    const dp = await dataplaneOf(cli, h).then((d) => ({ peers: d.peers, lastError: d.lastError }), (e: unknown) => String(e));
    out.push(`${h.name} dataplane: ${JSON.stringify(dp)}`);
  }
  return out.join('\n');
}

/**
 * What the kernel and the routers hold for a failed ping, for the failure message: each host's
 * VXLAN FDB, each container's neighbour entry for the other, each router's data-plane peers, and
 * whether a second ping a moment later answers (a transient gap or a lasting one).
 */
async function diagnose(cli: LoomCli, lab: Lab, from: Box, to: Box): Promise<string> {
  const out = [await kernelState(cli, lab)];
  for (const [a, b] of [[from, to], [to, from]] as const) {
    const n = await cli.run(a.host, ['exec', a.name, '--', 'ip', 'neigh', 'show', b.ip], { allowFailure: true });
    out.push(`${a.name} neigh ${b.ip}: ${n.stdout.trim()}`);
  }
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  out.push(`second ping 2 s later: ${(await ping(cli, from, to)) ? 'answered' : 'no answer'}`);
  return out.join('\n');
}


test('three routers: containers on every host reach each other over kernel VXLAN', { skip, timeout: 300_000 }, async (t) => {
  process.on('exit', killContainers);
  try {
    await withLab(t, { hosts: 3, subnet: '192.168.96.0/24' }, body);
  } finally {
    killContainers();
    process.off('exit', killContainers);
  }
  async function body(lab: Lab, cli: LoomCli): Promise<void> {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    await cli.launch(h1);
    await cli.launch(h2, { peers: [h1.address] });
    await cli.launch(h3, { peers: [h2.address] });
    await waitProgrammed(cli, lab, () => 0);

    const boxes: Box[] = [];
    let n = 0;
    for (const h of lab.hosts) {
      for (const s of ['a', 'b']) {
        const box = { host: h, name: `${h.name}${s}`, ip: `10.50.0.${++n}` };
        const id = await run(cli, h, ['--name', box.name, `${box.ip}/24`, '--', 'sleep', '3600']);
        assert.match(id, /^[0-9a-f]{12}$/, 'run prints the container id');
        boxes.push(box);
      }
    }
    await waitProgrammed(cli, lab, () => 4);

    const ps = await cli.run(h1, ['ps']);
    assert.match(ps.stdout, /h1a\s+\S+\s+10\.50\.0\.1\/24\s+\d+/);
    const conn = await cli.status(h1, 'connections');
    assert.match(conn, new RegExp(`fastdp\\s+unencrypted\\s+mtu=${FASTDP_MTU}`), conn);

    await t.test('every container pings every other, on the same host and across hosts', async () => {
      const failures: string[] = [];
      let first: [Box, Box] | null = null;
      for (const from of boxes) {
        for (const to of boxes) {
          if (from === to || (await ping(cli, from, to))) continue;
          failures.push(`${from.name}->${to.name}`);
          first ??= [from, to];
        }
      }
      if (first) assert.fail(`no answer: ${failures.join(', ')}\n${await diagnose(cli, lab, ...first)}`);
    });

    await t.test('ARP resolves a remote container to its own MAC', async () => {
      const macs = new Map<string, string>();
      for (const h of lab.hosts) for (const c of (await containersOf(cli, h)).containers) macs.set(c.name, c.mac);
      for (const [from, to] of [[boxes[0]!, boxes[5]!], [boxes[3]!, boxes[1]!]] as const) {
        const r = await cli.run(from.host, ['exec', from.name, '--', 'ip', '-j', 'neigh', 'show', to.ip]);
        const neigh = JSON.parse(r.stdout) as Array<{ lladdr?: string }>;
        assert.equal(neigh[0]?.lladdr, macs.get(to.name), `${from.name} resolves ${to.name}`);
      }
    });

    await t.test('loom rm removes a container everywhere', async () => {
      await cli.run(h2, ['rm', 'h2b']);
      assert.deepEqual((await containersOf(cli, h2)).containers.map((c) => c.name), ['h2a']);
      await waitProgrammed(cli, lab, (h) => (h === h2 ? 4 : 3));
    });

    // Every container of the run goes; the lab then removes the namespaces.
    for (const h of lab.hosts) {
      const names = (await containersOf(cli, h)).containers.map((c) => c.name);
      if (names.length > 0) await cli.run(h, ['rm', ...names]);
      assert.deepEqual((await containersOf(cli, h)).containers, []);
    }
  }
});
