/**
 * The native `loom` front (native/loom.c, what bin/loom links to) and its router half
 * (POST /cli/exec: src/daemon/cli-exec.ts running src/cli/in-process.ts). A test API server on
 * its own local socket stands in for the router: the route with the real in-process runner, and
 * a containers list and remove that answer like the router's. Every forwarded command line must
 * print byte for byte what the Node CLI prints for it (LOOM_CLI_FORWARD=0 runs the Node CLI), and
 * every path that is not forwarded (help, another API, another build, no router) must end in the
 * Node CLI, which never touches the route. An answer cut short is never run again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiServer } from '../../../src/api/server.js';
import { BUILD_ID, UNBUILT } from '../../../src/core/build-id.js';
import { LoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { cliExecAnswer, registerCliExec, CLI_EXEC_PATH } from '../../../src/daemon/cli-exec.js';
import { forwardable, runCliInProcess } from '../../../src/cli/in-process.js';
import { runCli } from '../../../src/cli/run.js';
import { testApiSocket } from '../../helpers/api-socket.js';

const FRONT = fileURLToPath(new URL('../../../bin/loom', import.meta.url));
const frontSkip = existsSync(FRONT) ? false : 'dist/bin/loom is not built (npm run build; needs gcc)';

const LIST = {
  containers: [{ id: 'c0ffee000001', name: 'web', mac: 'aa:bb:cc:00:00:01', cidrs: ['10.32.0.5/12'], pid: 4242, alive: true, hostVeth: 'vlmc0ffee000001', bridge: 'loom', createdAt: '2026-12-07T00:00:00.000Z', unsharePid: 4241, pidStartTime: 1 }],
  attachments: [],
};

interface Router {
  socket: string;
  /** Command lines the route ran. */
  ran: string[][];
}

/** A stand-in router on its own socket: /cli/exec with the real in-process runner (`build`: the route's own build). */
async function withRouter(build: string, run: (router: Router) => Promise<void>): Promise<void> {
  const socket = testApiSocket();
  const server = new ApiServer({ logger: silentLogger }, { host: '127.0.0.1', port: 0, socket });
  const ran: string[][] = [];
  registerCliExec(
    server,
    (argv, env) => {
      ran.push([...argv]);
      return runCliInProcess(runCli, argv, env, { node: [process.execPath], entry: FRONT });
    },
    build,
  );
  server.route('GET', '/containers', () => ({ json: LIST }));
  server.route('DELETE', '/containers/:id', (req) => {
    throw new LoomError('ERR_NOT_FOUND', `no container ${JSON.stringify(req.params['id'])}`);
  });
  await server.listen();
  try {
    await run({ socket, ran });
  } finally {
    await server.close();
  }
}

function loom(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const path = `${dirname(process.execPath)}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
    const child = spawn(FRONT, args, { env: { PATH: path, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('forwardable: run, rm and ps without help or another API before `--`; the same rule as native/loom.c', () => {
  assert.equal(forwardable(['run', '--name', 'a', '--', 'sh', '-c', 'x --help'], {}), true, 'words after -- are the container command');
  assert.equal(forwardable(['ps'], {}), true);
  assert.equal(forwardable(['rm', 'a'], { LOOM_API_SOCKET: 'x' }), true);
  assert.equal(forwardable(['status'], {}), false);
  assert.equal(forwardable(['launch'], {}), false);
  assert.equal(forwardable([], {}), false);
  assert.equal(forwardable(['run', '--help'], {}), false);
  assert.equal(forwardable(['ps', '-h'], {}), false);
  assert.equal(forwardable(['ps', '--api-socket=other'], {}), false);
  assert.equal(forwardable(['ps', '--http-addr', '127.0.0.1:6784'], {}), false);
  assert.equal(forwardable(['ps'], { LOOM_HTTP_ADDR: '127.0.0.1:6784' }), false);
  assert.equal(forwardable(['ps'], { LOOM_CLI_FORWARD: '0' }), false);
});

test('runCliInProcess captures what the CLI prints and its exit code; null for a command it does not run', async () => {
  const nobody = testApiSocket();
  const usage = await runCliInProcess(runCli, ['run'], { LOOM_API_SOCKET: nobody }, { node: [], entry: '' });
  assert.equal(usage?.code, 2);
  assert.match(usage?.stderr ?? '', /required option '--name <name>'/);
  const down = await runCliInProcess(runCli, ['ps'], { LOOM_API_SOCKET: nobody }, { node: [], entry: '' });
  assert.deepEqual([down?.code, down?.stdout], [1, '']);
  assert.match(down?.stderr ?? '', /^loom: ERR_UNAVAILABLE: cannot reach the router API at @/);
  assert.equal(await runCliInProcess(runCli, ['launch', '--foreground'], {}, { node: [], entry: '' }), null);
});

test('the answer text: exit code and byte lengths (not characters) of both outputs, or fallback', () => {
  assert.equal(cliExecAnswer({ code: 1, stdout: 'é\n', stderr: 'x' }), 'exit 1 3 1\né\nx');
  assert.equal(cliExecAnswer({ fallback: 'build' }), 'fallback build\n');
});

test('POST /cli/exec: another build or an unbuilt router falls back; a bad body is a 400 and runs nothing', async () => {
  for (const [own, sent, want] of [
    ['b1', 'b2', 'fallback build\n'],
    [UNBUILT, UNBUILT, 'fallback build\n'],
    ['b1', 'b1', 'fallback not-forwarded\n'],
  ] as const) {
    await withRouter(own, async ({ socket, ran }) => {
      const r = await post(socket, { build: sent, argv: ['status'], env: {} });
      assert.deepEqual([r.status, r.text], [200, want], `${own} / ${sent}`);
      assert.deepEqual(ran, own === sent && own !== UNBUILT ? [['status']] : []);
    });
  }
  await withRouter('b1', async ({ socket, ran }) => {
    for (const body of [{ build: 'b1', argv: [], env: {} }, { build: 'b1', argv: ['ps'], env: { PATH: '/bin' } }, { build: 'b1', argv: ['ps'] }, { build: 'b1', argv: [7], env: {} }, 'not json'])
      assert.equal((await post(socket, body)).status, 400, JSON.stringify(body));
    assert.deepEqual(ran, []);
  });
});

function post(socket: string, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    const conn = connect({ path: '\0' + socket });
    let answer = '';
    conn.setEncoding('utf8').on('data', (d: string) => (answer += d));
    conn.on('error', reject);
    conn.on('end', () => {
      const [head = '', ...rest] = answer.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), text: rest.join('\r\n\r\n') });
    });
    conn.end(`POST ${CLI_EXEC_PATH} HTTP/1.1\r\nHost: loom\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`);
  });
}

test('the native front prints byte for byte what the Node CLI prints, through the router, for every forwarded command line', { skip: frontSkip }, async () => {
  await withRouter(BUILD_ID, async ({ socket, ran }) => {
    const lines = [['ps'], ['rm', 'nosuch'], ['run'], ['run', '--name', 'x'], ['ps', '--bogus'], ['rm']];
    for (const args of lines) {
      const forwarded = await loom(args, { LOOM_API_SOCKET: socket });
      const node = await loom(args, { LOOM_API_SOCKET: socket, LOOM_CLI_FORWARD: '0' });
      assert.deepEqual(forwarded, node, args.join(' '));
    }
    assert.deepEqual(ran, lines, 'each forwarded line ran in the router once, and the Node runs did not use the route');
    const ps = await loom(['ps'], { LOOM_API_SOCKET: socket });
    assert.deepEqual([ps.code, ps.stdout.split('\n')[1]?.split(/\s+/).slice(0, 2)], [0, ['c0ffee000001', 'web']], 'the listing came through');
  });
});

test('the native front runs the Node CLI for help, another API, another build and no router; never again after a cut answer', { skip: frontSkip }, async () => {
  await withRouter(BUILD_ID, async ({ socket, ran }) => {
    const help = await loom(['run', '--help'], { LOOM_API_SOCKET: socket });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: loom run/);
    const viaFlag = await loom(['ps', '--api-socket', socket], {});
    assert.equal(viaFlag.code, 0);
    assert.deepEqual(ran, [], 'help and --api-socket are the Node CLI\'s');
  });
  await withRouter('another-build', async ({ socket, ran }) => {
    const ps = await loom(['ps'], { LOOM_API_SOCKET: socket });
    assert.equal(ps.code, 0);
    assert.match(ps.stdout, /c0ffee000001/);
    assert.deepEqual(ran, [], 'a router of another build does not run it');
  });
  const down = await loom(['ps'], { LOOM_API_SOCKET: testApiSocket() });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^loom: ERR_UNAVAILABLE: cannot reach the router API at @.*loom launch/s, 'the Node CLI\'s own error');

  // A router that reads the request and hangs up without an answer: the command may have run, so it is not run again.
  const socket = testApiSocket();
  let requests = 0;
  const cut = createServer((c) => {
    requests++;
    // Hangs up once the whole request is in (before that, the front rightly takes it as not sent).
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => {
      got += d;
      const [head = '', body] = got.split('\r\n\r\n');
      if (body !== undefined && Buffer.byteLength(body) >= Number(/content-length: (\d+)/i.exec(head)?.[1])) c.destroy();
    });
  });
  await new Promise<void>((resolve) => cut.listen({ path: '\0' + socket }, resolve));
  try {
    const r = await loom(['run', '--name', 'a', '--', 'true'], { LOOM_API_SOCKET: socket });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^loom: ERR_PROTOCOL: the router's answer to this command was cut short/);
    assert.equal(requests, 1, 'the Node CLI did not send it again');
  } finally {
    await new Promise<void>((resolve) => cut.close(() => resolve()));
  }
});
