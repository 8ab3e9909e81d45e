import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { LoomError, recordingLogger } from '../../../src/core/index.js';
import type { PeerIdentity } from '../../../src/mesh/types.js';
import { startDaemon, type RouterFactory } from '../../../src/daemon/foreground.js';
import { parseLaunchOptions, type LaunchConfig } from '../../../src/daemon/options.js';
import { FakeRouter } from '../api/fake-router.js';
import { testApiSocket } from '../../helpers/api-socket.js';

function configIn(dir: string, overrides: Partial<LaunchConfig> = {}): LaunchConfig {
  // Port 0 for the API is not a user-facing value, so it is set after parsing.
  return { ...parseLaunchOptions({ stateDir: dir, nickname: 'n1', dataplane: 'off' }, ['10.9.9.9'], {}, 'h'), httpPort: 0, apiSocket: testApiSocket(), ...overrides };
}

test('startDaemon: identity from the state dir, router started before the API, /stop shuts everything down', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-fg-'));
  const logger = recordingLogger();
  try {
    let seen: { config: LaunchConfig; identity: PeerIdentity } | null = null;
    const router = new FakeRouter();
    const factory: RouterFactory = (config, identity) => {
      seen = { config, identity };
      return router;
    };
    const daemon = await startDaemon({ logger, createRouter: factory }, configIn(dir));
    assert.ok(seen);
    const s = seen as { config: LaunchConfig; identity: PeerIdentity };
    assert.equal(s.identity.name, readFileSync(join(dir, 'peer-name'), 'utf8').trim());
    assert.equal(s.identity.nickname, 'n1');
    assert.match(s.identity.uid, /^[0-9a-f]{16}$/);
    assert.deepEqual(s.config.peers, ['10.9.9.9']);
    assert.equal(readFileSync(join(dir, 'loom.pid'), 'utf8').trim(), String(process.pid));
    assert.deepEqual(router.calls, ['start']);

    const client = new ApiClient({ socket: daemon.apiAddress.socket! });
    assert.equal((await client.status()).nickname, 'host1'); // the fake's status
    await client.stop();
    await daemon.stopped;
    assert.deepEqual(router.calls, ['start', 'stop']);
    assert.ok(!existsSync(join(dir, 'loom.pid')));
    assert.equal(await client.healthy(), false);
    await daemon.stop(); // idempotent
    assert.deepEqual(router.calls, ['start', 'stop']);
    assert.ok(logger.records.some((r) => r.msg === 'router ready'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startDaemon: an API address in use undoes the router start and the pid file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-fg-'));
  const blocker = new FakeRouter();
  const first = await startDaemon({ logger: recordingLogger(), createRouter: () => blocker }, configIn(join(dir, 'one')));
  try {
    const router = new FakeRouter();
    await assert.rejects(
      startDaemon({ logger: recordingLogger(), createRouter: () => router }, configIn(join(dir, 'two'), { httpPort: first.apiAddress.port })),
      (e: unknown) => e instanceof LoomError && e.code === 'ERR_UNAVAILABLE',
    );
    assert.deepEqual(router.calls, ['start', 'stop']);
    assert.ok(!existsSync(join(dir, 'two', 'loom.pid')));
  } finally {
    await first.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startDaemon: a state dir held by another live process is ERR_CONFLICT before any router is built', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-fg-'));
  try {
    // Our parent (the test runner) is alive and is not us: it stands in for a running daemon.
    writeFileSync(join(dir, 'loom.pid'), `${process.ppid}\n`);
    let built = 0;
    await assert.rejects(
      startDaemon({ logger: recordingLogger(), createRouter: () => (built++, new FakeRouter()) }, configIn(dir)),
      (e: unknown) => e instanceof LoomError && e.code === 'ERR_CONFLICT',
    );
    assert.equal(built, 0);
    assert.equal(readFileSync(join(dir, 'loom.pid'), 'utf8').trim(), String(process.ppid));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startDaemon: a router that fails to start leaves no pid file and keeps the error code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-fg-'));
  try {
    const router = new FakeRouter();
    router.start = async () => {
      throw new LoomError('ERR_UNAVAILABLE', 'port 6783 in use');
    };
    await assert.rejects(startDaemon({ logger: recordingLogger(), createRouter: () => router }, configIn(dir)), (e: unknown) => e instanceof LoomError && e.code === 'ERR_UNAVAILABLE');
    assert.ok(!existsSync(join(dir, 'loom.pid')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
