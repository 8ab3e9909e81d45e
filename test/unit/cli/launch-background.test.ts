import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, EXIT_ERROR, EXIT_OK } from '../../../src/cli/run.js';
import type { CliContext } from '../../../src/cli/context.js';
import { isAlive } from '../../../src/daemon/state-dir.js';
import { isPeerName } from '../../../src/core/ids.js';
import { testApiSocket } from '../../helpers/api-socket.js';

// Runs from test/ under tsx and from dist/test/ after tsc: re-execute the sibling of this file.
const ENTRY = fileURLToPath(new URL(`./fake-daemon-entry${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
const NODE = [process.execPath, ...process.execArgv.filter((a) => !a.startsWith('--test'))];

function capture(): CliContext & { stdout: string; stderr: string } {
  const ctx = {
    stdout: '',
    stderr: '',
    out: (t: string) => void (ctx.stdout += t),
    err: (t: string) => void (ctx.stderr += t),
    env: { ...process.env, LOOM_TEST_FAKE_DAEMON: '1' },
    node: NODE,
    entry: ENTRY,
    loadRouterFactory: async () => {
      throw new Error('the parent never builds a router');
    },
  };
  return ctx;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isAlive(pid);
}

test('launch in the background: ready and named, pid file, refuses a second launch, stop cleans up', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-bg-'));
  const httpAddr = `127.0.0.1:${await freePort()}`;
  const apiSocket = testApiSocket();
  const args = ['--state-dir', dir, '--http-addr', httpAddr, '--api-socket', apiSocket, '--dataplane', 'off'];
  let pid = 0;
  const killOnExit = (): void => {
    if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
  };
  process.on('exit', killOnExit);
  try {
    const started = Date.now();
    const first = capture();
    assert.equal(await runCli(['launch', ...args, '10.255.0.1'], first), EXIT_OK, first.stderr);
    const launchMs = Date.now() - started;
    const name = first.stdout.trim();
    assert.ok(isPeerName(name), first.stdout);
    assert.equal(readFileSync(join(dir, 'peer-name'), 'utf8').trim(), name);
    pid = Number(readFileSync(join(dir, 'loom.pid'), 'utf8').trim());
    assert.ok(pid > 0 && pid !== process.pid && isAlive(pid));
    assert.match(readFileSync(join(dir, 'loom.log'), 'utf8'), /"msg":"router ready"/);

    const second = capture();
    assert.equal(await runCli(['launch', ...args], second), EXIT_ERROR);
    assert.match(second.stderr, /^loom: ERR_CONFLICT: a router is already running from .* \(pid \d+\)/);

    const status = capture();
    assert.equal(await runCli(['status', 'targets', '--http-addr', httpAddr], status), EXIT_OK);
    assert.equal(status.stdout, '10.255.0.1:6783\n');

    // SIGTERM is the other way to stop it (systemd, a DaemonSet): orderly, pid file removed.
    process.kill(pid, 'SIGTERM');
    assert.ok(await waitGone(pid, 10_000), 'daemon exits on SIGTERM');
    assert.ok(!existsSync(join(dir, 'loom.pid')));
    assert.match(readFileSync(join(dir, 'loom.log'), 'utf8'), /"signal":"SIGTERM"/);

    // Launching again keeps the peer name; `loom stop` stops it.
    const again = capture();
    assert.equal(await runCli(['launch', ...args], again), EXIT_OK, again.stderr);
    assert.equal(again.stdout.trim(), name);
    pid = Number(readFileSync(join(dir, 'loom.pid'), 'utf8').trim());
    assert.equal(await runCli(['stop', '--api-socket', apiSocket], capture()), EXIT_OK);
    assert.ok(await waitGone(pid, 10_000), 'daemon exits after loom stop');
    assert.ok(!existsSync(join(dir, 'loom.pid')));
    t.diagnostic(`background launch took ${launchMs} ms`);
  } finally {
    killOnExit();
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('launch in the background: a child that fails reports its own error', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-bg-'));
  // Something that accepts TCP but is not a Loom API holds the address: the child cannot bind it.
  const blocker = createServer((s) => s.destroy());
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  try {
    const c = capture();
    const code = await runCli(['launch', '--dataplane', 'off', '--state-dir', dir, '--api-socket', testApiSocket(), '--http-addr', `127.0.0.1:${(blocker.address() as { port: number }).port}`], c);
    assert.equal(code, EXIT_ERROR);
    assert.match(c.stderr, /^loom: ERR_UNAVAILABLE: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE\n$/);
    assert.ok(!existsSync(join(dir, 'loom.pid')));
  } finally {
    await new Promise((r) => blocker.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});
