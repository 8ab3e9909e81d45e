import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ApiServer } from '../../../src/api/server.js';
import { registerRouterRoutes } from '../../../src/api/router-routes.js';
import { FakeClock, silentLogger } from '../../../src/core/index.js';
import { DnsSubsystem } from '../../../src/dns/daemon.js';
import { registerDnsApi } from '../../../src/dns/daemon-api.js';
import { FakeRouter } from './fake-router.js';
import { testApiSocket } from '../../helpers/api-socket.js';

/** A request on the server's local socket (the TCP listener is read-only). */
function send(socket: string, method: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: '\0' + socket, method, path, agent: false, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: res.headers['content-type']?.startsWith('application/json') ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('DNS endpoints', () => {
  const router = new FakeRouter();
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
  const dns = new DnsSubsystem({ router, clock: new FakeClock(), logger: silentLogger });
  let socket = '';
  before(async () => {
    registerRouterRoutes(server, router, { defaultMetrics: false });
    registerDnsApi(server, dns);
    // The daemon adds each subsystem's report() as its section (src/daemon/subsystem-set.ts).
    server.registerReportSection(dns.name, () => dns.report());
    socket = (await server.listen()).socket!;
  });
  after(() => server.close());

  test('add, lookup, status, remove', async () => {
    const added = await send(socket, 'POST', '/dns/records', JSON.stringify({ name: 'web', address: '10.32.0.5', containerId: 'c1' }));
    assert.deepEqual(added, { status: 200, json: { added: true, record: { name: 'web.loom.local', address: '10.32.0.5', containerId: 'c1' } } });
    assert.equal((await send(socket, 'POST', '/dns/records', JSON.stringify({ name: 'web', address: '10.32.0.5', containerId: 'c1' }))).json.added, false);
    assert.deepEqual((await send(socket, 'GET', '/dns/lookup?name=WEB.loom.local.')).json, { name: 'WEB.loom.local.', addresses: ['10.32.0.5'] });
    const status = await send(socket, 'GET', '/dns/status');
    assert.equal(status.json.records.length, 1);
    assert.deepEqual(status.json, (await send(socket, 'GET', '/report')).json.dns);
    assert.deepEqual((await send(socket, 'POST', '/dns/records/remove', JSON.stringify({ containerId: 'c1' }))).json, { removed: 1 });
    const gone = await send(socket, 'GET', '/dns/lookup?name=web');
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error.code, 'ERR_NOT_FOUND');
  });

  test('bad requests are 400 ERR_INVALID_ARGUMENT', async () => {
    const cases: Array<[string, string, string | undefined]> = [
      ['POST', '/dns/records', JSON.stringify({ name: 'web' })],
      ['POST', '/dns/records', JSON.stringify({ name: 'web', address: '10.32.0.5', extra: 1 })],
      ['POST', '/dns/records', JSON.stringify({ name: 'web', address: '10.32.0.500' })],
      ['POST', '/dns/records', JSON.stringify({ name: 'x'.repeat(300), address: '10.32.0.5' })],
      ['POST', '/dns/records', JSON.stringify({ name: 'web', address: 7 })],
      ['POST', '/dns/records', '{not json'],
      ['POST', '/dns/records/remove', undefined],
      ['POST', '/dns/records/remove', JSON.stringify({ address: 'nope' })],
      ['GET', '/dns/lookup', undefined],
      ['GET', '/dns/lookup?name=bad%20name', undefined],
    ];
    for (const [method, path, body] of cases) {
      const r = await send(socket, method, path, body);
      assert.equal(r.status, 400, `${method} ${path} ${body}`);
      assert.equal(r.json.error.code, 'ERR_INVALID_ARGUMENT', `${method} ${path} ${body}`);
    }
  });

  test('/metrics has the router and the DNS metrics together', async () => {
    const text = (await send(socket, 'GET', '/metrics')).json as string;
    assert.match(text, /^loom_peers 3$/m);
    assert.match(text, /^loom_dns_records\{state="live"\} \d+$/m);
    assert.match(text, /^loom_dns_queries_total\{outcome="local"\} 0$/m);
    assert.match(text, /^loom_dns_listeners 0$/m);
  });
});
