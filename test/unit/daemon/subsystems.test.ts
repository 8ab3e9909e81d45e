import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { LoomError, recordingLogger, silentLogger } from '../../../src/core/index.js';
import { startDaemon } from '../../../src/daemon/foreground.js';
import { parseLaunchOptions, type LaunchConfig, type RawLaunchOptions } from '../../../src/daemon/options.js';
import type { Subsystem, SubsystemFactory } from '../../../src/daemon/subsystem.js';
import { SubsystemSet } from '../../../src/daemon/subsystem-set.js';
import { createSubsystems } from '../../../src/daemon/subsystems.js';
import { dnsSubsystemOf } from '../../helpers/subsystem-of.js';
import { FakeRouter } from '../api/fake-router.js';
import { testApiSocket } from '../../helpers/api-socket.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function configIn(dir: string, httpPort: number, raw: RawLaunchOptions = {}): LaunchConfig {
  return { ...parseLaunchOptions({ stateDir: dir, nickname: 'n1', dataplane: 'off', apiSocket: testApiSocket(), ...raw }, [], {}, 'h'), httpPort, httpAddr: `127.0.0.1:${httpPort}` };
}

/**
 * A subsystem that writes what it sees into `events`: at start, whether the router runs and
 * whether the API already answers (it must not); at stop, whether the API still answers.
 */
function probe(name: string, events: string[], router: FakeRouter, client: () => ApiClient, fail = false): SubsystemFactory {
  return {
    name,
    create({ api, subsystems }) {
      events.push(`create ${name} routerStarted=${router.calls.includes('start')} sees=${['a', 'b', 'c'].filter((n) => subsystems.get(n)).join('')}`);
      api.route('GET', `/${name}`, () => ({ json: { name } }));
      api.registerReportSection(name, () => ({ ok: true }));
      const subsystem: Subsystem = {
        name,
        async start() {
          events.push(`start ${name} routerStarted=${router.calls.includes('start')} apiUp=${await client().healthy()}`);
          if (fail) throw new LoomError('ERR_OS_COMMAND', `${name} could not start`);
        },
        async stop() {
          events.push(`stop ${name} apiUp=${await client().healthy()} routerStopped=${router.calls.includes('stop')}`);
        },
      };
      return subsystem;
    },
  };
}

test('subsystems: built before the router starts, started in order before the API listens, stopped in reverse after the API closes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-sub-'));
  const port = await freePort();
  const apiSocket = testApiSocket();
  const client = () => new ApiClient({ socket: apiSocket, timeoutMs: 2000 });
  const events: string[] = [];
  const router = new FakeRouter();
  const off: SubsystemFactory = { name: 'c', create: () => (events.push('create c (disabled)'), null) };
  const daemon = await startDaemon(
    { logger: silentLogger, createRouter: () => router, subsystems: [probe('a', events, router, client), off, probe('b', events, router, client)] },
    configIn(dir, port, { apiSocket }),
  );
  try {
    assert.deepEqual(events, [
      'create a routerStarted=false sees=',
      'create c (disabled)',
      'create b routerStarted=false sees=a',
      'start a routerStarted=true apiUp=false',
      'start b routerStarted=true apiUp=false',
    ]);
    assert.ok(daemon.subsystems.get('a') && daemon.subsystems.get('b'));
    assert.equal(daemon.subsystems.get('c'), undefined);
    const report = await client().report();
    assert.deepEqual([report['a'], report['b'], report['c']], [{ ok: true }, { ok: true }, undefined]);
    assert.deepEqual(await client().call('GET', '/b'), { name: 'b' });

    events.length = 0;
    await client().stop();
    await daemon.stopped;
    assert.deepEqual(events, ['stop b apiUp=false routerStopped=false', 'stop a apiUp=false routerStopped=false']);
    assert.deepEqual(router.calls, ['start', 'stop']);
    await daemon.stop();
    assert.equal(events.length, 2, 'stop is idempotent');
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('subsystems: one failing to start stops those started (reverse), the router and the pid file; its code is kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-sub-'));
  const port = await freePort();
  const apiSocket = testApiSocket();
  const client = () => new ApiClient({ socket: apiSocket, timeoutMs: 2000 });
  const events: string[] = [];
  const router = new FakeRouter();
  const logger = recordingLogger();
  try {
    await assert.rejects(
      startDaemon(
        { logger, createRouter: () => router, subsystems: [probe('a', events, router, client), probe('b', events, router, client, true), probe('c', events, router, client)] },
        configIn(dir, port, { apiSocket }),
      ),
      (e: unknown) => e instanceof LoomError && e.code === 'ERR_OS_COMMAND',
    );
    assert.deepEqual(events.filter((e) => !e.startsWith('create')), [
      'start a routerStarted=true apiUp=false',
      'start b routerStarted=true apiUp=false',
      'stop b apiUp=false routerStopped=false',
      'stop a apiUp=false routerStopped=false',
    ]);
    assert.deepEqual(router.calls, ['start', 'stop']);
    assert.ok(!existsSync(join(dir, 'loom.pid')));
    assert.equal(await client().healthy(), false);
    assert.ok(logger.records.some((r) => r.msg === 'subsystem failed to start' && r.bindings['component'] === 'daemon'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SubsystemSet: a name listed twice, or a factory building another name, is refused before anything starts', () => {
  const components = { router: new FakeRouter(), api: null as never, logger: silentLogger, clock: null as never, stateDir: null as never, config: null as never };
  const plain = (name: string, builds = name): SubsystemFactory => ({ name, create: () => ({ name: builds, start: async () => {}, stop: async () => {} }) });
  assert.throws(() => new SubsystemSet([plain('x'), plain('x')], components), (e: unknown) => e instanceof LoomError && e.code === 'ERR_CONFLICT');
  assert.throws(() => new SubsystemSet([plain('x', 'y')], components), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INTERNAL');
  assert.deepEqual(new SubsystemSet([plain('x'), plain('y')], components).names(), ['x', 'y']);
});

test('the default list runs DNS: report section, /dns routes and loom_dns metrics; --no-dns leaves all of them out', async () => {
  assert.ok(createSubsystems().some((f) => f.name === 'dns'));
  const dir = mkdtempSync(join(tmpdir(), 'loom-sub-'));
  try {
    const router = new FakeRouter();
    const daemon = await startDaemon({ logger: silentLogger, createRouter: () => router }, configIn(join(dir, 'on'), 0));
    try {
      const client = new ApiClient({ socket: daemon.apiAddress.socket! });
      assert.ok(router.channels.has('dns'), 'gossip channel opened');
      assert.ok(dnsSubsystemOf(daemon.subsystems));
      await client.dnsAdd({ name: 'web', address: '10.32.0.9' });
      const report = await client.report();
      assert.deepEqual((report['dns'] as { records: Array<{ name: string }> }).records.map((r) => r.name), ['web.loom.local']);
      const metrics = await client.metrics();
      assert.match(metrics, /^loom_dns_records\{state="live"\} 1$/m);
      assert.match(metrics, /^loom_peers 3$/m, 'the router metrics are still there');
    } finally {
      await daemon.stop();
    }

    const offRouter = new FakeRouter();
    const off = await startDaemon({ logger: silentLogger, createRouter: () => offRouter }, configIn(join(dir, 'off'), 0, { dns: false }));
    try {
      const client = new ApiClient({ socket: off.apiAddress.socket! });
      assert.ok(!offRouter.channels.has('dns'), 'no dns gossip channel with --no-dns');
      assert.equal((await client.report())['dns'], undefined);
      await assert.rejects(client.dnsStatus(), (e: unknown) => e instanceof LoomError && e.code === 'ERR_NOT_FOUND');
      assert.doesNotMatch(await client.metrics(), /loom_dns_/);
    } finally {
      await off.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
