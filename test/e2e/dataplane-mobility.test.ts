/**
 * Container mobility: a container `web` is removed from one host (`loom rm`) and started with the
 * same address on another (`loom run`, a new container id, hence a new MAC). A client on a third
 * host that talked to it before (its ARP cache holds the old MAC) must reach it again within
 * 2 s of the new start. The client polls with `ping -c1 -W1` every 100 ms from inside its
 * container; the time to the first reply is measured from the new container's creation (its
 * `createdAt`: the process exists, its network is not plugged in yet), which is stricter than
 * from the return of `loom run` (by then the first reply has usually come).
 * What makes it fast: the new container's gratuitous ARP (src/containers/attach.ts) reaches the
 * client through the VXLAN flood entries and overrides its ARP entry; until the new MAC's FDB
 * entry arrives by gossip, unicast to it is flooded to every peer.
 * Needs root, nft, unshare, nsenter, ping (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { LabHost } from '../../src/lab/index.js';
import type { ContainerRow } from '../../src/containers/daemon.js';
import { containerLabSkip, withRouters, type Box, type ContainerTracker } from '../helpers/mcast-lab.js';

const PREFIX = 24;
const MOVE_BUDGET_MS = 2000;
const PROBE_DEADLINE_MS = 15_000;

/** What the in-container prober reports: the first ping that got a reply, by wall clock (shared by all namespaces). */
interface ProbeReport {
  firstReply: { sentAt: number; repliedAt: number } | null;
  attempts: number;
}

/**
 * Runs in the client container: argv = target, ready file, deadline ms. Starts `ping -c1 -W1`
 * every 100 ms (overlapping: a ping to a dead address takes 1 s) until one succeeds or the
 * deadline; at most deadline/100 + 1 pings. Writes the ready file after starting the first ping.
 */
const PROBER = `
  const [target, readyFile, deadlineText] = process.argv.slice(1);
  const { spawn } = require('node:child_process');
  const deadline = Date.now() + Number(deadlineText);
  let attempts = 0, done = false;
  const finish = (firstReply) => {
    if (done) return;
    done = true; clearInterval(timer);
    process.stdout.write(JSON.stringify({ firstReply, attempts }) + '\\n');
    setTimeout(() => process.exit(0), 1200); // let the pings still in flight end first
  };
  const probe = () => {
    if (done) return;
    if (Date.now() >= deadline) return finish(null);
    attempts++;
    const sentAt = Date.now();
    spawn('ping', ['-c', '1', '-W', '1', '-n', '-q', target], { stdio: 'ignore' }).on('exit', (code) => { if (code === 0) finish({ sentAt, repliedAt: Date.now() }); });
  };
  const timer = setInterval(probe, 100);
  probe();
  require('node:fs').writeFileSync(readyFile, String(process.pid));
`;

async function neighbourMac(cli: LoomCli, from: Box, ip: string): Promise<string | undefined> {
  const r = await cli.run(from.host, ['exec', from.name, '--', 'ip', '-j', 'neigh', 'show', ip]);
  return (JSON.parse(r.stdout || '[]') as Array<{ lladdr?: string }>)[0]?.lladdr;
}

async function rowOf(containers: ContainerTracker, h: LabHost, name: string): Promise<ContainerRow> {
  const c = (await containers.list(h)).containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} on ${h.name}`);
  return c;
}

test('a container moved to another host with the same address is reachable again within 2 s', { skip: containerLabSkip, timeout: 300_000 }, async (t) => {
  await withRouters(t, { hosts: 3, subnet: '192.168.98.0/24' }, async (lab, cli, containers) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const client: Box = { host: h2, name: 'client', ip: '10.49.0.20' };
    const webIp = '10.49.0.10';
    await containers.run(client, PREFIX, ['sleep', '3600']);
    await containers.run({ host: h1, name: 'web', ip: webIp }, PREFIX, ['sleep', '3600']);
    await containers.waitProgrammed(lab, (h) => (h === h3 ? 2 : 1));

    const ping = await cli.run(h2, ['exec', client.name, '--', 'ping', '-c', '1', '-W', '2', webIp], { allowFailure: true });
    assert.equal(ping.code, 0, 'client reaches web on h1 before the move');
    let webMac = (await rowOf(containers, h1, 'web')).mac;
    assert.equal(await neighbourMac(cli, client, webIp), webMac, "the client's ARP cache holds web's MAC");

    const measured: string[] = [];
    // h1 -> h3, then back to h1: both directions, neither on the client's host.
    for (const [from, to] of [[h1, h3], [h3, h1]] as const) {
      await cli.run(from, ['rm', 'web']);
      const readyFile = join(lab.workDir, `probe-${to.name}.ready`);
      rmSync(readyFile, { force: true });
      const probing = cli.run(h2, ['exec', client.name, '--', process.execPath, '-e', PROBER, webIp, readyFile, String(PROBE_DEADLINE_MS)], { timeoutMs: PROBE_DEADLINE_MS + 20_000 });
      await pollUntil(async () => (existsSync(readyFile) ? true : undefined), { what: 'the prober to start', timeoutMs: 20_000, intervalMs: 20 });

      const invoked = Date.now();
      await containers.run({ host: to, name: 'web', ip: webIp }, PREFIX, ['sleep', '3600']);
      const returned = Date.now();
      const report = JSON.parse((await probing).stdout) as ProbeReport;
      const web = await rowOf(containers, to, 'web');
      const created = Date.parse(web.createdAt);

      assert.ok(report.firstReply, `no reply within ${PROBE_DEADLINE_MS} ms of the move ${from.name} -> ${to.name} (${report.attempts} pings)`);
      const { sentAt, repliedAt } = report.firstReply;
      assert.ok(repliedAt >= created, 'no reply while web was gone');
      const afterStart = repliedAt - created;
      measured.push(
        `${from.name}->${to.name}: first reply ${afterStart} ms after the new container was created ` +
          `(\`loom run\` invoked ${invoked - created} ms, returned +${returned - created} ms; that ping sent at +${sentAt - created} ms), ${report.attempts} pings`,
      );
      assert.ok(afterStart <= MOVE_BUDGET_MS, `first reply ${afterStart} ms after the new start (budget ${MOVE_BUDGET_MS} ms)`);

      const newMac = web.mac;
      assert.notEqual(newMac, webMac, 'the new container has a new MAC');
      assert.equal(await neighbourMac(cli, client, webIp), newMac, "the client's ARP cache now holds the new MAC");
      webMac = newMac;
    }
    t.diagnostic(measured.join('\n'));
  });
});
