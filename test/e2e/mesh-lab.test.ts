/**
 * The test lab itself, in real namespaces: addressing, the nft blocks the mesh tests rely on,
 * resolv.conf, and that teardown leaves nothing behind (also when the owner dies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { labSkipReason } from '../helpers/lab.js';
import { Lab, type LabHost, cleanupStale, ownerFile, parseNetnsList, isAlive } from '../../src/lab/index.js';
import { systemRunner } from '../../src/os/runner.js';
import { pollUntil } from '../../src/demo/poll.js';

const skip = labSkipReason() ?? false;
const PORT = 6783;

const ECHO_SERVER = `
  const net = require('node:net'); const dgram = require('node:dgram');
  net.createServer((s) => { s.on('error', () => {}); s.end('tcp-ok'); }).listen(${PORT});
  const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send('udp-ok', r.port, r.address)); u.bind(${PORT});
`;

/** True if `from` gets an answer from the echo server on `to` within 700 ms. */
async function probe(lab: Lab, from: LabHost, to: LabHost, proto: 'tcp' | 'udp'): Promise<boolean> {
  const client =
    proto === 'tcp'
      ? `const s = require('node:net').connect(${PORT}, '${to.address}'); s.on('data', () => process.exit(0)); s.on('error', () => process.exit(1));`
      : `const u = require('node:dgram').createSocket('udp4'); u.on('message', () => process.exit(0)); u.send('x', ${PORT}, '${to.address}');`;
  const r = await lab.exec(from, process.execPath, ['-e', `${client} setTimeout(() => process.exit(2), 700);`], { allowFailure: true });
  return r.code === 0;
}

async function labNamespaces(prefix: string): Promise<string[]> {
  return parseNetnsList((await systemRunner.run('ip', ['netns', 'list'])).stdout).filter((ns) => ns.startsWith(`${prefix}-`));
}

test('lab hosts are addressed, blocked, partitioned and unblocked as asked, and destroy leaves nothing', { skip, timeout: 60_000 }, async () => {
  const lab = await Lab.create({ hosts: 3, subnet: '192.168.93.0/24' });
  try {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    assert.match(lab.prefix, /^lm[0-9a-f]{6}$/);
    assert.deepEqual((await labNamespaces(lab.prefix)).sort(), lab.namespaces().sort());
    assert.equal(h2.address, '192.168.93.2');
    const addr = await lab.exec(h2, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.match(addr.stdout, /inet 192\.168\.93\.2\/24/);
    const sysctl = await lab.exec(h2, 'sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.disable_ipv6', 'net.ipv4.conf.all.rp_filter']);
    assert.deepEqual(sysctl.stdout.trim().split('\n'), ['1', '1', '0']);

    const server = lab.start(h3, process.execPath, ['-e', ECHO_SERVER]);
    await pollUntil(async () => ((await probe(lab, h1, h3, 'tcp')) ? true : undefined), { what: 'echo server', timeoutMs: 5000, intervalMs: 100 });
    assert.equal(await probe(lab, h1, h3, 'udp'), true);

    const tcpCut = await lab.blockTcp(h1, h3, PORT);
    assert.equal(await probe(lab, h1, h3, 'tcp'), false, 'tcp h1->h3 blocked');
    assert.equal(await probe(lab, h2, h3, 'tcp'), true, 'tcp h2->h3 untouched');
    assert.equal(await probe(lab, h1, h3, 'udp'), true, 'udp h1->h3 untouched');
    await lab.unblock(tcpCut);
    assert.equal(await probe(lab, h1, h3, 'tcp'), true, 'tcp h1->h3 restored');

    const udpCut = await lab.blockUdp(h3, h1);
    assert.equal(await probe(lab, h1, h3, 'udp'), false, 'udp h1->h3 blocked');
    assert.equal(await probe(lab, h1, h3, 'tcp'), true, 'tcp h1->h3 untouched');
    await lab.unblock(udpCut);
    await lab.unblock(udpCut); // idempotent
    assert.equal(await probe(lab, h1, h3, 'udp'), true);

    await lab.partition([h1], [h2, h3]);
    assert.equal(await probe(lab, h1, h3, 'tcp'), false);
    assert.equal(await probe(lab, h3, h1, 'udp'), false);
    assert.equal(await probe(lab, h2, h3, 'tcp'), true, 'inside a group traffic flows');
    await lab.unblock();
    assert.equal(await probe(lab, h1, h3, 'tcp'), true);

    lab.setResolvConf(h2, 'nameserver 192.168.93.53\n');
    assert.equal((await lab.exec(h2, 'cat', ['/etc/resolv.conf'])).stdout, 'nameserver 192.168.93.53\n');
    assert.ok(existsSync(`/etc/netns/${h2.netns}/resolv.conf`));

    // A process the lab did not start directly but that carries its marker (like a daemon
    // forked by `loom launch`) is stopped too.
    const bg = await lab.exec(h1, 'bash', ['-c', 'setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!']);
    const bgPid = Number(bg.stdout.trim());
    assert.ok(isAlive(bgPid));

    await lab.destroy();
    assert.equal(await server.exited, null, 'the server was stopped by a signal');
    assert.equal(isAlive(bgPid), false, 'the marked background process was stopped');
    assert.deepEqual(await labNamespaces(lab.prefix), []);
    assert.equal(existsSync(`/etc/netns/${h2.netns}`), false);
    assert.equal(existsSync(lab.workDir), false);
    assert.equal(existsSync(ownerFile(lab.prefix)), false);
    await lab.destroy(); // idempotent
    await assert.rejects(lab.exec(h1, 'true', []), { code: 'ERR_UNAVAILABLE' });
  } finally {
    await lab.destroy();
  }
});

/** Starts a node process that builds a 2-host lab, prints its prefix, then waits. */
function ownerProcess(then: 'wait' | 'exit'): Promise<{ pid: number; prefix: string; done: Promise<number | null> }> {
  const here = fileURLToPath(import.meta.url);
  const fromTs = here.endsWith('.ts');
  const labModule = new URL(`../../src/lab/index.${fromTs ? 'ts' : 'js'}`, import.meta.url).href;
  const script = `
    const { Lab } = await import(${JSON.stringify(labModule)});
    const lab = await Lab.create({ hosts: 2 });
    lab.start('h1', 'sleep', ['600']);
    process.stdout.write(lab.prefix + '\\n');
    ${then === 'exit' ? 'setTimeout(() => process.exit(0), 100);' : 'setInterval(() => {}, 1000);'}
  `;
  const child = spawn(process.execPath, [...(fromTs ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(lm[0-9a-f]{6})\n/.exec(out);
      if (m) resolve({ pid: child.pid!, prefix: m[1]!, done });
    });
    void done.then((code) => reject(new Error(`owner exited (${code}) before printing its prefix: ${out}`)));
    setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('owner did not print its prefix in 20 s'));
    }, 20_000).unref();
  });
}

test('a lab is torn down when its process exits or is terminated', { skip, timeout: 60_000 }, async () => {
  for (const how of ['exit', 'SIGTERM'] as const) {
    const owner = await ownerProcess(how === 'exit' ? 'exit' : 'wait');
    assert.equal((await labNamespaces(owner.prefix)).length, 3);
    if (how === 'SIGTERM') process.kill(owner.pid, 'SIGTERM');
    const code = await owner.done;
    assert.equal(code, how === 'exit' ? 0 : 128 + 15);
    // The exit path hands deletion to a detached `ip -batch`: allow it a moment.
    await pollUntil(async () => ((await labNamespaces(owner.prefix)).length === 0 ? true : undefined), { what: `${owner.prefix} gone after ${how}`, timeoutMs: 5000, intervalMs: 50 });
    await cleanupStale(new RegExp(`^${owner.prefix}-`));
    assert.equal(existsSync(ownerFile(owner.prefix)), false);
  }
});

test('cleanupStale removes the labs of dead owners only', { skip, timeout: 60_000 }, async () => {
  const stranger = `lm${randomBytes(3).toString('hex')}-h1`;
  const owner = await ownerProcess('wait');
  const alive = await ownerProcess('wait');
  try {
    await systemRunner.run('ip', ['netns', 'add', stranger]);
    process.kill(owner.pid, 'SIGKILL'); // no chance to clean up
    await owner.done;
    assert.equal((await labNamespaces(owner.prefix)).length, 3, 'SIGKILL left the lab behind');

    const result = await cleanupStale();
    assert.ok(result.prefixes.includes(owner.prefix));
    assert.equal(result.killed.length >= 1, true, 'the sleep the dead lab started was stopped');
    assert.ok(result.killed.every((pid) => !isAlive(pid)));
    assert.deepEqual(await labNamespaces(owner.prefix), []);
    assert.equal((await labNamespaces(alive.prefix)).length, 3, 'a live owner keeps its lab');
    assert.deepEqual(await labNamespaces(stranger.slice(0, 8)), [stranger], 'a namespace without an owner record is not ours');
  } finally {
    await systemRunner.run('ip', ['netns', 'del', stranger], { allowFailure: true });
    process.kill(alive.pid, 'SIGTERM');
    await alive.done;
    await pollUntil(async () => ((await labNamespaces(alive.prefix)).length === 0 ? true : undefined), { what: 'live lab gone', timeoutMs: 10_000, intervalMs: 100 });
  }
});
