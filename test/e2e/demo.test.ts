/**
 * `loom demo` end to end. (1) runDemo() in this process, its narration collected: the mesh
 * converges, every cross-host ping passes, with UDP cut between h1 and h3 h1 relays through h2,
 * service1 finds service2 by name at its new address after the move, and afterwards nothing of
 * the demo is left (namespaces, /etc/netns, scratch dir, owner record, containers, routers).
 * (2) `bin/loom demo --keep` as a user runs it: the lab and its containers outlive the command,
 * and the demo's clean-up removes all of it, containers included.
 * Needs root, nft, unshare, nsenter, ping, dig (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { labSkipFor } from '../helpers/lab.js';
import { cleanDemo, repoRoot, runDemo, type DemoResult } from '../../src/demo/index.js';
import { markedProcesses } from '../../src/demo/containers.js';
import { cleanupStale, labWorkDir, ownerFile, parseNetnsList, isAlive } from '../../src/lab/index.js';
import { systemRunner } from '../../src/os/runner.js';

const skip = labSkipFor(['ping', 'unshare', 'nsenter', 'dig', 'getent']);
const PEER_RE = '[0-9a-f]{2}(?::[0-9a-f]{2}){5}';
/** An address as a literal inside a RegExp. */
const esc = (address: string): string => address.replace(/\./g, '\\.');

async function namespacesOf(prefix: string): Promise<string[]> {
  return parseNetnsList((await systemRunner.run('ip', ['netns', 'list'])).stdout).filter((ns) => ns.startsWith(`${prefix}-`));
}

async function assertNothingLeft(prefix: string, pids: readonly number[]): Promise<void> {
  assert.deepEqual(await namespacesOf(prefix), [], 'no namespace of the demo is left');
  assert.deepEqual(pids.filter(isAlive), [], 'no container or router of the demo still runs');
  assert.deepEqual(markedProcesses(prefix), [], 'no process carries the lab marker');
  assert.equal(existsSync(labWorkDir(prefix)), false, 'the scratch dir is gone');
  assert.equal(existsSync(ownerFile(prefix)), false, 'the owner record is gone');
  for (const role of ['h1', 'h2', 'h3', 'h4', 'ul']) assert.equal(existsSync(`/etc/netns/${prefix}-${role}`), false, `/etc/netns/${prefix}-${role} is gone`);
}

test('loom demo tells the whole story and leaves nothing behind', { skip, timeout: 240_000 }, async (t) => {
  await cleanupStale();
  const lines: string[] = [];
  let result: DemoResult | undefined;
  const started = Date.now();
  try {
    result = await runDemo({ log: (line) => lines.push(line) });
  } finally {
    if (!result) t.diagnostic(lines.join('\n'));
  }
  const seconds = (Date.now() - started) / 1000;
  t.diagnostic(`the demo took ${seconds.toFixed(1)} s`);
  const log = lines.join('\n');

  assert.equal(result.converged, true);
  assert.match(log, /converged: every router knows every peer and is connected to both others/);
  assert.match(log, /h1: 3 peers, 2 established connections/);

  assert.match(log, /h1\$ dig \+short @10\.\S+ www\.example\.test.*\n\s+198\.51\.100\.7/, "h1's Loom DNS forwards an outside name to the demo's upstream");

  assert.match(log, /5 containers, 5 distinct addresses, none given by hand/);
  assert.match(log, /bootstrap consensus: ready/);
  assert.deepEqual(result.pings, { ok: 16, total: 16 });
  assert.match(log, /pings: 16\/16 ok/);
  assert.match(log, new RegExp(`${PEER_RE}\\s+fastdp\\s+unencrypted`), '`loom status connections` shows fastdp');

  assert.ok(result.relay.via, 'a relay path was found');
  assert.equal(result.relay.viaHost, 'h2');
  assert.match(log, new RegExp(`h1 -> h3: sleeve via h2 \\(${result.relay.via}\\)`));
  assert.match(log, new RegExp(`sleeve\\s+unencrypted\\s+mtu=\\d+\\s+.*via ${result.relay.via}`), '`loom status connections` on h1 shows the sleeve via h2');
  assert.deepEqual([result.relay.pingsOk, result.relay.pingsTotal], [5, 5], 'every ping through the relay passes');
  t.diagnostic(`UDP blocked -> sleeve via h2 after ${result.relay.switchMs} ms`);

  const { before, after } = result.service2;
  assert.ok(before && after, `service2 answered before and after the move (${before} -> ${after})`);
  assert.notEqual(after, before, 'service2 has a new address on h3');
  assert.match(log, new RegExp(`service2 moved: ${esc(before)} \\(h2\\) -> ${esc(after)} \\(h3\\)`));
  assert.match(log, new RegExp(`h1\\$ loom dns-lookup service2\\n\\s+${esc(after)}\\n`), '`loom dns-lookup` prints the new address');
  assert.match(log, new RegExp(`h1\\$ loom exec service1 -- getent hosts service2\\n\\s+${esc(after)}\\s+service2\\.loom\\.local`));
  assert.match(log, new RegExp(`${esc(before)} reply \\(x\\d+\\)\\n(.*\\n)*.*${esc(after)} reply \\(x3\\)`), 'the timeline: replies from the old address, later from the new one');
  assert.ok(result.service2.roundsWithoutReply >= 1, 'service1 saw service2 unreachable while it moved');

  assert.equal(result.kept, false);
  assert.ok(result.containerPids.length >= 6, `every container PID was seen (${result.containerPids.join(' ')})`);
  assert.equal(result.routerPids.length, 3);
  await assertNothingLeft(result.prefix, [...result.containerPids, ...result.routerPids]);
  assert.ok(seconds < 120, `the demo takes well under 2 minutes (${seconds.toFixed(1)} s)`);
});

test('loom demo --keep leaves the lab running; the demo clean-up removes it, containers included', { skip, timeout: 240_000 }, async (t) => {
  const bin = join(repoRoot(), 'bin', 'loom');
  let prefix: string | undefined;
  try {
    const kept = await systemRunner.run(bin, ['demo', '--keep'], { timeoutMs: 180_000, allowFailure: true });
    prefix = /namespaces (lm[0-9a-f]{6})-\*\)/.exec(kept.stdout)?.[1];
    assert.equal(kept.code, 0, `loom demo --keep: ${kept.stdout.slice(-2000)}${kept.stderr}`);
    assert.ok(prefix, 'the kept lab is named in the output');
    assert.match(kept.stdout, /demo --clean/, 'the output says how to clean up');
    assert.equal((await namespacesOf(prefix)).length, 5, 'four hosts and the underlay are still there');
    const running = markedProcesses(prefix);
    t.diagnostic(`kept lab ${prefix}: ${running.length} processes`);
    assert.ok(running.length >= 6 + 3, `the routers and the containers still run (${running.length} processes)`);
    const ps = await systemRunner.run(bin, ['ps'], { netns: `${prefix}-h1`, allowFailure: true });
    assert.match(ps.stdout, /service1/, `loom ps in the kept h1 lists service1: ${ps.stdout}${ps.stderr}`);

    const said: string[] = [];
    await cleanDemo({ only: prefix, log: (line) => said.push(line) });
    assert.match(said.join('\n'), new RegExp(`Removed labs ${prefix}`));
    await assertNothingLeft(prefix, running);
  } finally {
    if (prefix) await cleanDemo({ only: prefix, log: () => {} });
  }
});
