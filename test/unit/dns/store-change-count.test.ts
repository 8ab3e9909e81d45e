/**
 * The store's change counter and the answer cache's use of it: every write, merge and mesh change
 * moves the count; a cache hit at an unchanged count reads no records; a hit after any change
 * reads them again, so the next reply is never stale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import { AnswerCache, type CachedAnswer, type RecordSource } from '../../../src/dns/answer.js';
import { DnsServer } from '../../../src/dns/server.js';
import { FakeDnsMesh } from './fake-mesh.js';

test('the change count moves on local writes, merges and mesh changes, not on reads or no-ops', () => {
  const mesh = new FakeDnsMesh(2);
  const a = mesh.peer(0).store;
  const b = mesh.peer(1).store;
  const at = (s: typeof a) => s.changeCount!;
  let before = at(a);
  a.add('web.loom.local', '10.32.0.1', 'c1');
  assert.notEqual(at(a), before, 'add');
  before = at(a);
  assert.equal(a.add('web.loom.local', '10.32.0.1', 'c1'), false);
  a.lookup('web.loom.local');
  a.reverseLookup('10.32.0.1');
  assert.equal(at(a), before, 'a repeated add and reads leave it');

  const bBefore = at(b);
  mesh.settle();
  assert.notEqual(at(b), bBefore, 'a merged broadcast');
  assert.deepEqual(b.lookup('web.loom.local'), ['10.32.0.1']);

  const bSeen = at(b);
  mesh.partition([[0], [1]]);
  assert.notEqual(at(b), bSeen, 'a mesh change (reachability hides records)');
  assert.deepEqual(b.lookup('web.loom.local'), []);

  before = at(a);
  assert.equal(a.removeContainer('c1'), 1);
  assert.notEqual(at(a), before, 'remove');
});

test('after stop the count is unknown (the mesh is not followed), after start it is kept again', () => {
  const mesh = new FakeDnsMesh(1);
  const store = mesh.peer(0).store;
  assert.equal(typeof store.changeCount, 'number');
  store.stop();
  assert.equal(store.changeCount, undefined);
  store.start();
  assert.equal(typeof store.changeCount, 'number');
  store.stop();
});

/** A record source that counts reads, with a change count the test moves by hand. */
function countingSource(addresses: string[]): RecordSource & { reads: number; changeCount: number | undefined } {
  return {
    reads: 0,
    changeCount: 1,
    lookup(this: { reads: number }) {
      this.reads++;
      return [...addresses];
    },
    reverseLookup(this: { reads: number }) {
      this.reads++;
      return [];
    },
  };
}

function entryFor(values: string[]): CachedAnswer {
  return { basis: { source: 'lookup', key: 'web.loom.local', values }, rcode: 0, template: Buffer.alloc(12), nameOffsets: [], addressOffsets: [] };
}

test('a cache hit at an unchanged count reads no records; a changed or unknown count reads them', () => {
  const addresses = ['10.32.0.1'];
  const source = countingSource(addresses);
  const cache = new AnswerCache(4);
  cache.set('k', entryFor(['10.32.0.1']));
  assert.ok(cache.get('k', source), 'first hit: checked against the records');
  assert.equal(source.reads, 1);
  assert.ok(cache.get('k', source));
  assert.ok(cache.get('k', source));
  assert.equal(source.reads, 1, 'same count: no reads');

  source.changeCount = 2;
  assert.ok(cache.get('k', source), 'same records at a new count: still a hit');
  assert.equal(source.reads, 2);

  source.changeCount = undefined;
  assert.ok(cache.get('k', source));
  assert.ok(cache.get('k', source));
  assert.equal(source.reads, 4, 'unknown count: every hit reads');

  addresses.push('10.32.0.2');
  source.changeCount = 3;
  assert.equal(cache.get('k', source), undefined, 'changed records at a new count: dropped');
  assert.equal(cache.size, 0);
});

test('through the server: a cached answer follows an add and a partition in the very next reply', async () => {
  const mesh = new FakeDnsMesh(2);
  const server = new DnsServer({ store: mesh.peer(0).store }, { resolvConfPath: '/nonexistent/resolv.conf' });
  const ask = async (): Promise<string[]> => {
    const raw = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'api.loom.local' }] });
    const reply = dnsPacket.decode((await server.answer(raw, false))!);
    return (reply.answers ?? []).map((a) => String((a as { data: unknown }).data)).sort();
  };
  mesh.peer(1).store.add('api.loom.local', '10.32.0.9', 'r1');
  mesh.settle();
  assert.deepEqual(await ask(), ['10.32.0.9']);
  assert.deepEqual(await ask(), ['10.32.0.9']);
  assert.ok(server.cacheStats().hits >= 1, 'the second reply came from the cache');
  mesh.peer(0).store.add('api.loom.local', '10.32.0.1', 'l1');
  assert.deepEqual(await ask(), ['10.32.0.1', '10.32.0.9'], 'a local add shows at once');
  mesh.partition([[0], [1]]);
  assert.deepEqual(await ask(), ['10.32.0.1'], 'an unreachable origin is hidden at once');
  mesh.heal();
  mesh.settle();
  assert.deepEqual(await ask(), ['10.32.0.1', '10.32.0.9']);
});
