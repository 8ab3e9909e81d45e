/**
 * What the daemon logs: one line per state change, with the peer's name (a connection up or down),
 * and nothing per request or per query at info. (Per-packet silence of the relay and the path
 * change line: test/unit/dataplane/relay.test.ts and controller-relay.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '../../../src/api/server.js';
import { registerRouterRoutes } from '../../../src/api/router-routes.js';
import { recordingLogger, type LogRecord } from '../../../src/core/logger.js';
import { DnsServer } from '../../../src/dns/server.js';
import { FakeRouter } from '../api/fake-router.js';
import { FakeDnsMesh } from '../dns/fake-mesh.js';
import { deadPort, query, udpAsk } from '../dns/dns-client.js';
import { testApiSocket } from '../../helpers/api-socket.js';
import { createTestMesh, peerNameOf } from '../../helpers/test-mesh.js';

const fields = (r: LogRecord): Record<string, unknown> => r.obj as Record<string, unknown>;
const loud = (records: LogRecord[]): LogRecord[] => records.filter((r) => r.level !== 'debug');

test('a peer connection coming up and going down: one info line each, on each side, naming the peer', async () => {
  const log = recordingLogger();
  const mesh = await createTestMesh(2, { logger: log });
  mesh.connect(0, 1);
  const p0 = peerNameOf(0);
  const p1 = peerNameOf(1);
  assert.ok(await mesh.runUntil(() => mesh.routers[0]!.connectionTo(p1) !== undefined && mesh.routers[1]!.connectionTo(p0) !== undefined, 30_000), 'connected');
  await mesh.runUntilQuiet(30_000);
  const up = loud(log.records).filter((r) => r.msg === 'connection established');
  assert.deepEqual(up.map((r) => [r.level, fields(r).peer, fields(r).nickname]).sort(), [['info', p0, 'host0'], ['info', p1, 'host1']]);
  const mentions = (peer: string, from: number) => loud(log.records.slice(from)).filter((r) => fields(r).peer === peer);

  // Router 1 dies: router 0 logs the loss of 1 once, with the reason; its redials name the address only.
  const before = log.records.length;
  await mesh.kill(1);
  assert.ok(await mesh.runUntil(() => mesh.routers[0]!.connectionTo(p1) === undefined, 60_000), 'router 0 notices');
  await mesh.runUntil(() => false, 20_000); // twenty simulated seconds of redialling
  const down = mentions(p1, before);
  assert.equal(down.length, 1, JSON.stringify(down));
  assert.equal(down[0]!.level, 'info');
  assert.equal(down[0]!.msg, 'connection closed');
  assert.equal(fields(down[0]!).nickname, 'host1');
  assert.ok(typeof fields(down[0]!).reason === 'string' && (fields(down[0]!).reason as string).length > 0, 'a reason');
  await mesh.stop();
});

test('a burst of DNS queries logs nothing at info or above', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-logs-'));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
  const log = recordingLogger();
  const { store } = new FakeDnsMesh(1).peer(0);
  const server = new DnsServer({ store, logger: log }, { resolvConfPath: resolvConf, upstreamTimeoutMs: 100, upstreamPort: await deadPort() });
  try {
    const bound = await server.start({ udp: { host: '127.0.0.1', port: 0 } });
    server.add('web', '10.32.0.7', 'c1');
    const before = log.records.length;
    for (let i = 0; i < 200; i++) await udpAsk(bound.udp!.port, query(i % 2 === 0 ? 'web.loom.local' : `nope${i}.loom.local`));
    await udpAsk(bound.udp!.port, query('example.com')); // forwarded, SERVFAIL: still not a state change
    assert.equal(server.stats().queries, 201);
    assert.deepEqual(loud(log.records.slice(before)), []);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a burst of API requests (status, metrics) logs nothing at info or above', async () => {
  const log = recordingLogger();
  const server = new ApiServer({ logger: log }, { host: '127.0.0.1', port: 0, socket: testApiSocket() });
  registerRouterRoutes(server, new FakeRouter(), { onStop: () => {}, defaultMetrics: false });
  const { port } = await server.listen();
  try {
    const before = log.records.length;
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    for (let i = 0; i < 50; i++) assert.equal(await get(i % 2 === 0 ? '/status' : '/metrics'), 200);
    assert.deepEqual(loud(log.records.slice(before)), []);
  } finally {
    await server.close();
  }
});
