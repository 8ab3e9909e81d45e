import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerName } from '../../src/core/ids.js';
import type { GossipData, Gossiper } from '../../src/mesh/types.js';
import { addressOf, createTestMesh, peerNameOf, seededRandom } from '../helpers/test-mesh.js';

/** A gossiper that records what reaches it; its state is a set of strings. */
class SetGossip implements GossipData {
  constructor(readonly items: Set<string>) {}
  encode(): Uint8Array {
    return Buffer.from([...this.items].sort().join('\n'));
  }
  merge(other: GossipData): GossipData {
    return new SetGossip(new Set([...this.items, ...(other as SetGossip).items]));
  }
}
class RecordingGossiper implements Gossiper {
  readonly unicasts: Array<{ src: PeerName; text: string }> = [];
  readonly broadcasts: Array<{ src: PeerName; text: string }> = [];
  readonly state = new Set<string>();
  gossip(): GossipData | null {
    return new SetGossip(new Set(this.state));
  }
  onGossip(): GossipData | null {
    return null;
  }
  onGossipBroadcast(src: PeerName, update: Uint8Array): GossipData | null {
    const text = Buffer.from(update).toString();
    this.broadcasts.push({ src, text });
    const fresh = text.split('\n').filter((x) => x && !this.state.has(x));
    fresh.forEach((x) => this.state.add(x));
    return fresh.length ? new SetGossip(new Set(fresh)) : null;
  }
  onGossipUnicast(src: PeerName, msg: Uint8Array): void {
    this.unicasts.push({ src, text: Buffer.from(msg).toString() });
  }
}

test('100 routers on a sparse random graph converge to one topology with full routes', async () => {
  const mesh = await createTestMesh(100, { connLimit: 8, seed: 3 });
  const rand = seededRandom(42);
  for (let i = 1; i < 100; i++) mesh.connect(i, Math.floor(rand() * i));
  const ms = await mesh.timeToConverge(30_000);
  assert.notEqual(ms, null, 'converged within 30 s simulated');
  for (const r of mesh.routers) {
    const s = r.status();
    assert.equal(s.peers.length, 100);
    assert.equal(s.routes.unicast.length, 99);
    assert.ok(s.connections.filter((c) => c.state === 'established').length >= 1);
  }
  await mesh.stop();
});

test('a line of 8 routers delivers unicast end to end and broadcasts once to each peer', async () => {
  const mesh = await createTestMesh(8, { discovery: false });
  const gossipers = mesh.routers.map((r) => {
    const g = new RecordingGossiper();
    return { g, channel: r.newGossipChannel('test', g) };
  });
  for (let i = 0; i < 7; i++) mesh.connect(i, i + 1);
  assert.notEqual(await mesh.timeToConverge(10_000), null);
  assert.equal(mesh.routers[0]!.status().routes.unicast.find((u) => u.destination === peerNameOf(7))?.hops, 7);

  gossipers[0]!.channel.gossipUnicast(peerNameOf(7), Buffer.from('hello end'));
  gossipers[7]!.channel.gossipUnicast(peerNameOf(0), Buffer.from('hello start'));
  gossipers[3]!.channel.gossipBroadcast(new SetGossip(new Set(['from-3'])));
  assert.ok(await mesh.runUntilQuiet(5_000));
  assert.deepEqual(gossipers[7]!.g.unicasts, [{ src: peerNameOf(0), text: 'hello end' }]);
  assert.deepEqual(gossipers[0]!.g.unicasts, [{ src: peerNameOf(7), text: 'hello start' }]);
  for (let i = 1; i < 7; i++) assert.deepEqual(gossipers[i]!.g.unicasts, [], `relay ${i} does not consume unicasts`);
  gossipers.forEach(({ g }, i) => {
    if (i === 3) return;
    assert.deepEqual(g.broadcasts, [{ src: peerNameOf(3), text: 'from-3' }], `peer ${i} gets the broadcast exactly once`);
  });
  await mesh.stop();
});

test('ring: killing a middle router re-routes around it and it is removed from every topology', async () => {
  const mesh = await createTestMesh(6, { discovery: false });
  for (let i = 0; i < 6; i++) mesh.connect(i, (i + 1) % 6);
  assert.notEqual(await mesh.timeToConverge(10_000), null);
  const r2 = mesh.routers[2]!;
  assert.equal(r2.routes().nextHop(peerNameOf(4)), peerNameOf(3));
  await mesh.kill(3);
  assert.notEqual(await mesh.timeToConverge(10_000), null);
  assert.equal(r2.routes().nextHop(peerNameOf(4)), peerNameOf(1));
  assert.equal(r2.routes().unicast.get(peerNameOf(4))?.hops, 4);
  for (const r of mesh.live()) assert.equal(r.status().peers.some((p) => p.name === peerNameOf(3)), false);
  // Routers 2 and 4 keep retrying their target 3 with backoff.
  const row = r2.status().connections.find((c) => c.address === addressOf(3));
  assert.equal(row?.state, 'retrying');
  assert.ok(row?.errorCode);
  await mesh.stop();
});

test('simultaneous dials both ways resolve to one connection per pair, and it stays', async () => {
  const mesh = await createTestMesh(4, { discovery: false });
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) if (i !== j) mesh.connect(i, j);
  assert.notEqual(await mesh.timeToConverge(10_000), null);
  const snapshot = (): string[] =>
    mesh.routers.map((r) => {
      const s = r.status();
      return JSON.stringify([s.connections.map((c) => `${c.peer?.name}:${c.state}:${c.outbound}`).sort(), s.stats.terminations]);
    });
  const first = snapshot();
  await mesh.runUntil(() => false, 120_000);
  assert.deepEqual(snapshot(), first, 'no flapping over two simulated minutes');
  for (const r of mesh.routers) {
    const s = r.status();
    assert.equal(s.connections.length, 3, 'one connection per peer, nothing retrying');
    assert.ok(s.connections.every((c) => c.state === 'established'));
    // The kept connection is the one dialled by the smaller name.
    for (const c of s.connections) assert.equal(c.outbound, r.mesh.self < c.peer!.name);
  }
  await mesh.stop();
});

test('discovery: C knows only B, learns A from gossip and connects to it directly', async () => {
  const mesh = await createTestMesh(3);
  mesh.connect(1, 0);
  mesh.connect(2, 1);
  assert.ok(await mesh.runUntil(() => mesh.routers[2]!.connectionTo(peerNameOf(0)) !== undefined, 10_000));
  assert.ok(await mesh.runUntilQuiet(10_000));
  const c = mesh.routers[2]!.status();
  const toA = c.connections.find((x) => x.peer?.name === peerNameOf(0));
  assert.equal(toA?.state, 'established');
  assert.equal(toA?.address, addressOf(0));
  assert.equal(c.routes.unicast.find((u) => u.destination === peerNameOf(0))?.hops, 1);
  await mesh.stop();
});

test('--no-discovery: C never dials A', async () => {
  const mesh = await createTestMesh(3, { discovery: false });
  mesh.connect(1, 0);
  mesh.connect(2, 1);
  assert.notEqual(await mesh.timeToConverge(10_000), null);
  await mesh.runUntil(() => false, 60_000);
  assert.equal(mesh.routers[2]!.connectionTo(peerNameOf(0)), undefined);
  assert.equal(mesh.routers[2]!.routes().unicast.get(peerNameOf(0))?.hops, 2);
  await mesh.stop();
});

test('a restarted peer (new uid) wins over its previous incarnation everywhere', async () => {
  const mesh = await createTestMesh(4, { discovery: false });
  mesh.connect(1, 0);
  mesh.connect(2, 0);
  mesh.connect(3, 1);
  assert.notEqual(await mesh.timeToConverge(10_000), null);
  const before = mesh.routers[3]!.status().peers.find((p) => p.name === peerNameOf(0))!;
  await mesh.kill(0);
  const fresh = await mesh.restart(0);
  // 1 and 2 redial 0 (backoff). (Bumping past a surviving old entry is unit-tested in topology.test.ts.)
  assert.notEqual(await mesh.timeToConverge(120_000), null);
  for (const r of mesh.live()) {
    const entry = r.status().peers.find((p) => p.name === peerNameOf(0));
    assert.equal(entry?.uid, fresh.status().uid);
    assert.notEqual(entry?.uid, before.uid);
    assert.equal(r.routes().reachable.size, 4);
  }
  await mesh.stop();
});

/** Time from the heal to the first connection across it, after `partitionMs` of failed dials; null: none within a minute. */
async function redialAfterHeal(partitionMs: number, router: Parameters<typeof createTestMesh>[1] = {}): Promise<number | null> {
  const mesh = await createTestMesh(2, router);
  try {
    mesh.connect(1, 0);
    assert.notEqual(await mesh.timeToConverge(10_000), null);
    mesh.partition(0, 1);
    await mesh.runUntil(() => false, partitionMs);
    assert.equal(mesh.routers[1]!.connectionTo(peerNameOf(0)), undefined, 'the partition ended the connection');
    mesh.heal(0, 1);
    const healedAt = mesh.clock.now();
    const back = await mesh.runUntil(() => mesh.routers[1]!.connectionTo(peerNameOf(0)) !== undefined, 60_000);
    return back ? mesh.clock.now() - healedAt : null;
  } finally {
    await mesh.stop();
  }
}

test('a peer lost to a partition is redialled within 0.5 s of the heal, however long the partition (not after the growing backoff)', async () => {
  for (const partitionMs of [3_000, 120_000, 500_000]) {
    const ms = await redialAfterHeal(partitionMs);
    assert.ok(ms !== null && ms <= 600, `connected again ${String(ms)} ms after a ${partitionMs} ms partition`);
  }
  // Without the reconnect rule (window 0) the same seed waits out the exponential backoff.
  const old = await redialAfterHeal(120_000, { router: { reconnect: { windowMs: 0 } } });
  assert.ok(old === null || old > 2_000, `the plain backoff took ${String(old)} ms`);
});

test('after the reconnect window a lost peer falls back to the exponential backoff', async () => {
  const ms = await redialAfterHeal(120_000, { router: { reconnect: { windowMs: 30_000 } } });
  assert.ok(ms === null || ms > 2_000, `after the window the plain backoff applies (${String(ms)} ms)`);
});
