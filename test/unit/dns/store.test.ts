import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoomError } from '../../../src/core/errors.js';
import { FakeDnsMesh } from './fake-mesh.js';

test('local add, lookup, remove and removeContainer', () => {
  const { store } = new FakeDnsMesh(1).peer(0);
  assert.equal(store.add('Web.loom.local.', '10.32.0.1', 'c1'), true);
  assert.equal(store.add('web.loom.local', '10.32.0.1', 'c1'), false, 'adding the same record again changes nothing');
  store.add('web.loom.local', '10.32.0.2', 'c2');
  store.add('db.loom.local', '10.32.0.3', 'c2');
  assert.deepEqual(store.lookup('WEB.loom.local').sort(), ['10.32.0.1', '10.32.0.2']);
  assert.deepEqual(store.reverseLookup('10.32.0.3'), ['db.loom.local']);
  assert.equal(store.removeContainer('c2'), 2);
  assert.deepEqual(store.lookup('web.loom.local'), ['10.32.0.1']);
  assert.deepEqual(store.lookup('db.loom.local'), []);
  assert.equal(store.remove('web.loom.local', '10.32.0.9'), 0);
  assert.equal(store.remove('web.loom.local'), 1);
  assert.deepEqual(store.status(), []);
  assert.deepEqual(store.counts(), { live: 0, hidden: 0, tombstones: 3 });
  // Re-adding after removal outranks the tombstone.
  assert.equal(store.add('web.loom.local', '10.32.0.1', 'c1'), true);
  assert.equal(store.status()[0]?.version, 3);
});

test('bad input to the records API is ERR_INVALID_ARGUMENT', () => {
  const { store } = new FakeDnsMesh(1).peer(0);
  for (const [name, address, id] of [
    ['bad name!', '10.0.0.1', 'c1'],
    ['', '10.0.0.1', 'c1'],
    ['a'.repeat(64) + '.x', '10.0.0.1', 'c1'],
    ['web', '10.0.0.256', 'c1'],
    ['web', '::1', 'c1'],
    ['web', '10.0.0.1', '-bad'],
  ] as const) {
    assert.throws(() => store.add(name, address, id), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), `${name} ${address} ${id}`);
  }
});

test('records reach every peer by broadcast and show their origin in status', () => {
  const net = new FakeDnsMesh(3);
  net.peer(0).store.add('web.loom.local', '10.32.0.1', 'c1');
  net.peer(1).store.add('web.loom.local', '10.32.1.1', 'c7');
  assert.ok(net.settle());
  for (const p of net.peers) assert.deepEqual(p.store.lookup('web.loom.local').sort(), ['10.32.0.1', '10.32.1.1']);
  assert.deepEqual(
    net.peer(2).store.status().map((r) => [r.address, r.containerId, r.origin]),
    [
      ['10.32.0.1', 'c1', net.peer(0).name],
      ['10.32.1.1', 'c7', net.peer(1).name],
    ],
  );
});

test('a removal on container death reaches all 8 hosts within 1 s', () => {
  const net = new FakeDnsMesh(8, 20);
  net.peer(3).store.add('svc.loom.local', '10.32.3.1', 'dying');
  assert.ok(net.settle());
  assert.ok(net.peers.every((p) => p.store.lookup('svc.loom.local').length === 1));
  const start = net.clock.now();
  net.peer(3).store.removeContainer('dying');
  const gone = net.clock.runUntil(() => net.peers.every((p) => p.store.lookup('svc.loom.local').length === 0), 1000);
  assert.ok(gone, 'every host dropped the record');
  assert.ok(net.clock.now() - start <= 1000);
});

test('records of an unreachable peer are hidden, not deleted, and come back', () => {
  const net = new FakeDnsMesh(3);
  net.peer(2).store.add('far.loom.local', '10.32.2.1', 'c1');
  assert.ok(net.settle());
  net.partition([[0, 1], [2]]);
  assert.deepEqual(net.peer(0).store.lookup('far.loom.local'), []);
  assert.deepEqual(net.peer(0).store.status(), []);
  assert.deepEqual(net.peer(0).store.counts(), { live: 0, hidden: 1, tombstones: 0 });
  assert.deepEqual(net.peer(2).store.lookup('far.loom.local'), ['10.32.2.1'], 'the origin still sees its own record');
  net.heal();
  assert.ok(net.settle());
  assert.deepEqual(net.peer(0).store.lookup('far.loom.local'), ['10.32.2.1']);
});

test('a removal made during a partition wins after the heal', () => {
  const net = new FakeDnsMesh(4);
  net.peer(0).store.add('web.loom.local', '10.32.0.1', 'c1');
  net.peer(0).store.add('web.loom.local', '10.32.0.2', 'c2');
  assert.ok(net.settle());
  net.partition([[0, 1], [2, 3]]);
  net.peer(0).store.removeContainer('c1');
  assert.ok(net.settle());
  assert.deepEqual(net.peer(1).store.lookup('web.loom.local'), ['10.32.0.2']);
  // Across the partition the old record is still held (hidden), with the old version.
  assert.deepEqual(net.peer(2).store.counts(), { live: 0, hidden: 2, tombstones: 0 });
  net.heal();
  assert.ok(net.settle());
  for (const p of net.peers) assert.deepEqual(p.store.lookup('web.loom.local'), ['10.32.0.2'], p.name);
});

test('tombstones are collected after their lifetime, not before', () => {
  const net = new FakeDnsMesh(2, 5, { tombstoneLifetimeMs: 10_000, gcIntervalMs: 1_000 });
  for (const p of net.peers) p.store.start();
  net.peer(0).store.add('web.loom.local', '10.32.0.1', 'c1');
  net.clock.advance(100);
  net.peer(0).store.removeContainer('c1');
  net.clock.advance(100);
  assert.equal(net.peer(1).store.counts().tombstones, 1);
  net.clock.advance(9_000);
  assert.equal(net.peer(1).store.counts().tombstones, 1, 'kept within the lifetime');
  net.clock.advance(2_000);
  assert.equal(net.peer(0).store.counts().tombstones, 0);
  assert.equal(net.peer(1).store.counts().tombstones, 0);
  assert.equal(net.peer(0).store.gossip(), null);
  for (const p of net.peers) p.store.stop();
  assert.equal(net.clock.pending, 0, 'stop cancels the collector');
});

test('a collected tombstone does not let a stale live copy come back: the origin re-removes it', () => {
  const net = new FakeDnsMesh(3, 5, { tombstoneLifetimeMs: 10_000, gcIntervalMs: 1_000 });
  for (const p of net.peers) p.store.start();
  net.peer(0).store.add('web.loom.local', '10.32.0.1', 'c1');
  assert.ok(net.settle());
  net.partition([[0, 1], [2]]);
  net.peer(0).store.removeContainer('c1');
  net.clock.advance(20_000); // tombstones collected on 0 and 1; 2 still has the live record
  assert.equal(net.peer(0).store.counts().tombstones, 0);
  net.heal();
  assert.ok(net.settle());
  for (const p of net.peers) assert.deepEqual(p.store.lookup('web.loom.local'), [], p.name);
  for (const p of net.peers) p.store.stop();
});

test('after a restart that lost state the origin tombstones its stale records, and a re-add wins', () => {
  const net = new FakeDnsMesh(2);
  net.peer(0).store.add('web.loom.local', '10.32.0.1', 'c1');
  net.peer(0).store.add('old.loom.local', '10.32.0.9', 'c9');
  assert.ok(net.settle());
  const fresh = net.restart(0);
  fresh.add('web.loom.local', '10.32.0.1', 'c1'); // the container is still running: re-registered at version 1
  net.connectAll();
  assert.ok(net.settle());
  for (const p of net.peers) {
    assert.deepEqual(p.store.lookup('web.loom.local'), ['10.32.0.1'], `${p.name} keeps the running container`);
    assert.deepEqual(p.store.lookup('old.loom.local'), [], `${p.name} drops the dead one`);
  }
});

test('onGossip returns only what was new, and null the second time', () => {
  const net = new FakeDnsMesh(2);
  net.peer(0).store.add('web.loom.local', '10.32.0.1', 'c1');
  const full = net.peer(0).store.gossip();
  assert.ok(full);
  const news = net.peer(1).store.onGossip(full.encode());
  assert.ok(news);
  assert.equal(net.peer(1).store.onGossip(full.encode()), null);
  assert.throws(() => net.peer(1).store.onGossip(Uint8Array.from([9, 9])), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('status() lists records by name, then address, in plain code-unit order (no locale, no ICU collator)', () => {
  const { store } = new FakeDnsMesh(1).peer(0);
  // Orders where a locale's collation and code units disagree: '_' and '-' against digits and letters.
  for (const [name, address] of [
    ['web.loom.local', '10.32.0.9'],
    ['web.loom.local', '10.32.0.10'],
    ['a_b.loom.local', '10.32.0.1'],
    ['a1.loom.local', '10.32.0.2'],
    ['a-b.loom.local', '10.32.0.3'],
    ['ab.loom.local', '10.32.0.4'],
  ] as const) store.add(name, address, `c-${address}`);
  const rows = store.status().map((r) => `${r.name} ${r.address}`);
  assert.deepEqual(rows, ['a-b.loom.local 10.32.0.3', 'a1.loom.local 10.32.0.2', 'a_b.loom.local 10.32.0.1', 'ab.loom.local 10.32.0.4', 'web.loom.local 10.32.0.10', 'web.loom.local 10.32.0.9']);
  assert.deepEqual(rows, [...rows].sort(), 'the same order as a plain sort');
});
