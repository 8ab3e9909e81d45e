/**
 * The mesh end to end, through the CLI, in network namespaces: three "hosts" on an underlay
 * bridge, a router per host started with `loom launch`, observed with `loom report`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipReason, withLab } from '../helpers/lab.js';
import { establishedTo, pollUntil, routeTo, type LoomReport } from '../../src/demo/index.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { type Lab, type LabHost, isAlive, pidExists } from '../../src/lab/index.js';

const skip = labSkipReason() ?? false;
const CONVERGE_MS = 45_000;
const MESH_PORT = 6783;

async function reports(cli: LoomCli, hosts: readonly LabHost[]): Promise<LoomReport[]> {
  return Promise.all(hosts.map((h) => cli.report(h)));
}

/** Waits until `ok` holds for the reports of all hosts; returns them. */
function waitForReports(cli: LoomCli, lab: Lab, what: string, ok: (r: LoomReport[]) => boolean): Promise<LoomReport[]> {
  return pollUntil(
    async () => {
      const r = await reports(cli, lab.hosts);
      return ok(r) ? r : undefined;
    },
    { what, timeoutMs: CONVERGE_MS, intervalMs: 300 },
  );
}

test('three routers form a full mesh by discovery, route around a blocked link, and survive a router crash', { skip, timeout: 180_000 }, async (t) => {
  await withLab(t, { hosts: 3, subnet: '192.168.91.0/24' }, async (lab, cli) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const r1 = await cli.launch(h1);
    const r2 = await cli.launch(h2, { peers: [h1.address] });
    await cli.launch(h3, { peers: [h2.address] });
    const name = { h1: r1.name, h2: r2.name, h3: (await cli.report(h3)).router.name };
    assert.equal(new Set(Object.values(name)).size, 3, 'each router has its own peer name');

    // h3 was only told about h2: a direct connection to h1 comes from discovery.
    await waitForReports(cli, lab, '3 peers everywhere and h3 connected to h1', (r) => r.every((x) => x.router.peers.length === 3) && establishedTo(r[2]!, name.h1) !== undefined);

    // Cut h1 <-> h3 on the mesh port, then restart h3 so its connection to h1 really goes away
    // (stopping first lets the goodbye through; the new h3 can only reach h1 through h2).
    const cut = await lab.blockTcp(h1, h3, MESH_PORT);
    await cli.stop(h3);
    await cli.launch(h3, { peers: [h2.address] });
    const routed = await waitForReports(cli, lab, 'h1 and h3 routed via h2', (r) => {
      const [a, , c] = r as [LoomReport, LoomReport, LoomReport];
      return r.every((x) => x.router.peers.length === 3) && routeTo(a, name.h3)?.via === name.h2 && routeTo(c, name.h1)?.via === name.h2;
    });
    assert.equal(routeTo(routed[0]!, name.h3)?.hops, 2);
    assert.equal(routeTo(routed[2]!, name.h1)?.hops, 2);
    assert.equal(establishedTo(routed[2]!, name.h1), undefined, 'the blocked link carries no connection');
    assert.equal(establishedTo(routed[0]!, name.h3), undefined, 'the blocked link carries no connection');

    // Crash h2's router (SIGKILL: no goodbye) and start it again on the same state dir.
    const pid1 = cli.pid(h1);
    const pid3 = cli.pid(h3);
    const pid2 = cli.pid(h2);
    assert.ok(pid1 && pid2 && pid3);
    process.kill(pid2, 'SIGKILL');
    // Wait until PID 1 has reaped it too: `loom launch` treats a zombie's pid file as a live router.
    await pollUntil(async () => (pidExists(pid2) ? undefined : true), { what: 'h2 router to be gone', timeoutMs: 10_000, intervalMs: 50 });
    const again = await cli.launch(h2, { peers: [h1.address] });
    assert.notEqual(again.pid, pid2);
    assert.equal(again.name, name.h2, 'the state dir keeps the peer name');
    const healed = await waitForReports(cli, lab, 'everyone reconnected to the new h2', (r) => {
      const [a, b, c] = r as [LoomReport, LoomReport, LoomReport];
      return (
        r.every((x) => x.router.peers.length === 3) &&
        establishedTo(a, name.h2) !== undefined &&
        establishedTo(c, name.h2) !== undefined &&
        establishedTo(b, name.h1) !== undefined &&
        establishedTo(b, name.h3) !== undefined &&
        routeTo(a, name.h3)?.via === name.h2
      );
    });
    assert.equal(routeTo(healed[2]!, name.h1)?.via, name.h2);
    assert.equal(cli.pid(h1), pid1, 'h1 kept its router');
    assert.equal(cli.pid(h3), pid3, 'h3 kept its router');
    assert.ok(isAlive(pid1) && isAlive(pid3));

    // Lifting the block lets discovery restore the direct link.
    await lab.unblock(cut);
    await waitForReports(cli, lab, 'h1-h3 direct again after unblock', (r) => establishedTo(r[0]!, name.h3) !== undefined && routeTo(r[0]!, name.h3)?.hops === 1);
  });
});

test('a wrong password is refused and shown; garbage on the mesh port does not hurt the router', { skip, timeout: 120_000 }, async (t) => {
  await withLab(t, { hosts: 3, subnet: '192.168.92.0/24' }, async (lab, cli) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const r1 = await cli.launch(h1, { password: 'correct horse' });
    await cli.launch(h2, { password: 'correct horse', peers: [h1.address] });
    await cli.launch(h3, { password: 'wrong staple', peers: [h1.address] });

    const refused = await pollUntil(
      async () => {
        const r3 = await cli.report(h3);
        const c = r3.router.connections.find((x) => x.address.startsWith(`${h1.address}:`) && x.errorCode !== undefined);
        return c?.errorCode === 'ERR_AUTH_FAILED' ? { r3, c } : undefined;
      },
      { what: 'h3 to report ERR_AUTH_FAILED for h1', timeoutMs: CONVERGE_MS, intervalMs: 300 },
    );
    assert.notEqual(refused.c.state, 'established');
    assert.equal(refused.r3.router.peers.length, 1, 'h3 learned nothing through a refused connection');
    const shown = await cli.status(h3, 'connections');
    assert.match(shown, new RegExp(`${h1.address.replaceAll('.', '\\.')}:${MESH_PORT}`));
    assert.match(shown, /ERR_AUTH_FAILED/);

    const r2 = await pollUntil(async () => {
      const r = await cli.report(h2);
      return establishedTo(r, r1.name) ? r : undefined;
    }, { what: 'h2 connected to h1 with the right password', timeoutMs: CONVERGE_MS });
    const h1Pid = cli.pid(h1)!;

    // Garbage from h3: random bytes, a plausible-looking header with a huge length, an HTTP
    // request, and a connection that sends nothing and hangs up.
    const garbage = `
      const net = require('node:net');
      const { randomBytes } = require('node:crypto');
      const payloads = [randomBytes(65536), Buffer.from('ffffffff00000000', 'hex'), Buffer.from('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'), Buffer.alloc(0)];
      let left = payloads.length;
      for (const p of payloads) {
        const s = net.connect(${MESH_PORT}, '${h1.address}', () => { s.end(p); });
        s.on('data', () => {});
        s.on('error', () => {});
        s.on('close', () => { if (--left === 0) process.exit(0); });
        s.setTimeout(5000, () => s.destroy());
      }
      setTimeout(() => process.exit(0), 8000);
    `;
    await lab.exec(h3, process.execPath, ['-e', garbage], { timeoutMs: 15_000 });

    assert.ok(isAlive(h1Pid), 'h1 router still running');
    const after = await cli.report(h1);
    assert.equal(cli.pid(h1), h1Pid);
    assert.ok(establishedTo(after, r2.router.name), 'h1 kept its connection to h2');
    assert.equal(after.router.peers.length, 2, 'garbage did not add peers');
    // Still accepting: h2 reconnects after a restart of its own router.
    await cli.stop(h2);
    await cli.launch(h2, { password: 'correct horse', peers: [h1.address] });
    await pollUntil(async () => (establishedTo(await cli.report(h1), r2.router.name) ? true : undefined), {
      what: 'h1 to accept h2 again after the garbage',
      timeoutMs: CONVERGE_MS,
    });
  });
});
