/**
 * Broadcast and multicast on the Loom segment: three lab hosts, two containers each (`bin/loom
 * run`), one sender. Proves that a UDP broadcast to the container subnet's broadcast address and a
 * UDP multicast to a group reach every other container exactly once: on the sender's own host
 * (the bridge) and on the others (kernel VXLAN head-end replication: one FDB flood entry per peer,
 * and a frame that came in over VXLAN is never sent back out over it). Duplicates and gaps are
 * counted per datagram. Needs root, nft, unshare, nsenter, ping (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../../src/demo/poll.js';
import type { LabHost } from '../../src/lab/index.js';
import { containerLabSkip, mcastAgentArgv, withRouters, type Box } from '../helpers/mcast-lab.js';
import type { ReceiveReport } from '../helpers/mcast-agent.js';

const SUBNET = { base: '10.48.0', prefix: 24, broadcast: '10.48.0.255' };
const GROUP = '239.1.2.3';
const PORT = 7400;
const COUNT = 20;
const RECEIVE_DEADLINE_MS = 40_000;

test('broadcast and multicast reach every container of the segment exactly once', { skip: containerLabSkip, timeout: 300_000 }, async (t) => {
  await withRouters(t, { hosts: 3, subnet: '192.168.97.0/24' }, async (lab, cli, containers) => {
    const boxes: Box[] = [];
    let n = 0;
    for (const host of lab.hosts) {
      for (const s of ['a', 'b']) {
        const box = { host, name: `${host.name}${s}`, ip: `${SUBNET.base}.${++n}` };
        await containers.run(box, SUBNET.prefix, ['sleep', '3600']);
        boxes.push(box);
      }
    }
    await containers.waitProgrammed(lab, () => 4);

    const [sender, ...receivers] = boxes as [Box, ...Box[]];
    const readyFile = (b: Box) => join(lab.workDir, `${b.name}.mcast-ready`);
    for (const b of receivers) rmSync(readyFile(b), { force: true });
    const receiving = receivers.map((b) =>
      cli.run(b.host, ['exec', b.name, '--', process.execPath, ...mcastAgentArgv, 'receive', String(PORT), GROUP, b.ip, String(COUNT), readyFile(b), String(RECEIVE_DEADLINE_MS)], {
        timeoutMs: RECEIVE_DEADLINE_MS + 20_000,
      }),
    );
    // Receivers that fail to start would otherwise leave the wait below to time out silently.
    const early = Promise.race(receiving.map((p, i) => p.then((r) => `${receivers[i]!.name} exited early: ${r.stdout}${r.stderr}`)));
    await Promise.race([
      pollUntil(async () => (receivers.every((b) => existsSync(readyFile(b))) ? true : undefined), { what: 'every receiver listening', timeoutMs: 20_000, intervalMs: 50 }),
      early.then((why) => Promise.reject(new Error(why))),
    ]);

    const started = Date.now();
    const sent = await cli.run(sender.host, ['exec', sender.name, '--', process.execPath, ...mcastAgentArgv, 'send', String(PORT), SUBNET.broadcast, GROUP, sender.ip, String(COUNT)]);
    assert.deepEqual(JSON.parse(sent.stdout), { sent: 2 * COUNT });

    const reports = (await Promise.all(receiving)).map((r) => JSON.parse(r.stdout) as ReceiveReport);
    const elapsed = Date.now() - started;
    const problems: string[] = [];
    receivers.forEach((b, i) => {
      const r = reports[i]!;
      for (const kind of ['broadcast', 'multicast'] as const) {
        const gaps = r[kind].flatMap((c, seq) => (c === 0 ? [seq] : []));
        const dups = r[kind].flatMap((c, seq) => (c > 1 ? [`${seq}x${c}`] : []));
        if (gaps.length > 0) problems.push(`${b.name} (${hostOf(b.host, sender)}) ${kind} missing ${gaps.join(',')}`);
        if (dups.length > 0) problems.push(`${b.name} (${hostOf(b.host, sender)}) ${kind} duplicates ${dups.join(',')}`);
      }
      if (r.malformed > 0) problems.push(`${b.name} got ${r.malformed} foreign datagrams`);
    });
    t.diagnostic(`${receivers.length} receivers x ${2 * COUNT} datagrams, all reports in ${elapsed} ms`);
    assert.deepEqual(problems, []);
    assert.equal(reports.filter((r) => !r.timedOut).length, receivers.length, 'every receiver finished with every datagram');
  });
});

function hostOf(h: LabHost, sender: Box): string {
  return h === sender.host ? "sender's host" : h.name;
}
