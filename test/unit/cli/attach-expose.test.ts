/**
 * `loom attach [ADDRESS] TARGET`, `detach` of a namespace, `expose [ADDRESS]` and `hide`: what the
 * CLI sends, what the API routes accept, and what is printed, against a real ApiServer whose
 * services are recorders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiServer } from '../../../src/api/server.js';
import { registerContainerRoutes, type ContainerService } from '../../../src/containers/routes.js';
import { registerExposeRoutes } from '../../../src/daemon/host-address-routes.js';
import { attachBody } from '../../../src/cli/commands/attach.js';
import { detachBody } from '../../../src/cli/commands/detach.js';
import { runCli, EXIT_ERROR, EXIT_OK } from '../../../src/cli/run.js';
import { isLoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { parseCidr } from '../../../src/core/net.js';
import { cliContext } from '../../helpers/cli-context.js';
import { testApiSocket } from '../../helpers/api-socket.js';

const capture = cliContext;

test('attach arguments: one is the target (net:default), two are address then target', () => {
  assert.deepEqual(attachBody('4242', undefined), { cidr: '', pid: 4242 });
  assert.deepEqual(attachBody('/run/netns/a', undefined), { cidr: '', netns: '/run/netns/a' });
  assert.deepEqual(attachBody('10.32.0.9/12', '4242'), { cidr: '10.32.0.9/12', pid: 4242 });
  assert.deepEqual(attachBody('net:10.32.1.0/24', '/run/netns/a'), { cidr: 'net:10.32.1.0/24', netns: '/run/netns/a' });
  assert.throws(() => attachBody('10.32.0.9/12', 'web'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => attachBody('web', undefined), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.deepEqual(detachBody('web', undefined), { id: 'web' });
  assert.deepEqual(detachBody('4242', '10.32.0.9/12'), { pid: 4242, cidr: '10.32.0.9/12' });
  assert.deepEqual(detachBody('/run/netns/a', undefined), { netns: '/run/netns/a' });
  assert.deepEqual(detachBody('0123456789ab', undefined), { id: '0123456789ab' }, 'a 12-character id is never a PID');
});

test('attach/detach/expose/hide through the API: bodies reach the services, results are printed', async () => {
  const calls: unknown[] = [];
  const attachment = { target: { pid: 4242 }, cidr: '10.32.0.7/12', ipamId: 'attach:pid:4242:1', mac: '02:00:00:00:00:0a', hostVeth: 'vlmx' };
  const service: ContainerService = {
    run: async () => assert.fail('not called'),
    attach: async (t, c) => (calls.push(['attach', t, c]), attachment),
    // A whole record: the typed client parses answers with the route's response schema.
    detach: async (id, c) => (calls.push(['detach', id, c]), { id: 'abc', name: 'web', pid: 42, pidStartTime: 1, unsharePid: 41, mac: '02:00:00:00:00:09', cidrs: [], hostVeth: 'vlmabc', bridge: 'loom', createdAt: 'now' } as never),
    detachTarget: async (t, c) => (calls.push(['detachTarget', t, c]), [attachment]),
    remove: async () => assert.fail('not called'),
    list: () => [],
    attachments: () => [],
  };
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
  registerContainerRoutes(server, service);
  registerExposeRoutes(server, {
    expose: async (a) => (calls.push(['expose', a]), a === undefined ? '10.32.0.1/12' : '10.33.0.20/24'),
    hide: async (c) => (calls.push(['hide', c]), 1),
  });
  const addr = `@${(await server.listen()).socket!}`;
  try {
    const out = async (...argv: string[]) => {
      const c = capture(addr);
      assert.equal(await runCli(argv, c), EXIT_OK, `${argv.join(' ')}: ${c.stderr}`);
      return c.stdout;
    };
    assert.equal(await out('attach', '4242'), '10.32.0.7/12 02:00:00:00:00:0a\n');
    assert.equal(await out('attach', '10.32.0.9/12', '/run/netns/a'), '10.32.0.7/12 02:00:00:00:00:0a\n');
    assert.equal(await out('detach', '4242'), '10.32.0.7/12\n');
    assert.equal(await out('detach', 'web', '10.32.0.9/12'), 'abc\n');
    assert.equal(await out('expose'), '10.32.0.1/12\n');
    assert.equal(await out('expose', 'net:10.33.0.0/24'), '10.33.0.20/24\n');
    assert.equal(await out('hide', '10.33.0.20/24'), '10.33.0.20/24\n');
    assert.deepEqual(calls, [
      ['attach', { pid: 4242 }, { kind: 'default' }],
      ['attach', { path: '/run/netns/a' }, { kind: 'static', cidr: parseCidr('10.32.0.9/12') }],
      ['detachTarget', { pid: 4242 }, undefined],
      ['detach', 'web', parseCidr('10.32.0.9/12')],
      ['expose', undefined],
      ['expose', 'net:10.33.0.0/24'],
      ['hide', '10.33.0.20/24'],
    ]);
    const bad = capture(addr);
    // (a bare name is a Docker container now: see test/unit/docker/cli-attach.test.ts)
    assert.equal(await runCli(['attach', '10.32.0.9/12', 'no such target!'], bad), EXIT_ERROR);
    assert.match(bad.stderr, /ERR_INVALID_ARGUMENT/);
    assert.equal(calls.length, 7, 'a bad target never reaches the daemon');
  } finally {
    await server.close();
  }
});

test('expose without the host-address subsystem is ERR_UNAVAILABLE; malformed bodies are ERR_INVALID_ARGUMENT', async () => {
  const server = new ApiServer({ logger: silentLogger }, { port: 0, socket: testApiSocket() });
  registerExposeRoutes(server, null);
  const addr = `@${(await server.listen()).socket!}`;
  try {
    const c = capture(addr);
    assert.equal(await runCli(['expose'], c), EXIT_ERROR);
    assert.match(c.stderr, /ERR_UNAVAILABLE: expose needs the kernel data plane/);
    const h = capture(addr);
    assert.equal(await runCli(['hide', 'x'.repeat(70)], h), EXIT_ERROR);
    assert.match(h.stderr, /ERR_INVALID_ARGUMENT/);
  } finally {
    await server.close();
  }
});
