import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { ApiClient } from '../../../src/api/client.js';
import { ApiServer } from '../../../src/api/server.js';
import { registerRouterRoutes } from '../../../src/api/router-routes.js';
import { LoomError, silentLogger } from '../../../src/core/index.js';
import { FakeRouter } from './fake-router.js';

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
  const server = new ApiServer({ logger: silentLogger }, { port: 0 });
  let stopped = 0;
  registerRouterRoutes(server, router, { onStop: () => stopped++, defaultMetrics: false });
  const { port } = await server.listen();
  try {
    const client = new ApiClient({ address: `127.0.0.1:${port}` });
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

test('ApiClient: a bad address is ERR_INVALID_ARGUMENT at construction', () => {
  assert.throws(() => new ApiClient({ address: 'localhost:http' }), isCode('ERR_INVALID_ARGUMENT'));
  assert.throws(() => new ApiClient({ address: '::1:6784' }), isCode('ERR_INVALID_ARGUMENT'));
  assert.equal(new ApiClient({ address: '[::1]:6784' }).address, '[::1]:6784');
});
