import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { ApiClient, apiEndpoint } from '../../../src/api/client.js';
import { clientInit } from '../../../src/cli/command.js';
import { ApiServer } from '../../../src/api/server.js';
import { registerRouterRoutes } from '../../../src/api/router-routes.js';
import { LoomError, silentLogger } from '../../../src/core/index.js';
import { FakeRouter } from './fake-router.js';
import { testApiSocket } from '../../helpers/api-socket.js';

const isCode = (code: string) => (e: unknown) => e instanceof LoomError && e.code === code;

/** A port with nothing listening: bind one, note it, close it. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('ApiClient: typed calls round-trip, daemon errors keep their code', async () => {
  const router = new FakeRouter();
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
  let stopped = 0;
  registerRouterRoutes(server, router, { onStop: () => stopped++, defaultMetrics: false });
  const { port, socket } = await server.listen();
  try {
    // TCP: reads answer, changes are refused by the router (the client does not guess).
    const tcp = new ApiClient({ address: `127.0.0.1:${port}` });
    assert.equal((await tcp.status()).name, '8a:3f:00:12:9c:01');
    await assert.rejects(tcp.connect(['10.1.1.1']), (e: unknown) => isCode('ERR_FORBIDDEN')(e) && /local socket/.test((e as Error).message));
    const client = new ApiClient({ socket: socket! });
    assert.equal(client.address, `@${socket!}`);
    assert.equal((await client.status()).name, '8a:3f:00:12:9c:01');
    const report = await client.report();
    assert.equal(report.router.peers.length, 3);
    assert.equal(report.version, '0.1.0');
    assert.deepEqual((await client.connect(['10.1.1.1'])).targets.at(-1), '10.1.1.1:6783');
    assert.deepEqual((await client.connect(['10.1.1.2'], true)).targets, ['10.1.1.2:6783']);
    assert.deepEqual((await client.forget(['10.1.1.2'])).targets, []);
    await assert.rejects(client.connect(['10.1.1.1:0']), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(client.call('GET', '/missing'), isCode('ERR_NOT_FOUND'));
    assert.match(await client.metrics(), /loom_peers 3/);
    assert.equal(await client.healthy(), true);
    assert.deepEqual(await client.stop(), { stopping: true });
  } finally {
    await server.close();
  }
  assert.equal(stopped, 1);
});

test('ApiClient: nothing listening => ERR_UNAVAILABLE with the hint', async () => {
  const client = new ApiClient({ address: `127.0.0.1:${await freePort()}` });
  await assert.rejects(client.status(), (e: unknown) => isCode('ERR_UNAVAILABLE')(e) && /loom launch/.test((e as Error).message));
  assert.equal(await client.healthy(), false);
});

test('ApiClient: a silent server => ERR_TIMEOUT; a non-JSON answer => ERR_PROTOCOL', async () => {
  const sockets = new Set<import('node:net').Socket>();
  const silent = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const garbage = createServer((s) => s.resume().end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'));
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
  try {
    const slow = new ApiClient({ address: `127.0.0.1:${(silent.address() as { port: number }).port}`, timeoutMs: 50 });
    await assert.rejects(slow.status(), isCode('ERR_TIMEOUT'));
    const bad = new ApiClient({ address: `127.0.0.1:${(garbage.address() as { port: number }).port}` });
    await assert.rejects(bad.status(), isCode('ERR_PROTOCOL'));
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    await new Promise((r) => garbage.close(r));
  }
});

test('ApiClient picks its endpoint: the default socket with nothing given, TCP for an address alone, the socket when one is named', () => {
  assert.deepEqual(apiEndpoint({}), { kind: 'socket', name: 'loom/api' });
  assert.deepEqual(apiEndpoint({ address: '127.0.0.1:7000' }), { kind: 'tcp', host: '127.0.0.1', port: 7000 });
  assert.deepEqual(apiEndpoint({ address: '10.0.0.1' }), { kind: 'tcp', host: '10.0.0.1', port: 6784 });
  assert.deepEqual(apiEndpoint({ socket: 'loom/other', address: '127.0.0.1:7000' }), { kind: 'socket', name: 'loom/other' });
  assert.equal(new ApiClient().address, '@loom/api');
  assert.throws(() => apiEndpoint({ socket: '' }), isCode('ERR_INVALID_ARGUMENT'));
  assert.throws(() => apiEndpoint({ socket: 'a\0b' }), isCode('ERR_INVALID_ARGUMENT'));
  assert.throws(() => apiEndpoint({ socket: 'x'.repeat(108) }), isCode('ERR_INVALID_ARGUMENT'));
  assert.deepEqual(apiEndpoint({ socket: 'x'.repeat(107) }), { kind: 'socket', name: 'x'.repeat(107) });
});

test('the CLI picks the client endpoint: a flag over the environment, a socket over an address given the same way', () => {
  assert.deepEqual(clientInit({}, {}), {});
  assert.deepEqual(clientInit({}, { LOOM_HTTP_ADDR: '127.0.0.1:1' }), { address: '127.0.0.1:1' });
  assert.deepEqual(clientInit({}, { LOOM_HTTP_ADDR: '127.0.0.1:1', LOOM_API_SOCKET: 's' }), { socket: 's' });
  assert.deepEqual(clientInit({ httpAddr: '127.0.0.1:2' }, { LOOM_API_SOCKET: 's' }), { address: '127.0.0.1:2' });
  assert.deepEqual(clientInit({ apiSocket: 't', httpAddr: '127.0.0.1:2' }, {}), { socket: 't' });
  assert.deepEqual(clientInit({}, { LOOM_API_SOCKET: '', LOOM_HTTP_ADDR: '' }), {});
});

test('ApiClient: no socket there => ERR_UNAVAILABLE naming it', async () => {
  const client = new ApiClient({ socket: testApiSocket() });
  await assert.rejects(client.status(), (e: unknown) => isCode('ERR_UNAVAILABLE')(e) && /@loom-test\//.test((e as Error).message));
  assert.equal(await client.healthy(), false);
});

test('ApiClient: a bad address is ERR_INVALID_ARGUMENT at construction', () => {
  assert.throws(() => new ApiClient({ address: 'localhost:http' }), isCode('ERR_INVALID_ARGUMENT'));
  assert.throws(() => new ApiClient({ address: '::1:6784' }), isCode('ERR_INVALID_ARGUMENT'));
  assert.equal(new ApiClient({ address: '[::1]:6784' }).address, '[::1]:6784');
});
