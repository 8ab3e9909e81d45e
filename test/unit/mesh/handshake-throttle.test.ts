/**
 * The inbound handshake throttle (src/mesh/handshake-throttle.ts): the rules on their own, then
 * in routers over the in-memory network on a fake clock: a wrong-password peer that redials every
 * 100 ms, and a flood of garbage connections from one address, are throttled while an established
 * peer keeps its connection and a new peer with the password still joins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoomError } from '../../../src/core/errors.js';
import type { PeerUid } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import { HandshakeThrottle, sourceOf } from '../../../src/mesh/handshake-throttle.js';
import { Router } from '../../../src/mesh/router.js';
import { PORT, TestMesh, addressOf, peerNameOf, seededRandom, settle } from '../../helpers/test-mesh.js';

test('sourceOf takes the IP of ip:port and [v6]:port', () => {
  assert.equal(sourceOf('192.168.1.2:40000'), '192.168.1.2');
  assert.equal(sourceOf('[fd00::1]:6783'), 'fd00::1');
  assert.equal(sourceOf('10.0.0.1'), '10.0.0.1');
});

test('rate: a burst is admitted, then one handshake per refill interval', () => {
  const t = new HandshakeThrottle({ burst: 5, perSecond: 2 });
  const verdicts = Array.from({ length: 8 }, () => t.admit('10.0.0.1:1000', 0));
  assert.deepEqual(verdicts, ['admit', 'admit', 'admit', 'admit', 'admit', 'rate', 'rate', 'rate']);
  assert.equal(t.admit('10.0.0.1:1001', 400), 'rate', 'not a whole token after 400 ms at 2/s');
  assert.equal(t.admit('10.0.0.1:1002', 500), 'admit', 'one token after 500 ms');
  assert.equal(t.admit('10.0.0.2:1000', 500), 'admit', 'another address has its own bucket');
  assert.equal(t.stats().rateLimited, 4);
});

test('backoff: free failures, then refusal periods that double up to the cap; a success clears it', () => {
  const t = new HandshakeThrottle({ freeFailures: 3, baseMs: 1_000, capMs: 8_000 });
  const a = '10.0.0.9:5000';
  const periods = Array.from({ length: 8 }, () => t.failed(a, 'ERR_AUTH_FAILED', 0));
  assert.deepEqual(periods, [0, 0, 0, 1_000, 2_000, 4_000, 8_000, 8_000]);
  assert.equal(t.admit(a, 7_999), 'backoff');
  assert.equal(t.admit('10.0.0.9:5001', 8_000), 'admit', 'the period ends; the port does not matter');
  t.succeeded(a);
  assert.equal(t.failed(a, 'ERR_AUTH_FAILED', 9_000), 0, 'after a success the free failures start again');
  assert.equal(t.stats().backedOff, 1);
});

test('only failures no peer with our password causes are counted', () => {
  const t = new HandshakeThrottle({ freeFailures: 0 });
  for (const code of ['ERR_CONNECTION_CLOSED', 'ERR_SELF_CONNECTION', 'ERR_UNAVAILABLE'] as const) assert.equal(t.failed('10.0.0.1:1', code, 0), 0, code);
  assert.equal(t.admit('10.0.0.1:1', 0), 'admit');
  for (const code of ['ERR_AUTH_FAILED', 'ERR_PROTOCOL', 'ERR_VERSION_MISMATCH', 'ERR_FRAME_TOO_LARGE', 'ERR_HANDSHAKE_TIMEOUT'] as const) assert.ok(t.failed(`10.0.1.1:1`, code, 0) > 0, code);
  assert.equal(t.stats().failures, 5);
});

test('memory is bounded: 100,000 addresses leave at most maxSources records, the oldest forgotten first', () => {
  const t = new HandshakeThrottle({ maxSources: 1_000, freeFailures: 0 });
  t.failed('192.0.2.1:1', 'ERR_AUTH_FAILED', 0);
  for (let i = 0; i < 100_000; i++) t.admit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:1`, 1);
  assert.equal(t.stats().sources, 1_000);
  assert.equal(t.admit('192.0.2.1:1', 2), 'admit', 'forgotten: more lenient, never stricter');
});

test('bad options are refused with ERR_INVALID_ARGUMENT', () => {
  for (const o of [{ burst: 0 }, { perSecond: -1 }, { baseMs: 2_000, capMs: 1_000 }, { freeFailures: 1.5 }, { maxSources: 0 }]) {
    assert.throws(() => new HandshakeThrottle(o), (e: unknown) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(o));
  }
});

/** A router on the mesh's network at address index `i`, with its own password and a redial every 100 ms (it does not back off). */
function intruder(mesh: TestMesh, i: number, password: string | undefined): Router {
  return new Router(
    { transport: mesh.network.transport(addressOf(i)), clock: mesh.clock, logger: silentLogger, random: seededRandom(i) },
    {
      identity: { name: peerNameOf(i), nickname: `intruder${i}`, uid: (i + 1).toString(16).padStart(16, '0') as PeerUid },
      port: PORT,
      ...(password === undefined ? {} : { password }),
      backoff: { baseMs: 100, capMs: 100, minMs: 100 },
    },
  );
}

test('a wrong-password peer that redials every 100 ms is refused at accept after a few failures; the mesh is untouched', async () => {
  const mesh = new TestMesh(2, { router: { password: 'right' } });
  await mesh.start();
  mesh.connect(1, 0);
  assert.ok(await mesh.runUntil(() => mesh.converged(), 10_000));
  const [victim, friend] = mesh.routers as [Router, Router];
  const wrong = intruder(mesh, 5, 'wrong');
  const none = intruder(mesh, 6, undefined);
  await wrong.start();
  await none.start();
  wrong.connect([addressOf(0)]);
  none.connect([addressOf(0)]);
  const start = mesh.clock.now();
  await mesh.runUntil(() => false, 60_000);
  const stats = victim.status().stats;
  // Unthrottled, two intruders redialling every 100 ms would fail ~1,200 handshakes in a minute.
  // Throttled: 3 free failures each, then one per refusal period (1, 2, 4, 8, 16, 30 s).
  assert.ok(stats.handshakesFailed <= 2 * 12, `failed handshakes in a minute: ${stats.handshakesFailed}`);
  assert.ok(stats.handshakesThrottled >= 900, `connections refused at accept: ${stats.handshakesThrottled}`);
  assert.equal(mesh.clock.now() - start >= 60_000, true);
  assert.deepEqual(victim.status().peers.map((p) => p.name).sort(), [peerNameOf(0), peerNameOf(1)].sort(), 'no intruder joined');
  assert.ok(victim.status().connections.some((c) => c.peer?.name === friend.mesh.self && c.state === 'established'), 'the friend stays established');
  assert.equal(stats.terminations, 0, 'no connection ended');
  await wrong.stop();
  await none.stop();
  await mesh.stop();
});

test('a flood of garbage connections from one address is throttled; a peer with the password joins meanwhile', async () => {
  const mesh = new TestMesh(2, { router: { password: 'right' } });
  await mesh.start();
  mesh.connect(1, 0);
  assert.ok(await mesh.runUntil(() => mesh.converged(), 10_000));
  const victim = mesh.routers[0]!;
  const attacker = mesh.network.transport('10.99.0.1:1');
  const garbage = Buffer.alloc(64, 0x41);
  for (let i = 0; i < 2_000; i++) {
    const s = await attacker.dial(addressOf(0));
    s.onData(() => undefined);
    s.onClose(() => undefined);
    s.write(garbage);
    if (i % 100 === 0) await mesh.step(100);
  }
  const joiner = await mesh.addRouter();
  mesh.connect(joiner, 0);
  assert.ok(await mesh.runUntil(() => mesh.converged(), 20_000), 'the new peer joined during the flood');
  await settle();
  const stats = victim.status().stats;
  assert.ok(stats.handshakesThrottled >= 1_900, `garbage connections refused at accept: ${stats.handshakesThrottled}`);
  assert.ok(stats.handshakesFailed <= 40, `garbage handshakes that ran: ${stats.handshakesFailed}`);
  assert.equal(stats.terminations, 0);
  await mesh.stop();
});
