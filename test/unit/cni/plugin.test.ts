/**
 * loom-cni without root: env and conf parsing, the spec's error objects and codes, version
 * negotiation, result building per version, delegation order, and every request the plugin
 * sends checked against the router's route table (src/cni/api.ts), since the plugin itself does
 * not load zod.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPlugin, type PluginIo } from '../../../src/cni/plugin.js';
import { DEFAULT_SOCKET, parseCniArgs, parseEnv, parseNetConf, validIfname } from '../../../src/cni/conf.js';
import { DEFAULT_API_SOCKET } from '../../../src/api/validate.js';
import { CNI_ROUTES } from '../../../src/cni/api.js';
import { CniError } from '../../../src/cni/spec.js';
import { routerError, RouterUnreachable, type RouterTransport } from '../../../src/cni/router-client.js';
import type { Delegator } from '../../../src/cni/delegate.js';
import { conflistText, installCni, pluginScript, uninstallCni } from '../../../src/cli/commands/cni.js';
import { CNI_ATTACHMENT, CNI_ENV } from '../../helpers/cni-fixtures.js';

const ENV = CNI_ENV;
const ATTACHMENT = CNI_ATTACHMENT;

interface Recorded {
  method: string;
  path: string;
  body: unknown;
}

/** A router that checks each request against the route table's schema, as the real routes do. */
function fakeRouter(calls: Recorded[], answer: (path: string) => unknown = () => ATTACHMENT): RouterTransport {
  return {
    async call(method, path, body) {
      calls.push({ method, path, body });
      const route = Object.values(CNI_ROUTES).find((r) => r.path === path && r.method === method);
      assert.ok(route, `a route for ${method} ${path}`);
      if ('request' in route) {
        const parsed = route.request.safeParse(body);
        assert.ok(parsed.success, `${path} body ${JSON.stringify(body)} matches the route table`);
      }
      const a = answer(path);
      if (a instanceof Error) throw a;
      assert.ok(route.response.safeParse(a).success, `the fake's answer to ${path} matches the route table`);
      return a;
    },
  };
}

function io(env: Record<string, string>, conf: unknown, router: RouterTransport, delegator?: Delegator): PluginIo {
  return { env, stdin: typeof conf === 'string' ? conf : JSON.stringify(conf), router: () => router, delegator: () => delegator ?? { run: () => Promise.reject(new Error('no delegate expected')) } };
}

const conf = (v = '1.0.0', extra: Record<string, unknown> = {}) => ({ cniVersion: v, name: 'loom', type: 'loom-cni', ...extra });

test('ADD sends the contract request and builds a 1.x result (interfaces, ips, routes, dns)', async () => {
  const calls: Recorded[] = [];
  const out = await runPlugin(io(ENV, conf(), fakeRouter(calls)));
  assert.equal(out.exitCode, 0);
  assert.deepEqual(calls[0], { method: 'POST', path: '/cni/add', body: { containerId: 'abc123', ifname: 'eth0', network: 'loom', netns: '/run/netns/x', podName: 'web' } });
  assert.deepEqual(JSON.parse(out.stdout), {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'vlc0123456789ab' }, { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
    ips: [{ address: '10.32.0.5/12', gateway: '10.32.0.1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }],
    dns: { nameservers: ['10.32.0.1'], search: ['loom.local'] },
  });
});

test('ADD under 0.4.0 marks IPs with version "4"; a prevResult is extended, not replaced', async () => {
  const prevResult = { cniVersion: '0.4.0', interfaces: [{ name: 'other0' }], ips: [{ version: '4', address: '192.168.1.2/24', interface: 0 }], routes: [], dns: {} };
  const out = await runPlugin(io(ENV, conf('0.4.0', { prevResult }), fakeRouter([])));
  const r = JSON.parse(out.stdout) as { interfaces: unknown[]; ips: Array<{ version: string; interface: number; address: string }> };
  assert.equal(r.interfaces.length, 3);
  assert.deepEqual(
    r.ips.map((i) => [i.version, i.address, i.interface]),
    [
      ['4', '192.168.1.2/24', 0],
      ['4', '10.32.0.5/12', 2],
    ],
  );
});

test('VERSION answers the declared versions, with or without stdin', async () => {
  for (const stdin of ['', '{"cniVersion":"0.4.0"}', '{"cniVersion":"7.0.0"}', 'not json']) {
    const out = await runPlugin(io({ CNI_COMMAND: 'VERSION' }, stdin, fakeRouter([])));
    assert.equal(out.exitCode, 0);
    const r = JSON.parse(out.stdout) as { cniVersion: string; supportedVersions: string[] };
    assert.deepEqual(r.supportedVersions, ['0.4.0', '1.0.0', '1.1.0']);
    assert.equal(r.cniVersion, stdin.includes('0.4.0') ? '0.4.0' : '1.1.0');
  }
});

test('errors: the spec object on stdout, non-zero exit, the right code, and no router call', async () => {
  const cases: Array<[string, Record<string, string>, unknown, number]> = [
    ['bad JSON', ENV, '{"cniVersion":', 6],
    ['not an object', ENV, '[1,2]', 6],
    ['missing cniVersion', ENV, { name: 'loom' }, 7],
    ['missing name', ENV, { cniVersion: '1.0.0' }, 7],
    ['bad name', ENV, conf('1.0.0', { name: 'a b' }), 7],
    ['bad api', ENV, conf('1.0.0', { api: 'ftp://x' }), 7],
    ['unknown version', ENV, conf('0.3.1'), 1],
    ['GC under 1.0.0', { ...ENV, CNI_COMMAND: 'GC' }, conf('1.0.0'), 1],
    ['STATUS under 0.4.0', { ...ENV, CNI_COMMAND: 'STATUS' }, conf('0.4.0'), 1],
    ['unknown command', { ...ENV, CNI_COMMAND: 'FROB' }, conf(), 4],
    ['no command', { CNI_PATH: '/x' }, conf(), 4],
    ['no container id', { ...ENV, CNI_CONTAINERID: '' }, conf(), 4],
    ['bad container id', { ...ENV, CNI_CONTAINERID: '-x' }, conf(), 4],
    ['no netns on ADD', { ...ENV, CNI_NETNS: '' }, conf(), 4],
    ['relative netns', { ...ENV, CNI_NETNS: 'proc/1/ns/net' }, conf(), 4],
    ['bad ifname', { ...ENV, CNI_IFNAME: 'way-too-long-name0' }, conf(), 4],
    ['no CNI_PATH', { ...ENV, CNI_PATH: '' }, conf(), 4],
    ['bad CNI_ARGS', { ...ENV, CNI_ARGS: 'novalue' }, conf(), 4],
    ['runtimeConfig.ips', ENV, conf('1.0.0', { runtimeConfig: { ips: ['10.32.0.9/12'] } }), 2],
    ['prevResult not an object', ENV, conf('1.0.0', { prevResult: 3 }), 7],
  ];
  for (const [what, env, stdin, code] of cases) {
    const calls: Recorded[] = [];
    const out = await runPlugin(io(env, stdin, fakeRouter(calls)));
    assert.equal(out.exitCode, 1, what);
    const e = JSON.parse(out.stdout) as { cniVersion: string; code: number; msg: string };
    assert.equal(e.code, code, `${what}: ${out.stdout}`);
    assert.equal(typeof e.msg, 'string');
    assert.equal(typeof e.cniVersion, 'string');
    assert.deepEqual(calls, [], `${what}: nothing reached the router`);
  }
});

test('router errors map to CNI codes; an unreachable router is 11 for ADD and 50 for STATUS', async () => {
  assert.equal(routerError({ error: { code: 'ERR_NOT_FOUND', message: 'x' } }, 404).code, 3);
  assert.equal(routerError({ error: { code: 'ERR_UNAVAILABLE', message: 'x' } }, 503).code, 11);
  assert.equal(routerError({ error: { code: 'ERR_OS_COMMAND', message: 'x' } }, 500).code, 100);
  assert.equal(routerError('garbage', 502).code, 100);
  const down: RouterTransport = { call: () => Promise.reject(new RouterUnreachable('http://127.0.0.1:6784', 'ECONNREFUSED')) };
  const add = JSON.parse((await runPlugin(io(ENV, conf(), down))).stdout) as { code: number };
  assert.equal(add.code, 11);
  const status = JSON.parse((await runPlugin(io({ ...ENV, CNI_COMMAND: 'STATUS' }, conf('1.1.0'), down))).stdout) as { code: number; msg: string };
  assert.deepEqual([status.code, status.msg], [50, 'plugin not available']);
  const notReady = await runPlugin(io({ ...ENV, CNI_COMMAND: 'STATUS' }, conf('1.1.0'), fakeRouter([], () => ({ ready: false, reason: 'Loom IPAM is awaiting consensus' }))));
  assert.equal((JSON.parse(notReady.stdout) as { code: number }).code, 50);
  const ready = await runPlugin(io({ ...ENV, CNI_COMMAND: 'STATUS' }, conf('1.1.0'), fakeRouter([], () => ({ ready: true }))));
  assert.deepEqual(ready, { stdout: '', exitCode: 0 });
});

test('DEL without a netns, CHECK against prevResult, GC with the valid list: requests match the route table', async () => {
  const calls: Recorded[] = [];
  const answers = (path: string): unknown => (path === '/cni/del' ? { released: true } : path === '/cni/gc' ? { released: [] } : ATTACHMENT);
  const del = await runPlugin(io({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf(), fakeRouter(calls, answers)));
  assert.deepEqual(del, { stdout: '', exitCode: 0 });
  assert.deepEqual(calls.at(-1)?.body, { containerId: 'abc123', ifname: 'eth0', network: 'loom' });
  const prevResult = { cniVersion: '1.0.0', interfaces: [], ips: [{ address: '10.32.0.5/12', interface: 1 }] };
  assert.equal((await runPlugin(io({ ...ENV, CNI_COMMAND: 'CHECK' }, conf('1.0.0', { prevResult }), fakeRouter(calls, answers)))).exitCode, 0);
  const wrongPrev = { ...prevResult, ips: [{ address: '10.32.0.6/12' }] };
  assert.equal((await runPlugin(io({ ...ENV, CNI_COMMAND: 'CHECK' }, conf('1.0.0', { prevResult: wrongPrev }), fakeRouter(calls, answers)))).exitCode, 1);
  const gc = await runPlugin(io({ ...ENV, CNI_COMMAND: 'GC' }, conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] }), fakeRouter(calls, answers)));
  assert.equal(gc.exitCode, 0);
  assert.deepEqual(calls.at(-1)?.body, { network: 'loom', valid: [{ containerId: 'keep', ifname: 'eth0' }] });
});

test('delegated IPAM: its address goes to the router; a router failure gives the address back', async () => {
  const ran: string[] = [];
  const delegator: Delegator = {
    async run(type, command) {
      ran.push(`${type} ${command}`);
      return command === 'ADD' ? { cniVersion: '1.0.0', ips: [{ address: '10.99.7.5/24', gateway: '10.99.7.1' }] } : null;
    },
  };
  const calls: Recorded[] = [];
  const ipamConf = conf('1.0.0', { ipam: { type: 'host-local', subnet: '10.99.7.0/24' } });
  const ok = await runPlugin(io(ENV, ipamConf, fakeRouter(calls, () => ({ ...ATTACHMENT, cidr: '10.99.7.5/24', gateway: '10.99.7.1' })), delegator));
  assert.equal(ok.exitCode, 0, ok.stdout);
  assert.deepEqual(calls[0]?.body, { containerId: 'abc123', ifname: 'eth0', network: 'loom', netns: '/run/netns/x', podName: 'web', address: '10.99.7.5/24', gateway: '10.99.7.1' });
  const failed = await runPlugin(io(ENV, ipamConf, fakeRouter([], () => new CniError(100, 'veth failed')), delegator));
  assert.equal(failed.exitCode, 1);
  assert.deepEqual(ran, ['host-local ADD', 'host-local ADD', 'host-local DEL']);
});

test('env and conf parsing rules', () => {
  assert.deepEqual([...parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=a=b;')], [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAME', 'a=b'],
  ]);
  for (const bad of ['', '.', '..', 'a/b', 'a:b', 'a b', 'x'.repeat(16)]) assert.equal(validIfname(bad), false, bad);
  for (const good of ['eth0', 'x'.repeat(15), 'net1']) assert.equal(validIfname(good), true, good);
  const env = parseEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' });
  assert.equal(env.netns, '');
  assert.deepEqual(parseEnv({ CNI_COMMAND: 'VERSION' }).path, []);
  const c = parseNetConf(conf('1.1.0', { api: 'http://10.0.0.1:6784/', ipam: { type: 'loom' }, unknownField: true }), 'ADD');
  assert.equal(c.api, 'http://10.0.0.1:6784');
  assert.equal(c.ipam, undefined, 'ipam type loom means Loom IPAM, no delegation');
});

test('loom cni install writes the contract conflist, the plugin (native shim or Node script) and its Node fallback; uninstall removes them all', () => {
  assert.equal(conflistText({ name: 'loom', socket: 'loom/api' }), '{"cniVersion":"1.0.0","name":"loom","plugins":[{"type":"loom-cni","socket":"loom/api"},{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}\n');
  assert.match(pluginScript('/usr/bin/node', '/repo/dist/src/cni/main.js'), /^#!\/usr\/bin\/node\n.*\nimport\("\/repo\/dist\/src\/cni\/main\.js"\);\n$/);
  const dir = mkdtempSync(join(tmpdir(), 'loom-cni-install-'));
  try {
    const [plugin, nodePlugin, list] = installCni({ binDir: join(dir, 'bin'), confDir: join(dir, 'net.d'), socket: 'loom/net1', name: 'net1' }, '/usr/bin/node', '/x/main.js');
    assert.equal(statSync(plugin!).mode & 0o777, 0o755);
    assert.equal(readFileSync(plugin!, 'utf8'), pluginScript('/usr/bin/node', '/x/main.js'), 'no shim given: loom-cni is the Node script');
    assert.deepEqual([nodePlugin, statSync(nodePlugin!).mode & 0o777], [join(dir, 'bin', 'loom-cni-node'), 0o755]);
    assert.equal(readFileSync(nodePlugin!, 'utf8'), pluginScript('/usr/bin/node', '/x/main.js'));
    assert.equal((JSON.parse(readFileSync(list!, 'utf8')) as { name: string }).name, 'net1');
    // With a shim: loom-cni is a copy of it, the Node script stays beside it as loom-cni-node.
    const shim = join(dir, 'shim');
    writeFileSync(shim, '\x7fELF not really');
    installCni({ binDir: join(dir, 'bin'), confDir: join(dir, 'net.d'), socket: 'loom/net1', name: 'net1' }, '/usr/bin/node', '/x/main.js', shim);
    assert.equal(readFileSync(plugin!, 'utf8'), '\x7fELF not really');
    assert.equal(statSync(plugin!).mode & 0o777, 0o755);
    uninstallCni({ binDir: join(dir, 'bin'), confDir: join(dir, 'net.d') });
    uninstallCni({ binDir: join(dir, 'bin'), confDir: join(dir, 'net.d') });
    for (const p of [plugin, nodePlugin, list]) assert.throws(() => statSync(p!));
    assert.throws(() => installCni({ binDir: 'rel', confDir: dir, socket: 'loom/api', name: 'n' }, '/n', '/m'), /absolute/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the conf names the router\'s socket (default: the router\'s own default name); an old conf\'s api still parses', () => {
  assert.equal(DEFAULT_SOCKET, DEFAULT_API_SOCKET);
  assert.equal(parseNetConf({ cniVersion: '1.0.0', name: 'loom' }, 'ADD').socket, 'loom/api');
  assert.equal(parseNetConf({ cniVersion: '1.0.0', name: 'loom', socket: 'loom/x', api: 'http://127.0.0.1:6784' }, 'ADD').socket, 'loom/x');
  for (const socket of ['', 'a\0b', 'x'.repeat(108), 7]) {
    assert.throws(() => parseNetConf({ cniVersion: '1.0.0', name: 'loom', socket }, 'ADD'), (e: unknown) => e instanceof CniError && e.code === 7, String(socket));
  }
});
