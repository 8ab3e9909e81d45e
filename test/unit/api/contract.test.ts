/**
 * The typed client derived from a route table: one method per route, the request sent as the JSON
 * body (or, for GET, as query parameters), the answer parsed with the route's response schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineRoutes, typedClient } from '../../../src/api/contract.js';
import { ApiServer } from '../../../src/api/server.js';
import { LoomClient } from '../../../src/client/index.js';
import { CONTAINER_ROUTES } from '../../../src/containers/api.js';
import { LoomError, silentLogger } from '../../../src/core/index.js';

const isCode = (code: string) => (e: unknown) => e instanceof LoomError && e.code === code;

test('typed client: body for POST, query for GET, answers parsed; an answer off its schema is ERR_PROTOCOL', async () => {
  const server = new ApiServer({ logger: silentLogger }, { port: 0 });
  const seen: unknown[] = [];
  server.route('POST', '/echo', async (req) => {
    const body = await req.body();
    seen.push(body);
    return { json: { got: body } };
  });
  server.route('GET', '/find', (req) => {
    seen.push(Object.fromEntries(req.query));
    return { json: { got: Object.fromEntries(req.query) } };
  });
  server.route('GET', '/containers', () => ({ json: { containers: [{ id: 1 }], attachments: [] } }));
  const { port } = await server.listen();
  try {
    const routes = defineRoutes({
      echo: { method: 'POST', path: '/echo', request: z.object({ n: z.number() }), response: z.object({ got: z.object({ n: z.number() }) }) },
      find: { method: 'GET', path: '/find', request: z.object({ name: z.string(), more: z.string().optional() }), response: z.object({ got: z.record(z.string(), z.string()) }) },
    });
    const loom = new LoomClient({ address: `127.0.0.1:${port}` });
    const client = typedClient(loom, routes);
    assert.deepEqual(await client.echo({ n: 7 }), { got: { n: 7 } });
    assert.deepEqual(await client.find({ name: 'a b&c' }), { got: { name: 'a b&c' } });
    assert.deepEqual(seen, [{ n: 7 }, { name: 'a b&c' }]);
    await assert.rejects(loom.containers.list(), isCode('ERR_PROTOCOL'), 'a container id that is not a string');
    await assert.rejects(loom.containers.remove({ id: 'x' }), isCode('ERR_NOT_FOUND'), 'no such route here: the daemon error keeps its code');
  } finally {
    await server.close();
  }
});

test('every route table entry names a method and an absolute path; the container routes are the ones docs/API.md lists', () => {
  assert.deepEqual(
    Object.values(CONTAINER_ROUTES).map((r) => `${r.method} ${r.path}`),
    ['GET /containers', 'POST /containers', 'POST /containers/attach', 'POST /containers/detach', 'POST /containers/remove'],
  );
});
