import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { runCli } from '../../../src/cli/run.js';
import { FakeClock, silentLogger, randomPeerName, randomPeerUid } from '../../../src/core/index.js';
import { startDaemon } from '../../../src/daemon/foreground.js';
import { parseLaunchOptions } from '../../../src/daemon/options.js';
import { Router } from '../../../src/mesh/router.js';
import { MemoryNetwork } from '../../../src/mesh/transport-memory.js';
import { testApiSocket } from '../../helpers/api-socket.js';

/** Advances the fake clock in small steps, letting promise-based protocol steps run between them. */
async function driveUntil(clock: FakeClock, done: () => boolean, limitMs: number): Promise<boolean> {
  for (let elapsed = 0; elapsed <= limitMs && !done(); elapsed += 10) {
    clock.advance(10);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return done();
}

test('daemon with a real Router over the in-memory transport: API, metrics and CLI agree with the mesh', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-real-'));
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const other = new Router(
    { transport: net.transport('10.0.0.2:6783'), clock, logger: silentLogger },
    { identity: { name: randomPeerName(), nickname: 'host2', uid: randomPeerUid() }, port: 6783 },
  );
  await other.start();
  const config = { ...parseLaunchOptions({ stateDir: dir, nickname: 'host1', password: undefined, dataplane: 'off' }, ['10.0.0.2'], {}, 'h'), httpPort: 0, apiSocket: testApiSocket() };
  const daemon = await startDaemon(
    {
      logger: silentLogger,
      createRouter: (cfg, identity, logger) =>
        new Router({ transport: net.transport('10.0.0.1:6783'), clock, logger }, { identity, port: cfg.port, discovery: cfg.discovery, connLimit: cfg.connLimit, peers: cfg.peers }),
    },
    config,
  );
  try {
    const client = new ApiClient({ socket: daemon.apiAddress.socket! });
    const established = await driveUntil(clock, () => daemon.router.status().connections.some((c) => c.state === 'established') && daemon.router.status().peers.length === 2, 30_000);
    assert.ok(established, JSON.stringify(daemon.router.status().connections));

    const status = await client.status();
    assert.equal(status.name, daemon.identity.name);
    assert.equal(status.nickname, 'host1');
    assert.deepEqual(status.targets, ['10.0.0.2:6783']);
    const conn = status.connections.find((c) => c.state === 'established');
    assert.equal(conn?.peer?.name, other.mesh.self);
    assert.equal(conn?.outbound, true);
    assert.deepEqual(status.peers.map((p) => p.nickname).sort(), ['host1', 'host2']);

    const metrics = await client.metrics();
    assert.match(metrics, /^loom_connections\{state="established",encrypted="false"\} 1$/m);
    assert.match(metrics, /^loom_peers 2$/m);
    assert.match(metrics, /^loom_gossip_messages_total\{direction="sent"\} [1-9]\d*$/m);

    let out = '';
    const ctx = { out: (t: string) => void (out += t), err: (t: string) => void (out += t), env: { LOOM_API_SOCKET: daemon.apiAddress.socket! }, node: [], entry: '', loadRouterFactory: async () => { throw new Error('unused'); } };
    assert.equal(await runCli(['status'], ctx), 0);
    assert.match(out, /^ {11}Name: [0-9a-f:]{17}\(host1\)$/m);
    assert.match(out, /^ {4}Connections: 1 \(1 established, /m);
    assert.match(out, /^ {10}Peers: 2 \(with 2 established connections\)$/m);

    // forget removes the target; the established connection stays (RouterApi contract).
    await client.forget(['10.0.0.2']);
    assert.deepEqual((await client.status()).targets, []);
    assert.equal((await client.status()).connections.filter((c) => c.state === 'established').length, 1);

    await client.stop();
    await daemon.stopped;
    assert.ok(!existsSync(join(dir, 'loom.pid')));
    assert.ok(await driveUntil(clock, () => other.status().connections.every((c) => c.state !== 'established'), 10_000), 'the other peer saw the goodbye');
  } finally {
    await daemon.stop();
    await other.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
