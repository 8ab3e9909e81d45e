/**
 * The light client (src/api/light-client.ts): an answer from a daemon of the same build is taken
 * as it is, one from another build (or an unbuilt tree) is checked with the route's schema, as
 * the full typed client does; requests travel exactly as the full client sends them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoomError } from '../../../src/core/errors.js';
import { UNBUILT } from '../../../src/core/build-id.js';
import { lightClient } from '../../../src/api/light-client.js';
import { typedClient, type ApiTransport } from '../../../src/api/contract.js';
import type { JsonAnswer } from '../../../src/api/transport.js';
import { CONTAINER_ROUTES } from '../../../src/containers/api.js';
import { CONTAINER_PATHS } from '../../../src/containers/api-paths.js';

const RECORD = { id: 'abc', name: 'web', pid: 42, pidStartTime: 7, unsharePid: 41, mac: '02:00:00:00:00:01', cidrs: ['10.32.0.5/12'], hostVeth: 'vlmabc', bridge: 'loom', createdAt: '2026-12-07T00:00:00.000Z' };

/** A daemon stand-in: records what was asked, answers `body` named as build `build`. */
function fakeDaemon(body: unknown, build: string | undefined) {
  const asked: string[] = [];
  let loads = 0;
  const transport = {
    address: '@test',
    async callJson(method: string, path: string, request?: unknown): Promise<JsonAnswer> {
      asked.push(`${method} ${path} ${JSON.stringify(request) ?? '-'}`);
      return { body, build };
    },
  };
  const loadRoutes = async () => {
    loads++;
    return CONTAINER_ROUTES;
  };
  return { transport, asked, loads: () => loads, loadRoutes };
}

test('the same build: the answer is taken as it is and the schemas are never loaded', async () => {
  const d = fakeDaemon({ ...RECORD, extra: 'kept: not checked' }, 'b1');
  const client = lightClient<typeof CONTAINER_ROUTES>(d.transport, CONTAINER_PATHS, d.loadRoutes, 'b1');
  const record = await client.run({ name: 'web', cmd: ['sleep', '1'] });
  assert.equal(record.id, 'abc');
  assert.equal((record as unknown as { extra?: string }).extra, 'kept: not checked', 'not parsed: proves the unchecked path ran');
  assert.equal(d.loads(), 0);
  assert.deepEqual(d.asked, ['POST /containers {"name":"web","cmd":["sleep","1"]}']);
});

test('another build: the answer is checked with the route schema; a wrong one is ERR_PROTOCOL naming the route', async () => {
  const good = fakeDaemon({ ...RECORD, extra: 'dropped by the schema' }, 'old-build');
  const record = await lightClient<typeof CONTAINER_ROUTES>(good.transport, CONTAINER_PATHS, good.loadRoutes, 'b1').remove({ id: 'web/1' });
  assert.equal(record.name, 'web');
  assert.equal((record as unknown as { extra?: string }).extra, undefined, 'parsed by the schema');
  assert.equal(good.loads(), 1);
  assert.deepEqual(good.asked, ['DELETE /containers/web%2F1 -'], 'the id goes in the path, percent-encoded');

  const bad = fakeDaemon({ containers: 'not a list' }, undefined);
  await assert.rejects(lightClient<typeof CONTAINER_ROUTES>(bad.transport, CONTAINER_PATHS, bad.loadRoutes, 'b1').list(), (e) => isLoomError(e, 'ERR_PROTOCOL') && /GET \/containers/.test(e.message) && /@test/.test(e.message));
});

test('an unbuilt tree trusts no answer, not even one naming "unbuilt"', async () => {
  const d = fakeDaemon({ containers: 'not a list' }, UNBUILT);
  await assert.rejects(lightClient<typeof CONTAINER_ROUTES>(d.transport, CONTAINER_PATHS, d.loadRoutes, UNBUILT).list(), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('every route goes out as the full typed client sends it (same method, path, body)', async () => {
  const light = fakeDaemon(RECORD, 'b1');
  const fullAsked: string[] = [];
  const full: ApiTransport = {
    address: '@test',
    call<T>(method: string, path: string, body?: unknown): Promise<T> {
      fullAsked.push(`${method} ${path} ${JSON.stringify(body) ?? '-'}`);
      return Promise.resolve(RECORD as T);
    },
    callText: () => Promise.reject(new Error('not used')),
    firstStreamMessage: () => Promise.reject(new Error('not used')),
  };
  const a = lightClient<typeof CONTAINER_ROUTES>(light.transport, CONTAINER_PATHS, light.loadRoutes, 'b1');
  const b = typedClient(full, CONTAINER_ROUTES);
  for (const c of [a, b]) {
    await c.list().catch(() => undefined);
    await c.run({ name: 'x', cidr: 'net:default', cmd: ['true'], env: { A: '1' } });
    await c.attach({ pid: 99 }).catch(() => undefined);
    await c.detach({ id: 'x' }).catch(() => undefined);
    await c.remove({ id: 'x y' });
  }
  assert.deepEqual(light.asked, fullAsked);
  assert.equal(Object.keys(CONTAINER_PATHS).sort().join(), Object.keys(CONTAINER_ROUTES).sort().join(), 'one path per route');
});
