/**
 * The native shim's router side without root: `POST /cni/exec` (src/cni/exec.ts, routes.ts) on a
 * real ApiServer over a fake CNI service. Proves: an answer through the exec route is byte for
 * byte what the Node plugin prints over the socket (success and every error path), the fallback
 * decisions (delegated IPAM, another router's socket), a bad body is a 400 (never a crash: the
 * server answers the next call), and, when dist/bin/loom-cni is built, the C shim itself: it
 * forwards, falls back to loom-cni-node (another socket; router down -> code 11), and reports a
 * missing loom-cni-node with the spec's error object.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiServer } from '../../../src/api/server.js';
import { silentLogger } from '../../../src/core/logger.js';
import { LoomError } from '../../../src/core/errors.js';
import { execAnswerText, fallbackReason, isOwnApi } from '../../../src/cni/exec.js';
import { runPlugin } from '../../../src/cni/plugin.js';
import { socketTransport } from '../../../src/cni/router-client.js';
import { testApiSocket } from '../../helpers/api-socket.js';
import { registerCniRoutes, type CniService } from '../../../src/cni/routes.js';
import { CNI_ATTACHMENT, CNI_ENV } from '../../helpers/cni-fixtures.js';

const ATTACHMENT = CNI_ATTACHMENT;
const ENV = CNI_ENV;

/** A CNI service whose answers each test sets; `failWith` makes every call throw it. */
function fakeCni(): CniService & { failWith: Error | null; ready: boolean; calls: string[] } {
  const f = {
    failWith: null as Error | null,
    ready: true,
    calls: [] as string[],
    guard(name: string): void {
      f.calls.push(name);
      if (f.failWith !== null) throw f.failWith;
    },
    add: (r: { containerId: string; ifname: string; network: string; netns: string }) => (f.guard('add'), Promise.resolve({ ...ATTACHMENT, ...r })),
    check: () => (f.guard('check'), Promise.resolve(ATTACHMENT)),
    del: () => (f.guard('del'), Promise.resolve({ released: true })),
    gc: () => (f.guard('gc'), Promise.resolve({ released: [] })),
    status: () => (f.guard('status'), f.ready ? { ready: true } : { ready: false, reason: 'Loom IPAM is awaiting-consensus' }),
    list: () => [],
  };
  return f;
}

/**
 * A router API on a local socket of its own (`socket`) over a fake CNI service. `self` is the name
 * it takes as its own for /cni/exec ('own': the socket it listens on; another name makes a conf
 * naming its real socket "another router's").
 */
async function withServer(self: string, run: (socket: string, cni: ReturnType<typeof fakeCni>) => Promise<void>): Promise<void> {
  const cni = fakeCni();
  const socket = testApiSocket();
  const server = new ApiServer({ logger: silentLogger }, { host: '127.0.0.1', port: 0, socket });
  registerCniRoutes(server, cni, { socket: self === 'own' ? socket : self });
  await server.listen();
  try {
    await run(socket, cni);
  } finally {
    await server.close();
  }
}

/** POST /cni/exec on the local socket. */
function exec(socket: string, body: unknown): Promise<{ status: number; text: string }> {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: '\0' + socket, method: 'POST', path: '/cni/exec', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

test('fallback decisions: a delegated IPAM or another router is the Node plugin\'s; unparseable input and VERSION run here', () => {
  const self = { socket: 'loom/api' };
  const req = (env: Record<string, string>, conf: unknown) => ({ env, stdin: typeof conf === 'string' ? conf : JSON.stringify(conf) });
  const conf = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'loom', type: 'loom-cni', ...extra });
  assert.equal(fallbackReason(req(ENV, conf()), self), null);
  assert.equal(fallbackReason(req(ENV, conf({ ipam: { type: 'host-local' } })), self), 'delegated-ipam');
  assert.equal(fallbackReason(req(ENV, conf({ ipam: { type: 'loom' } })), self), null);
  assert.equal(fallbackReason(req(ENV, conf({ socket: 'loom/other' })), self), 'other-api');
  assert.equal(fallbackReason(req(ENV, conf({ socket: 'loom/api' })), self), null);
  assert.equal(fallbackReason(req(ENV, conf({ api: 'http://127.0.0.1:7000' })), self), null, 'an old conf\'s api no longer picks the router: the socket does');
  assert.equal(fallbackReason(req(ENV, '{not json'), self), null, 'runPlugin reports it (code 6)');
  assert.equal(fallbackReason(req({ ...ENV, CNI_COMMAND: 'VERSION' }, conf({ ipam: { type: 'host-local' } })), self), null);
  assert.ok(isOwnApi('loom/api', self));
  assert.ok(!isOwnApi('loom/api2', self));
  assert.equal(execAnswerText({ kind: 'exit', code: 7, stdout: '{"x":1}\n' }), 'exit 7\n{"x":1}\n');
  assert.equal(execAnswerText({ kind: 'fallback', reason: 'other-api' }), 'fallback other-api\n');
});

test('POST /cni/exec answers exactly what the Node plugin prints over HTTP, for success and every error path', async () => {
  await withServer('own', async (socket, cni) => {
    const conf = (v: string, extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: v, name: 'loom', type: 'loom-cni', socket, ...extra });
    const cases: Array<{ what: string; env: Record<string, string>; stdin: string; fail?: Error; notReady?: true; code: number }> = [
      { what: 'ADD 1.0.0', env: ENV, stdin: conf('1.0.0'), code: 0 },
      { what: 'ADD 0.4.0', env: ENV, stdin: conf('0.4.0'), code: 0 },
      { what: 'DEL', env: { ...ENV, CNI_COMMAND: 'DEL' }, stdin: conf('1.1.0'), code: 0 },
      { what: 'CHECK with prevResult', env: { ...ENV, CNI_COMMAND: 'CHECK' }, stdin: conf('1.0.0', { prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.32.0.5/12' }] } }), code: 0 },
      { what: 'CHECK against a wrong prevResult', env: { ...ENV, CNI_COMMAND: 'CHECK' }, stdin: conf('1.0.0', { prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.32.9.9/12' }] } }), code: 1 },
      { what: 'GC', env: { CNI_COMMAND: 'GC', CNI_PATH: '/x' }, stdin: conf('1.1.0'), code: 0 },
      { what: 'GC under 0.4.0', env: { CNI_COMMAND: 'GC', CNI_PATH: '/x' }, stdin: conf('0.4.0'), code: 1 },
      { what: 'STATUS not ready', env: { CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, stdin: conf('1.1.0'), notReady: true, code: 1 },
      { what: 'VERSION', env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}', code: 0 },
      { what: 'bad JSON', env: ENV, stdin: '{"cniVersion":', code: 1 },
      { what: 'no CNI_PATH', env: { ...ENV, CNI_PATH: '' }, stdin: conf('1.0.0'), code: 1 },
      { what: 'unknown command', env: { ...ENV, CNI_COMMAND: 'FROB' }, stdin: conf('1.0.0'), code: 1 },
      { what: 'bad ifname', env: { ...ENV, CNI_IFNAME: 'a/b' }, stdin: conf('1.0.0'), code: 1 },
      { what: 'unknown netns (ERR_NOT_FOUND)', env: ENV, stdin: conf('1.0.0'), fail: new LoomError('ERR_NOT_FOUND', 'no namespace /run/netns/x'), code: 1 },
      { what: 'IPAM not ready (ERR_UNAVAILABLE)', env: ENV, stdin: conf('1.0.0'), fail: new LoomError('ERR_UNAVAILABLE', 'IPAM is not ready'), code: 1 },
      { what: 'a bug in the router (plain Error)', env: ENV, stdin: conf('1.0.0'), fail: new Error('boom'), code: 1 },
      { what: 'runtimeConfig.ips', env: ENV, stdin: conf('1.0.0', { runtimeConfig: { ips: ['10.1.1.1/24'] } }), code: 1 },
    ];
    for (const c of cases) {
      cni.failWith = c.fail ?? null;
      cni.ready = c.notReady !== true;
      const viaNode = await runPlugin({ env: c.env, stdin: c.stdin, router: socketTransport, delegator: () => ({ run: () => Promise.reject(new Error('no delegate expected')) }) });
      const viaExec = await exec(socket, { env: c.env, stdin: c.stdin });
      assert.equal(viaExec.status, 200, c.what);
      assert.equal(viaExec.text, `exit ${viaNode.exitCode}\n${viaNode.stdout}`, c.what);
      assert.equal(viaNode.exitCode, c.code, `${c.what}: ${viaNode.stdout}`);
    }
    cni.failWith = null;
    assert.equal((await exec(socket, { env: ENV, stdin: conf('1.0.0', { ipam: { type: 'host-local' } }) })).text, 'fallback delegated-ipam\n');
    assert.equal((await exec(socket, { env: ENV, stdin: conf('1.0.0', { socket: 'loom-test/nobody-here' }) })).text, 'fallback other-api\n');
  });
});

test('a bad /cni/exec body is a 400 or 413 with the API error body, never a crash', async () => {
  await withServer('own', async (socket, cni) => {
    const bad: Array<[unknown, number]> = [
      ['{"env":', 400],
      [{ env: {} }, 400],
      [{ env: { CNI_COMMAND: 'ADD', LD_PRELOAD: '/x.so' }, stdin: '' }, 400],
      [{ env: { CNI_COMMAND: 7 }, stdin: '' }, 400],
      [{ env: { CNI_COMMAND: 'A'.repeat(65) }, stdin: '' }, 400],
      [{ env: {}, stdin: 'x'.repeat(1024 * 1024 + 1) }, 413],
      [[], 400],
      ['null', 400],
    ];
    for (const [body, status] of bad) {
      const r = await exec(socket, body);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} -> ${r.text}`);
      assert.match(r.text, /"error":\{"code":"ERR_/);
    }
    assert.deepEqual(cni.calls, []);
    assert.match((await exec(socket, { env: { CNI_COMMAND: 'VERSION' }, stdin: '' })).text, /^exit 0\n\{"cniVersion":"1\.1\.0"/, 'the server still answers');
  });
});

const SHIM = fileURLToPath(new URL('../../../bin/loom-cni', import.meta.url));
const shimSkip = existsSync(SHIM) ? false : 'dist/bin/loom-cni is not built (npm run build; needs gcc)';

function runShim(shim: string, env: Record<string, string>, input: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const pathEnv = `${dirname(process.execPath)}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
    const child = spawn(shim, [], { env: { PATH: pathEnv, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
    child.stdin.end(input);
  });
}

test('the C shim forwards to /cni/exec, escapes what it sends, and falls back to loom-cni-node', { skip: shimSkip }, async () => {
  // The router takes `self` as its own name: a conf naming the socket it really listens on is "another router".
  const self = testApiSocket();
  const nothing = testApiSocket();
  await withServer(self, async (socket, cni) => {
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'loom', type: 'loom-cni', socket: self, note: 'quote " backslash \\ tab \t nl \n é ✓' });
    const add = await runShim(SHIM, { ...ENV, LOOM_CNI_SOCKET: socket }, conf);
    assert.equal(add.code, 0, add.stdout);
    assert.equal((JSON.parse(add.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address, '10.32.0.5/12');
    assert.deepEqual(cni.calls, ['add']);
    const badEnv = await runShim(SHIM, { ...ENV, CNI_IFNAME: 'tab\there', LOOM_CNI_SOCKET: socket }, conf);
    assert.deepEqual([badEnv.code, (JSON.parse(badEnv.stdout) as { code: number }).code], [1, 4]);
    const version = await runShim(SHIM, { CNI_COMMAND: 'VERSION', LOOM_CNI_SOCKET: socket }, '');
    assert.deepEqual(JSON.parse(version.stdout), { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });

    // Another router's socket: the router says fallback, loom-cni-node runs the call on that socket (here: this server's).
    const other = JSON.stringify({ cniVersion: '1.0.0', name: 'loom', type: 'loom-cni', socket });
    const viaNode = await runShim(SHIM, { ...ENV, CNI_COMMAND: 'DEL', LOOM_CNI_SOCKET: socket }, other);
    assert.deepEqual([viaNode.code, viaNode.stdout], [0, '']);
    assert.deepEqual(cni.calls, ['add', 'del'], 'the Node plugin reached the router on its socket');

    // No router at all: the Node plugin's spec error, code 11.
    const down = await runShim(SHIM, { ...ENV, LOOM_CNI_SOCKET: nothing }, JSON.stringify({ cniVersion: '1.0.0', name: 'loom', type: 'loom-cni', socket: nothing }));
    assert.equal(down.code, 1);
    assert.equal((JSON.parse(down.stdout) as { code: number }).code, 11);
  });
  // Without loom-cni-node beside it: the fixed error object.
  const dir = mkdtempSync(join(tmpdir(), 'loom-cni-shim-'));
  try {
    copyFileSync(SHIM, join(dir, 'loom-cni'));
    const lonely = await runShim(join(dir, 'loom-cni'), { ...ENV, LOOM_CNI_SOCKET: nothing }, '{}');
    assert.equal(lonely.code, 1);
    assert.deepEqual(JSON.parse(lonely.stdout), { cniVersion: '1.0.0', code: 11, msg: 'Loom router not reachable and loom-cni-node missing' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
