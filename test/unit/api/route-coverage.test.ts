/**
 * Every route a running daemon registers has a contract (method, path, request and response
 * schemas) in one of the route tables the typed client is built from, and the client has a
 * method for each. The answers of the routes that take no input parse with their response
 * schemas: the schemas describe what the daemon really sends (a seeded IPAM, every subsystem).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteContracts } from '../../../src/api/contract.js';
import { API_ROUTE_TABLES, LoomClient } from '../../../src/client/index.js';
import { isReadOnlyMethod, READ_ONLY_METHODS } from '../../../src/api/route-table.js';
import { dnsReportSchema } from '../../../src/dns/api.js';
import { ipamStatusSchema } from '../../../src/ipam/api.js';
import { createSubsystems } from '../../../src/daemon/subsystems.js';
import { FakeClock, MemoryNetwork, peerNameOf, startHost } from '../ipam/daemon-host.js';

const key = (method: string, path: string): string => `${method} ${path}`;

/** The registered routes that no table describes, and the table routes nobody registered. */
function coverage(registered: ReadonlyArray<{ method: string; path: string }>, tables: Readonly<Record<string, RouteContracts>>): { uncovered: string[]; unregistered: string[] } {
  const contracts = new Set(Object.values(tables).flatMap((t) => Object.values(t).map((r) => key(r.method, r.path))));
  const served = new Set(registered.map((r) => key(r.method, r.path)));
  return { uncovered: [...served].filter((k) => !contracts.has(k)).sort(), unregistered: [...contracts].filter((k) => !served.has(k)).sort() };
}

test('every route of a running daemon has a contract, each contract is served, and the typed client has a method for each', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-routes-'));
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const host = await startHost(net, clock, join(dir, 'h1'), 1, { subsystems: createSubsystems(), raw: { ipallocInit: `seed=${peerNameOf(1)}` } });
  try {
    const registered = host.daemon.api.registeredRoutes();
    assert.ok(registered.length >= 20, `the daemon registered only ${registered.length} routes`);
    assert.deepEqual(coverage(registered, API_ROUTE_TABLES), { uncovered: [], unregistered: [] });

    const client: Record<string, unknown> = host.client as unknown as Record<string, unknown>;
    for (const [tableName, table] of Object.entries(API_ROUTE_TABLES)) {
      const typed = client[tableName] as Record<string, unknown> | undefined;
      assert.ok(typed, `LoomClient.${tableName}`);
      for (const routeName of Object.keys(table)) assert.equal(typeof typed[routeName], 'function', `LoomClient.${tableName}.${routeName}`);
    }

    // The answers parse with their schemas (the typed client throws ERR_PROTOCOL otherwise).
    const c = host.client;
    assert.deepEqual(await c.router.healthz(), { ok: true });
    const status = await c.router.status();
    assert.equal(status.name, peerNameOf(1));
    assert.match(await c.router.metrics(), /^# (HELP|TYPE) /m);
    const report = await c.router.report();
    assert.deepEqual(report.router.name, status.name);
    assert.equal(ipamStatusSchema.parse(report['ipam']).self, peerNameOf(1), 'the ipam section of /report is an IpamStatus');
    dnsReportSchema.parse(report['dns']);
    assert.equal((await c.ipam.status()).state, 'ready');
    await c.ipam.allocate({ containerId: 'coverage', spec: 'net:default' });
    assert.equal((await c.ipam.status()).allocations, 1);
    assert.ok(Array.isArray((await c.dns.status()).records));
    await c.dns.add({ name: 'web', address: '10.32.0.9' });
    assert.equal((await c.dns.status()).records.length, 1);
    assert.deepEqual(await c.containers.list(), { containers: [], attachments: [] });
    // The event log and the page: IPAM's claim is an event; the page and its files are served; the stream's first message is the report.
    assert.ok((await c.events.list({})).events.some((e) => e.kind === 'ipam-claimed'));
    assert.match(await c.events.page(), /<script type="module" src="\/ui\/app.js"><\/script>/);
    assert.match(await c.events.asset({ asset: 'model.js' }), /export function buildModel/);
    await assert.rejects(c.events.asset({ asset: '..%2Fpackage.json' }), { code: 'ERR_NOT_FOUND' });
    assert.equal((await c.events.stream()).router.name, status.name);
    assert.deepEqual(await c.router.connect({ peers: ['10.0.0.2'] }), { targets: ['10.0.0.2:6783'] });
    assert.deepEqual(await c.router.forget({ peers: ['10.0.0.2'] }), { targets: [] });
  } finally {
    await host.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the coverage check finds a route without a contract and a contract without a route (guards against a vacuous pass)', () => {
  const tables = { a: { one: { method: 'GET', path: '/one', response: API_ROUTE_TABLES.router.healthz.response } } } as const;
  assert.deepEqual(coverage([{ method: 'GET', path: '/one' }, { method: 'POST', path: '/two' }], tables), { uncovered: ['POST /two'], unregistered: [] });
  assert.deepEqual(coverage([], tables), { uncovered: [], unregistered: ['GET /one'] });
});

test('a new client has one typed client per table, built from the same tables', () => {
  const client = new LoomClient({ address: '127.0.0.1:1' });
  assert.deepEqual(Object.keys(API_ROUTE_TABLES).filter((name) => !(name in client)), []);
});

/**
 * The routes the read-only TCP listener serves: the GETs of the route tables. A route added with
 * another method is refused there without being listed anywhere; a new GET must be read-only (it
 * is served to every local user and, with a non-loopback --http-addr, further): add it here
 * knowingly.
 */
test('the TCP listener serves exactly the GET routes of the tables, all of them read-only', () => {
  const routes = Object.values(API_ROUTE_TABLES).flatMap((t) => Object.values(t as RouteContracts));
  const readOnly = routes.filter((r) => isReadOnlyMethod(r.method)).map((r) => key(r.method, r.path)).sort();
  assert.deepEqual(readOnly, [
    'GET /cni/attachments',
    'GET /cni/status',
    'GET /containers',
    'GET /dns/lookup',
    'GET /dns/status',
    'GET /docker',
    'GET /events',
    'GET /healthz',
    'GET /ipam/lookup',
    'GET /ipam/status',
    'GET /metrics',
    'GET /report',
    'GET /status',
    'GET /ui',
    'GET /ui/:asset',
    'GET /ui/events',
  ]);
  const mutating = routes.filter((r) => !isReadOnlyMethod(r.method));
  assert.ok(mutating.length >= 15, 'the changes are the rest (guards against a vacuous pass)');
  assert.ok(mutating.every((r) => r.method !== 'GET'));
  assert.deepEqual([...READ_ONLY_METHODS], ['GET']);
});
