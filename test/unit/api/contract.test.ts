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
import { testApiSocket } from '../../helpers/api-socket.js';

const isCode = (code: string) => (e: unknown) => e instanceof LoomError && e.code === code;

test('typed client: body for POST, query for GET, answers parsed; an answer off its schema is ERR_PROTOCOL', async () => {
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
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
  const { socket } = await server.listen();
  try {
    const routes = defineRoutes({
      echo: { method: 'POST', path: '/echo', request: z.object({ n: z.number() }), response: z.object({ got: z.object({ n: z.number() }) }) },
      find: { method: 'GET', path: '/find', request: z.object({ name: z.string(), more: z.string().optional() }), response: z.object({ got: z.record(z.string(), z.string()) }) },
    });
    const loom = new LoomClient({ socket: socket! });
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
    ['GET /containers', 'POST /containers', 'POST /containers/attach', 'POST /containers/detach', 'DELETE /containers/:id'],
  );
});

test('path parameters: the client puts :name fields in the path (percent-encoded), the server decodes them; an exact path wins only for its own method', async () => {
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
  const seen: unknown[] = [];
  server.route('DELETE', '/things/:id', async (req) => {
    seen.push({ params: req.params, body: await req.body() });
    return { json: { id: req.params['id'] } };
  });
  server.route('POST', '/things/special', () => ({ json: { special: true } }));
  const { socket } = await server.listen();
  try {
    const routes = defineRoutes({
      remove: { method: 'DELETE', path: '/things/:id', request: z.object({ id: z.string() }), response: z.object({ id: z.string() }) },
      special: { method: 'POST', path: '/things/special', response: z.object({ special: z.literal(true) }) },
    });
    const loom = new LoomClient({ socket: socket! });
    const client = typedClient(loom, routes);
    assert.deepEqual(await client.remove({ id: 'a b/c?d%' }), { id: 'a b/c?d%' }, 'reserved characters survive the trip');
    assert.deepEqual(await client.remove({ id: 'special' }), { id: 'special' }, 'DELETE /things/special is the pattern: the exact path has only POST');
    assert.deepEqual(await client.special(), { special: true });
    assert.deepEqual(seen, [
      { params: { id: 'a b/c?d%' }, body: undefined },
      { params: { id: 'special' }, body: undefined },
    ]);
    await assert.rejects(loom.call('DELETE', '/things/%E0%A4%A'), isCode('ERR_INVALID_ARGUMENT'), 'bad percent-encoding');
    await assert.rejects(loom.call('DELETE', '/things/'), isCode('ERR_NOT_FOUND'), 'a parameter is never empty');
    await assert.rejects(loom.call('DELETE', '/things/a/b'), isCode('ERR_NOT_FOUND'), 'a parameter is one segment');
    await assert.rejects(loom.call('GET', '/things/x'), (e) => isCode('ERR_NOT_FOUND')(e) && /use DELETE/.test((e as Error).message), 'the message names the accepted method');
    assert.deepEqual(
      server.registeredRoutes().filter((r) => r.path.startsWith('/things')),
      [
        { method: 'DELETE', path: '/things/:id' },
        { method: 'POST', path: '/things/special' },
      ],
    );
  } finally {
    await server.close();
  }
});
