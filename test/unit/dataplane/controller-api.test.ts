import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiServer } from '../../../src/api/server.js';
import { LoomClient } from '../../../src/client/index.js';
import { registerContainerRoutes, type ContainerService } from '../../../src/containers/routes.js';
import { silentLogger } from '../../../src/core/logger.js';
import { LoomError } from '../../../src/core/errors.js';
import { parseCidr } from '../../../src/core/net.js';
import { formatContainers } from '../../../src/cli/commands/ps.js';
import { parseNetnsTarget } from '../../../src/cli/commands/attach.js';
import { testApiSocket } from '../../helpers/api-socket.js';

test('container routes: validated bodies reach the service; bad ones are ERR_INVALID_ARGUMENT', async () => {
  const calls: unknown[] = [];
  const record = { id: 'abc', name: 'web', pid: 42, pidStartTime: 1, unsharePid: 41, mac: '02:00:00:00:00:09', cidrs: ['10.0.0.2/24'], hostVeth: 'vlmabc', bridge: 'loom', createdAt: 'now' };
  const service: ContainerService = {
    run: async (r) => (calls.push(['run', r]), record as never),
    attach: async (t, c) => (calls.push(['attach', t, c]), { target: t, cidr: '10.0.0.3/24', mac: '02:00:00:00:00:0a', hostVeth: 'x' }),
    detach: async (id, c) => (calls.push(['detach', id, c]), record as never),
    remove: async (id) => {
      if (id === 'nope') throw new LoomError('ERR_NOT_FOUND', 'no container');
      return record as never;
    },
    list: () => [{ id: 'abc', name: 'web', mac: record.mac, cidrs: record.cidrs, pid: 42, alive: true, createdAt: 'now' }],
    attachments: () => [],
  };
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
  registerContainerRoutes(server, service);
  const { socket } = await server.listen();
  const client = new LoomClient({ socket: socket! });
  try {
    assert.deepEqual(await client.containers.run({ name: 'web', cidr: '10.0.0.2/24', cmd: ['sleep', '1'], env: { A: 'b' } }), record);
    await client.containers.attach({ netns: '/run/netns/x', cidr: '10.0.0.3/24' });
    await client.containers.detach({ id: 'web' });
    await client.containers.detach({ id: 'web', cidr: '010.0.0.2/24' });
    await client.containers.attach({ pid: 5 });
    assert.deepEqual(calls, [
      ['run', { name: 'web', address: { kind: 'static', cidr: parseCidr('10.0.0.2/24') }, cmd: ['sleep', '1'], env: { A: 'b' } }],
      ['attach', { path: '/run/netns/x' }, { kind: 'static', cidr: parseCidr('10.0.0.3/24') }],
      ['detach', 'web', undefined],
      ['detach', 'web', parseCidr('10.0.0.2/24')],
      ['attach', { pid: 5 }, { kind: 'default' }],
    ], 'addresses reach the service parsed');
    // Malformed bodies go raw on purpose: the typed client would not compile them.
    for (const [path, body] of [
      ['/containers', { name: 'web', cidr: '10.0.0.2/24', cmd: [] }],
      ['/containers', { name: 'web', cidr: '10.0.0.2/24', cmd: ['x'], extra: 1 }],
      ['/containers/attach', { pid: 5, netns: '/run/netns/x', cidr: '10.0.0.3/24' }],
      ['/containers/attach', { netns: 'relative', cidr: '10.0.0.3/24' }],
      ['/containers', { name: 'web', cidr: 'net:10.0.0.2/24', cmd: ['x'] }],
      ['/containers', { name: 'web', cidr: '10.0.0.2', cmd: ['x'] }],
      ['/containers/attach', { pid: 5, cidr: 'net:dflt' }],
      ['/containers/detach', { id: 'web', cidr: 'net:default' }],
      ['/containers/detach', { id: 'web', cidr: '10.0.0.2/0' }],
    ] as const) {
      await assert.rejects(client.call('POST', path, body), { code: 'ERR_INVALID_ARGUMENT' }, `${path} ${JSON.stringify(body)}`);
    }
    await assert.rejects(client.containers.remove({ id: 'nope' }), { code: 'ERR_NOT_FOUND' });
    assert.deepEqual(await client.containers.remove({ id: 'web' }), record, 'DELETE /containers/web');
    await assert.rejects(client.call('POST', '/containers/remove', { id: 'web' }), { code: 'ERR_NOT_FOUND' }, 'removal is DELETE /containers/:id now');
    const list = await client.containers.list();
    assert.equal(list.containers.length, 1);
    assert.match(formatContainers(list), /^ID\s+NAME\s+MAC\s+CIDR\s+PID\nabc\s+web\s+02:00:00:00:00:09\s+10\.0\.0\.2\/24\s+42\n$/);
  } finally {
    await server.close();
  }
});

test('loom attach target: a PID or an absolute netns path', () => {
  assert.deepEqual(parseNetnsTarget('1234'), { pid: 1234 });
  assert.deepEqual(parseNetnsTarget('/run/netns/x'), { netns: '/run/netns/x' });
  assert.throws(() => parseNetnsTarget('x'), { code: 'ERR_INVALID_ARGUMENT' });
});
