/**
 * The Docker integration's edges, without root: the plugin socket (real HTTP on a unix socket in
 * a temp dir; errors in Docker's {"Err"} form), the Engine API client against a fake Docker on a
 * unix socket (inspect, 404, events split across chunks), pool ids, socket ownership from a
 * /proc/net/unix text, the launch options, and `loom attach`'s target forms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/core/logger.js';
import { LoomError } from '../../../src/core/errors.js';
import { PluginServer } from '../../../src/docker/plugin-server.js';
import { HttpEngineApi, parseEvent, parseInspect, type EngineEvent } from '../../../src/docker/engine.js';
import { decodePoolId, encodePoolId } from '../../../src/docker/pools.js';
import { listeningPaths, socketOwner } from '../../../src/docker/ownership.js';
import { dockerArgs, parseDockerOptions } from '../../../src/docker/options.js';
import { attachTarget } from '../../../src/cli/commands/attach.js';
import { parseNetworkCidr } from '../../../src/core/net.js';
import { foregroundArgs, parseLaunchOptions } from '../../../src/daemon/options.js';

function post(socketPath: string, path: string, body: string, method = 'POST'): Promise<{ status: number; type: string; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('plugin socket: answers in Docker plugin JSON; errors as {"Err", "Error"}; bad requests never break it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-docker-'));
  const sock = join(dir, 'plugins', 'loom.sock');
  writeFileSync(join(dir, 'stale'), '');
  const seen: string[] = [];
  const server = new PluginServer(
    sock,
    async (path, body) => {
      seen.push(path);
      if (path === '/boom') throw new LoomError('ERR_NOT_FOUND', 'no Loom network abc');
      if (path === '/crash') throw new Error('bug');
      return { path, body };
    },
    silentLogger,
  );
  try {
    await server.listen();
    const ok = await post(sock, '/Plugin.Activate', '');
    assert.equal(ok.status, 200);
    assert.equal(ok.type, 'application/vnd.docker.plugins.v1.2+json');
    assert.deepEqual(ok.json, { path: '/Plugin.Activate', body: {} }, 'an empty body is {}');
    assert.deepEqual((await post(sock, '/x', '{"A":1}')).json, { path: '/x', body: { A: 1 } });
    assert.deepEqual((await post(sock, '/boom', '{}')).json, { Err: 'no Loom network abc', Error: 'no Loom network abc' });
    const crash = await post(sock, '/crash', '{}');
    assert.equal(crash.status, 500);
    assert.equal(crash.json['Err'], 'bug');
    const malformed = await post(sock, '/NetworkDriver.Join', '{"NetworkID": ');
    assert.match(String(malformed.json['Err']), /malformed JSON in \/NetworkDriver\.Join/);
    const get = await post(sock, '/Plugin.Activate', '', 'GET');
    assert.match(String(get.json['Err']), /POST/);
    const big = await post(sock, '/x', JSON.stringify({ a: 'x'.repeat(2 << 20) })).catch(() => null);
    assert.ok(big === null || /too large/.test(String(big.json['Err'])), 'an oversized body is refused');
    assert.deepEqual((await post(sock, '/Plugin.Activate', '')).json['path'], '/Plugin.Activate', 'still serving after all that');
    assert.ok(!seen.includes('/NetworkDriver.Join'), 'a malformed body never reaches the handler');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('engine client: ping, inspect (and 404 -> null), running containers, events split across chunks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-docker-'));
  const sock = join(dir, 'docker.sock');
  const fake = createServer((req, res) => {
    if (req.url === '/_ping') return void res.end('OK');
    if (req.url === '/containers/web/json') return void res.end(JSON.stringify({ Id: 'c1', Name: '/web', State: { Running: true, Pid: 4242 }, NetworkSettings: { Networks: { mynet: { NetworkID: 'n1', EndpointID: 'e1', IPAddress: '10.32.0.5' } } } }));
    if (req.url === '/containers/json') return void res.end(JSON.stringify([{ Id: 'c1' }, { Id: 'c2' }]));
    if (req.url?.startsWith('/containers/') && req.url.endsWith('/json')) return void res.writeHead(404).end('{"message":"No such container"}');
    if (req.url?.startsWith('/events?filters=')) {
      res.writeHead(200);
      res.write('{"Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{"name":"web"}}}\n{"Type":"network","Act');
      setTimeout(() => res.end('ion":"connect","Actor":{"ID":"n1","Attributes":{"container":"c1"}}}\n{"Type":"image","Action":"pull"}\nnot json\n'), 20);
      return;
    }
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => fake.listen(sock, r));
  try {
    const api = new HttpEngineApi({ kind: 'unix', path: sock });
    await api.ping();
    assert.deepEqual(await api.inspect('web'), { id: 'c1', name: 'web', running: true, pid: 4242, networks: { mynet: { networkId: 'n1', endpointId: 'e1', ipAddress: '10.32.0.5' } }, resolvConfPath: '', dns: [], dnsSearch: [] });
    assert.equal(await api.inspect('nope'), null);
    assert.deepEqual(await api.runningContainers(), ['c1', 'c2']);
    const events: EngineEvent[] = [];
    await api.events((e) => events.push(e), new AbortController().signal);
    assert.deepEqual(events, [
      { type: 'container', action: 'start', actorId: 'c1', attributes: { name: 'web' } },
      { type: 'network', action: 'connect', actorId: 'n1', attributes: { container: 'c1' } },
    ]);
    await assert.rejects(new HttpEngineApi({ kind: 'unix', path: join(dir, 'absent.sock') }).ping(), (e: unknown) => e instanceof LoomError && e.code === 'ERR_UNAVAILABLE');
  } finally {
    fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('engine parsing: Docker 20.10 event lines; an inspect without Id is a protocol error', () => {
  const line = '{"status":"start","id":"8a08","from":"lab-rt/busybox","Type":"container","Action":"exec_start: sh -c x","Actor":{"ID":"8a08","Attributes":{"image":"lab-rt/busybox","name":"lab-rt-c1"}},"scope":"local"}';
  assert.deepEqual(parseEvent(line), { type: 'container', action: 'exec_start', actorId: '8a08', attributes: { image: 'lab-rt/busybox', name: 'lab-rt-c1' } });
  assert.equal(parseEvent('{"Type":"volume"}'), null);
  assert.equal(parseEvent('[1,2'), null);
  assert.throws(() => parseInspect({ Name: '/x' }), (e: unknown) => e instanceof LoomError && e.code === 'ERR_PROTOCOL');
});

test('pool ids round-trip; anything else is ERR_NOT_FOUND', () => {
  const def = parseNetworkCidr('10.32.0.0/12');
  for (const p of [{ subnet: parseNetworkCidr('10.40.0.0/24'), range: parseNetworkCidr('10.40.0.128/25') }, { subnet: parseNetworkCidr('10.40.0.0/24'), range: parseNetworkCidr('10.40.0.0/24') }]) {
    assert.deepEqual(decodePoolId(encodePoolId(p), def), p);
  }
  assert.deepEqual(decodePoolId('loom:default', def), { isDefault: true, subnet: def, range: def });
  for (const bad of ['', 'loom:', 'loom:10.40.0.0/24:10.41.0.0/25', 'loom:10.40.0.1/24', 'weave:10.40.0.0/24', 'loom:a:b:c', 42]) {
    assert.throws(() => decodePoolId(bad, def), (e: unknown) => e instanceof LoomError && e.code === 'ERR_NOT_FOUND', String(bad));
  }
});

test('socket ownership: a listening socket of our namespace is ours; a file not listed is another namespace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-docker-'));
  try {
    const path = join(dir, 'docker.sock');
    const proc = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      `0000000000000000: 00000002 00000000 00010000 0001 01 33417 ${path}`,
      '0000000000000000: 00000003 00000000 00000000 0001 03 33418 /run/other.sock',
      '0000000000000000: 00000002 00000000 00010000 0001 01 33419',
    ].join('\n');
    assert.deepEqual([...listeningPaths(proc)], [path]);
    assert.equal(socketOwner(path, () => proc), 'absent', 'no file yet');
    writeFileSync(path, '');
    assert.equal(socketOwner(path, () => proc), 'ours');
    assert.equal(socketOwner(path, () => proc.split('\n').slice(0, 1).join('\n')), 'other');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('launch options: defaults, unix and tcp APIs, --no-docker; bad values named; the re-executed daemon gets the same', () => {
  assert.deepEqual(parseDockerOptions({}), { enabled: true, api: { kind: 'unix', path: '/var/run/docker.sock' }, pluginDir: '/run/docker/plugins' });
  assert.deepEqual(parseDockerOptions({ docker: false, dockerApi: 'tcp://127.0.0.1:2375', dockerPluginDir: '/tmp/p' }), { enabled: false, api: { kind: 'tcp', host: '127.0.0.1', port: 2375 }, pluginDir: '/tmp/p' });
  for (const [raw, what] of [[{ dockerApi: 'http://x' }, /--docker-api/], [{ dockerApi: 'unix://relative' }, /absolute/], [{ dockerApi: 'tcp://host' }, /tcp:\/\/HOST:PORT/], [{ dockerPluginDir: 'plugins' }, /--docker-plugin-dir/]] as const) {
    assert.throws(() => parseDockerOptions(raw), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT' && what.test(e.message));
  }
  const config = parseLaunchOptions({ docker: false, dockerApi: 'unix:///tmp/d.sock', dockerPluginDir: '/tmp/p' }, [], {}, 'h');
  const args = foregroundArgs(config);
  assert.deepEqual(dockerArgs(config.docker), ['--no-docker', '--docker-api', 'unix:///tmp/d.sock', '--docker-plugin-dir', '/tmp/p']);
  assert.ok(args.join(' ').includes('--no-docker --docker-api unix:///tmp/d.sock --docker-plugin-dir /tmp/p'));
});

test('loom attach targets: PID, netns path, else a Docker container id or name', () => {
  assert.deepEqual(attachTarget('4242'), { pid: 4242 });
  assert.deepEqual(attachTarget('/run/netns/a'), { netns: '/run/netns/a' });
  assert.deepEqual(attachTarget('web'), { docker: 'web' });
  assert.deepEqual(attachTarget('8a081abdf06b'), { docker: '8a081abdf06b' });
  for (const bad of ['no such!', '-x', '']) assert.throws(() => attachTarget(bad), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT');
});
