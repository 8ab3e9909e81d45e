import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, EXIT_ERROR, EXIT_OK, EXIT_USAGE } from '../../../src/cli/run.js';
import { ApiServer } from '../../../src/api/server.js';
import { registerRouterRoutes } from '../../../src/api/router-routes.js';
import { silentLogger } from '../../../src/core/logger.js';
import { FakeRouter } from '../api/fake-router.js';
import { captureCli } from '../../helpers/cli-context.js';
import { testApiSocket } from '../../helpers/api-socket.js';

const capture = captureCli;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('loom commands against a daemon API', () => {
  const router = new FakeRouter();
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
  let stops = 0;
  let addr = '';
  let socket = '';
  before(async () => {
    registerRouterRoutes(server, router, { onStop: () => void server.close().then(() => stops++), defaultMetrics: false });
    const listening = await server.listen();
    addr = `127.0.0.1:${listening.port}`;
    socket = listening.socket!;
  });
  after(() => server.close());

  test('status prints the summary (address from --http-addr or LOOM_HTTP_ADDR)', async () => {
    const a = capture();
    assert.equal(await runCli(['status', '--http-addr', addr], a), EXIT_OK);
    assert.match(a.stdout, /^ {11}Name: 8a:3f:00:12:9c:01\(host1\)$/m);
    assert.match(a.stdout, /^ {8}Version: loom 0\.1\.0 \(protocol 1\.\.1\)$/m);
    const b = capture({ LOOM_HTTP_ADDR: addr });
    assert.equal(await runCli(['status'], b), EXIT_OK);
    assert.equal(b.stdout, a.stdout);
  });

  test('status views; an unknown view is ERR_INVALID_ARGUMENT, exit 1', async () => {
    const c = capture({ LOOM_HTTP_ADDR: addr });
    assert.equal(await runCli(['status', 'connections'], c), EXIT_OK);
    assert.match(c.stdout, /^->  192\.168\.1\.2:6783 +established  encrypted  8a:3f:00:12:9c:02\(host2\)$/m);
    const p = capture({ LOOM_HTTP_ADDR: addr });
    assert.equal(await runCli(['status', 'peers'], p), EXIT_OK);
    assert.match(p.stdout, /^8a:3f:00:12:9c:02\(host2\)$/m);
    const t = capture({ LOOM_HTTP_ADDR: addr });
    assert.equal(await runCli(['status', 'targets'], t), EXIT_OK);
    assert.equal(t.stdout, router.targets.join('\n') + '\n');
    const bad = capture({ LOOM_HTTP_ADDR: addr });
    assert.equal(await runCli(['status', 'bogus'], bad), EXIT_ERROR);
    assert.match(bad.stderr, /^loom: ERR_INVALID_ARGUMENT: unknown status view "bogus"/);
  });

  test('report prints the JSON report', async () => {
    const c = capture({ LOOM_HTTP_ADDR: addr });
    assert.equal(await runCli(['report'], c), EXIT_OK);
    const report = JSON.parse(c.stdout);
    assert.equal(report.router.name, '8a:3f:00:12:9c:01');
    assert.equal(report.router.nickname, 'host1');
    assert.equal(report.router.peers[1].connections.length, 2);
    assert.equal(report.router.connections[0].state, 'established');
  });

  test('a change through the read-only TCP API is refused: ERR_FORBIDDEN naming the local socket, exit 1', async () => {
    const targets = [...router.targets];
    const c = capture({ LOOM_HTTP_ADDR: addr });
    assert.equal(await runCli(['connect', '10.0.0.7'], c), EXIT_ERROR);
    assert.match(c.stderr, /^loom: ERR_FORBIDDEN: .*local socket/);
    assert.deepEqual(router.targets, targets);
    const flag = capture({ LOOM_API_SOCKET: socket });
    assert.equal(await runCli(['forget', '10.0.0.7', '--http-addr', addr], flag), EXIT_ERROR, 'a flag wins over the environment');
    assert.match(flag.stderr, /^loom: ERR_FORBIDDEN: /);
  });

  test('connect, connect --replace and forget change the targets; bad peers never reach the daemon', async () => {
    const env = { LOOM_API_SOCKET: socket };
    assert.equal(await runCli(['connect', '10.0.0.7', 'host8:7000'], capture(env)), EXIT_OK);
    assert.ok(router.targets.includes('10.0.0.7:6783') && router.targets.includes('host8:7000'));
    assert.equal(await runCli(['connect', '--replace', '10.0.0.9'], capture(env)), EXIT_OK);
    assert.deepEqual(router.targets, ['10.0.0.9:6783']);
    assert.equal(await runCli(['forget', '10.0.0.9'], capture(env)), EXIT_OK);
    assert.deepEqual(router.targets, []);
    const calls = router.calls.length;
    const bad = capture(env);
    assert.equal(await runCli(['connect', '10.0.0.1:0'], bad), EXIT_ERROR);
    assert.match(bad.stderr, /^loom: ERR_INVALID_ARGUMENT: /);
    assert.equal(router.calls.length, calls);
  });

  test('stop asks the daemon to stop and returns once its API is gone', async () => {
    const c = capture();
    assert.equal(await runCli(['stop', '--api-socket', socket], c), EXIT_OK);
    assert.equal(stops, 1);
  });
});

test('no daemon: ERR_UNAVAILABLE with the hint, exit 1, no stack trace', async () => {
  const c = capture({ LOOM_HTTP_ADDR: `127.0.0.1:${await freePort()}` });
  assert.equal(await runCli(['status'], c), EXIT_ERROR);
  assert.match(c.stderr, /^loom: ERR_UNAVAILABLE: .*is the router running\? \(loom launch\)\n$/);
  assert.doesNotMatch(c.stderr, /\n\s+at /);
});

test('usage errors exit 2; --help and --version exit 0', async () => {
  const unknown = capture();
  assert.equal(await runCli(['frobnicate'], unknown), EXIT_USAGE);
  assert.match(unknown.stderr, /unknown command/);
  assert.equal(await runCli(['connect'], capture()), EXIT_USAGE);
  assert.equal(await runCli(['status', '--bogus'], capture()), EXIT_USAGE);
  const help = capture();
  assert.equal(await runCli(['--help'], help), EXIT_OK);
  for (const cmd of ['launch', 'status', 'report', 'connect', 'forget', 'stop', 'demo']) assert.match(help.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  const version = capture();
  assert.equal(await runCli(['--version'], version), EXIT_OK);
  assert.equal(version.stdout, 'loom 0.1.0\n');
});

test('launch validates every option before starting anything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-cli-'));
  try {
    for (const args of [['--port', '0'], ['--port', 'x'], ['--conn-limit', '0'], ['--name', 'bob'], ['--http-addr', 'nohost'], ['--nickname', 'a b'], ['host:99999']]) {
      const c = capture();
      assert.equal(await runCli(['launch', '--state-dir', join(dir, 'state'), ...args], c), EXIT_ERROR, args.join(' '));
      assert.match(c.stderr, /^loom: ERR_INVALID_ARGUMENT: /, args.join(' '));
    }
    assert.ok(!existsSync(join(dir, 'state')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
