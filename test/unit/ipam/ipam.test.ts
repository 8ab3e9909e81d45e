import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LoomError, isLoomError } from '../../../src/core/errors.js';
import { formatAddress, parseAddress, parseCidr } from '../../../src/ipam/cidr.js';
import { Ring } from '../../../src/ipam/ring.js';
import { encodeRing } from '../../../src/ipam/ring-codec.js';
import { IpamNet, peerName } from './harness.js';
import { MemoryStore } from '../../../src/ipam/store.js';
import { SAVE_RETRY_MS } from '../../../src/ipam/context.js';

const [A, B, C, D] = [1, 2, 3, 4].map(peerName) as [ReturnType<typeof peerName>, ReturnType<typeof peerName>, ReturnType<typeof peerName>, ReturnType<typeof peerName>];

function seeded(range: string, seeds = [A, B, C], extra: Record<string, unknown> = {}): IpamNet {
  const net = new IpamNet({ record: true });
  for (const s of seeds) net.add(s, { range, bootstrap: `seed=${seeds.join(',')}`, ...extra });
  net.settle();
  return net;
}

const codes = (net: IpamNet): string[] =>
  net.records.map((r) => (typeof r.obj === 'object' && r.obj !== null && 'code' in r.obj ? String((r.obj).code) : '')).filter(Boolean);

test('seeds agree on the split without talking, and are ready at once', () => {
  const net = new IpamNet();
  for (const s of [A, B, C]) net.add(s, { range: '10.32.0.0/12', bootstrap: `seed=${C},${A},${B}` });
  for (const s of [A, B, C]) assert.equal(net.ipam(s).stateText(), 'ready');
  const rings = [A, B, C].map((s) => net.ipam(s).ringSnapshot());
  assert.ok(rings[0]!.equals(rings[1]!) && rings[1]!.equals(rings[2]!));
  const status = net.ipam(A).status();
  assert.equal(status.range, '10.32.0.0/12');
  assert.deepEqual(status.peers.map((p) => p.owned), [349525, 349525, 349526]);
  assert.deepEqual(status.unreachableOwners, []);
});

test('a tiny range hands out every address except network and broadcast, then ERR_EXHAUSTED', async () => {
  const net = seeded('10.9.0.0/29', [A]);
  const got: string[] = [];
  for (let i = 0; i < 6; i++) got.push((await net.ipam(A).allocate(`c${i}`)).address);
  assert.deepEqual(got.sort(), ['10.9.0.1', '10.9.0.2', '10.9.0.3', '10.9.0.4', '10.9.0.5', '10.9.0.6']);
  await assert.rejects(net.ipam(A).allocate('c6'), (e) => isLoomError(e, 'ERR_EXHAUSTED'));
});

test('allocate is idempotent per container; release keeps the address for the grace period', async () => {
  const net = seeded('10.9.0.0/29', [A], { releaseGraceMs: 30_000 });
  const ipam = net.ipam(A);
  const first = await ipam.allocate('web');
  assert.deepEqual(await ipam.allocate('web'), first);
  assert.equal(first.cidr, `${first.address}/29`);
  for (let i = 0; i < 5; i++) await ipam.allocate(`other${i}`);
  assert.equal(ipam.release('web'), 1);
  assert.equal(ipam.release('web'), 0, 'release is idempotent');
  assert.deepEqual(ipam.lookup('web'), []);
  await assert.rejects(ipam.allocate('newcomer'), (e) => isLoomError(e, 'ERR_EXHAUSTED'), 'a released address is not reused within the grace period');
  net.clock.advance(10_000);
  assert.deepEqual(await ipam.allocate('web'), first, 'a quick restart keeps its address');
  ipam.release('web');
  net.clock.advance(30_000);
  assert.deepEqual(await ipam.allocate('newcomer'), { ...first, containerId: 'newcomer' });
});

test('allocation in a subnet never returns the subnet network or broadcast address', async () => {
  const net = seeded('10.32.0.0/12', [A]);
  const got = new Set<string>();
  for (let i = 0; i < 14; i++) got.add((await net.ipam(A).allocate(`c${i}`, '10.40.0.16/28')).cidr);
  assert.equal(got.size, 14);
  assert.ok(!got.has('10.40.0.16/28') && !got.has('10.40.0.31/28'));
  for (const c of got) assert.ok(c.endsWith('/28'));
  await assert.rejects(net.ipam(A).allocate('x', '10.40.0.16/28'), (e) => isLoomError(e, 'ERR_EXHAUSTED'));
  await assert.rejects(net.ipam(A).allocate('x', '192.168.0.0/24'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  await assert.rejects(net.ipam(A).allocate('bad id!'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
});

test('a peer without space gets a donation and all peers agree on the new ring', async () => {
  const net = seeded('10.32.0.0/24', [A, B]);
  const obs = net.add(C, { range: '10.32.0.0/24', bootstrap: 'observer' });
  assert.equal(obs.stateText(), 'idle');
  net.deliverAll();
  assert.equal(obs.stateText(), 'ready');
  const p = obs.allocate('c1');
  net.deliverAll();
  const got = await p;
  assert.equal(net.ipam(A).ringSnapshot().ownerOf(parseAddress(got.address)), C);
  net.settle();
  const rings = [A, B, C].map((s) => net.ipam(s).ringSnapshot());
  assert.ok(rings[0]!.equals(rings[1]!) && rings[0]!.equals(rings[2]!));
  assert.ok(obs.status().peers.some((x) => x.name === C && x.owned > 0 && x.inUse === 1));
  assert.equal(net.ipam(A).status().peers.find((x) => x.name === C)?.inUse, 1, 'stats reach the other peers');
});

test('donations continue until every address of the range is in use, without duplicates', async () => {
  const net = seeded('10.7.0.0/27', [A, B]);
  net.add(C, { range: '10.7.0.0/27', bootstrap: 'observer' });
  net.settle();
  const all = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const peer = [A, B, C][i % 3]!;
    const p = net.ipam(peer).allocate(`c${i}`);
    net.deliverAll();
    all.add((await p).address);
  }
  assert.equal(all.size, 30);
  const p = net.ipam(C).allocate('one-too-many');
  net.deliverAll();
  await assert.rejects(p, (e) => isLoomError(e, 'ERR_EXHAUSTED'));
});

test('claim honours free addresses in our space, refuses others with ERR_CONFLICT', async () => {
  const net = seeded('10.32.0.0/24', [A, B]);
  const a = net.ipam(A);
  assert.equal(a.claim('c1', '10.32.0.5/24').address, '10.32.0.5');
  assert.equal(a.claim('c1', '10.32.0.5/24').address, '10.32.0.5', 'idempotent');
  assert.deepEqual(await a.allocate('c1', '10.32.0.0/24'), a.lookup('c1')[0]);
  assert.throws(() => a.claim('c2', '10.32.0.5/24'), (e) => isLoomError(e, 'ERR_CONFLICT'));
  assert.throws(() => a.claim('c3', '10.32.0.200/24'), (e) => isLoomError(e, 'ERR_CONFLICT'), 'owned by B');
  assert.throws(() => a.claim('c4', '10.32.0.0/24'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), 'network address');
  assert.throws(() => a.claim('c4', '10.32.0.255'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), 'broadcast address');
  assert.throws(() => a.claim('c4', '11.0.0.1/24'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  const next = await a.allocate('c5', '10.32.0.0/24');
  assert.notEqual(next.address, '10.32.0.5');
});

test('a ring of another range is rejected with ERR_RANGE_MISMATCH, logged, and changes nothing', () => {
  const net = seeded('10.32.0.0/24', [A]);
  const before = net.ipam(A).ringSnapshot();
  const other = encodeRing(Ring.initial(parseCidr('10.40.0.0/24'), [B]));
  assert.equal(net.ipam(A).onGossipBroadcast(B, other), null);
  assert.ok(net.ipam(A).ringSnapshot().equals(before));
  assert.ok(codes(net).includes('ERR_RANGE_MISMATCH'));
});

test('malformed ring bytes are logged as ERR_PROTOCOL and change nothing', () => {
  const net = seeded('10.32.0.0/24', [A]);
  const ipam = net.ipam(A);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      // Taken per case: random bytes sent as a unicast below can be a well-formed request from B
      // (a donation, say) that rightly changes the ring; the gossip path must change nothing.
      const before = ipam.ringSnapshot();
      const n = net.records.length;
      const out = ipam.onGossip(bytes);
      if (out === null && net.records.length > n) assert.ok(codes(net).slice(-1)[0] === 'ERR_PROTOCOL' || codes(net).slice(-1)[0] === 'ERR_RANGE_MISMATCH');
      assert.ok(ipam.ringSnapshot().equals(before));
      ipam.onGossipUnicast(B, bytes);
    }),
    { numRuns: 500 },
  );
  assert.ok(codes(net).includes('ERR_PROTOCOL'));
});

test('consensus: waits for a quorum, the smallest name proposes once, everyone agrees', () => {
  const net = new IpamNet({ record: true });
  const init = { range: '10.32.0.0/16', bootstrap: 'consensus=3', consensusSettleMs: 2000 };
  net.add(B, init);
  net.settle();
  assert.equal(net.ipam(B).stateText(), 'awaiting consensus (quorum 2, known 1)');
  net.add(C, init);
  net.deliverAll();
  assert.equal(net.ipam(C).stateText(), 'awaiting consensus (quorum 2, known 2)');
  net.add(A, init);
  net.settle();
  for (const p of [A, B, C]) assert.equal(net.ipam(p).stateText(), 'ready');
  const ring = net.ipam(A).ringSnapshot();
  assert.deepEqual([...ring.seeds], [A, B, C].sort(), 'proposer split among all participants');
  assert.ok(ring.equals(net.ipam(B).ringSnapshot()) && ring.equals(net.ipam(C).ringSnapshot()));
  const proposals = net.records.filter((r) => r.msg === 'consensus: proposing the initial split');
  assert.equal(proposals.length, 1);
});

test('consensus: a minority partition never proposes; the majority does; they agree after healing', () => {
  const net = new IpamNet();
  const init = { range: '10.32.0.0/16', bootstrap: 'consensus=3' };
  net.add(A, init);
  net.add(B, init);
  net.add(C, init);
  net.partition([[A], [B, C]]);
  net.settle();
  assert.match(net.ipam(A).stateText(), /^awaiting consensus \(quorum 2, known 1\)$/);
  assert.equal(net.ipam(B).stateText(), 'ready');
  assert.deepEqual([...net.ipam(B).ringSnapshot().seeds], [B, C]);
  net.heal();
  net.settle();
  assert.ok(net.ipam(A).ringSnapshot().equals(net.ipam(C).ringSnapshot()));
  assert.equal(net.ipam(A).ringSnapshot().ownedSize(A), 0, 'A gets space only by donation');
});

test('rmpeer run on two peers at once moves the dead peer space to one heir', async () => {
  const net = seeded('10.32.0.0/24', [A, B, C, D]);
  const dSpace = net.ipam(A).ringSnapshot().ownedBy(D);
  net.kill(D);
  net.deliverAll();
  assert.deepEqual(net.ipam(B).status().unreachableOwners, [D]);
  assert.throws(() => net.ipam(B).rmpeer(C), (e) => isLoomError(e, 'ERR_CONFLICT'), 'reachable peers cannot be removed');
  const r1 = net.ipam(B).rmpeer(D);
  const r2 = net.ipam(C).rmpeer(D);
  assert.equal(r1.heir, A);
  assert.deepEqual(r1, r2);
  net.settle();
  const rings = [A, B, C].map((p) => net.ipam(p).ringSnapshot());
  assert.ok(rings[0]!.equals(rings[1]!) && rings[0]!.equals(rings[2]!));
  assert.deepEqual(rings[0]!.ownedBy(D), []);
  for (const r of dSpace) assert.equal(rings[0]!.ownerOf(r.start), A);
  const inDead = net.ipam(A).claim('reuse', `${formatAddress(dSpace[0]!.start + 1)}/24`);
  assert.equal(inDead.address, formatAddress(dSpace[0]!.start + 1));
});

test('rmpeer on a second peer once the first one\'s ring has arrived moves nothing and names the same heir', () => {
  const net = seeded('10.32.0.0/24', [A, B, C, D]);
  const dSize = net.ipam(A).ringSnapshot().ownedSize(D);
  net.kill(D);
  net.deliverAll();
  const first = net.ipam(C).rmpeer(D);
  net.deliverAll();
  const second = net.ipam(B).rmpeer(D);
  assert.deepEqual(first, { heir: A, moved: dSize });
  assert.deepEqual(second, { heir: A, moved: 0 }, 'the answer a second runner gets (as in the rmpeer chaos scenario)');
  net.settle();
  const rings = [A, B, C].map((p) => net.ipam(p).ringSnapshot());
  assert.ok(rings[0]!.equals(rings[1]!) && rings[0]!.equals(rings[2]!));
  assert.equal(rings[0]!.ownedSize(A) + rings[0]!.ownedSize(B) + rings[0]!.ownedSize(C), 256, 'each address owned once');
});

/** A store whose ring saves fail on cue, as the SQLite store's do on a full disk. */
class RefusingStore extends MemoryStore {
  refuse = false;
  override saveRing(bytes: Uint8Array): void {
    if (this.refuse) throw new LoomError('ERR_STORAGE', 'cannot write /state/ipam.db: the disk is full (SQLITE_FULL)');
    super.saveRing(bytes);
  }
}

test('a ring the store refuses to save is told to no peer until a retry saves it; rmpeer answers ERR_STORAGE meanwhile', () => {
  const store = new RefusingStore();
  const net = new IpamNet({ record: true });
  const bootstrap = `seed=${[A, B, C, D].join(',')}`;
  for (const s of [A, B, D]) net.add(s, { range: '10.32.0.0/24', bootstrap });
  net.add(C, { range: '10.32.0.0/24', bootstrap }, 0, store);
  net.settle();
  const dSize = net.ipam(A).ringSnapshot().ownedSize(D);
  const dSpace = net.ipam(A).ringSnapshot().ownedBy(D);
  net.kill(D);
  net.deliverAll();
  store.refuse = true;
  assert.throws(
    () => net.ipam(C).rmpeer(D),
    (e) => isLoomError(e, 'ERR_STORAGE') && /disk is full/.test(e.message),
  );
  net.deliverAll();
  net.clock.advance(SAVE_RETRY_MS);
  net.deliverAll();
  assert.equal(net.ipam(A).ringSnapshot().ownedSize(D), dSize, 'no peer heard of the unsaved change');
  assert.equal(net.ipam(C).ringSnapshot().ownedSize(D), 0, 'C keeps it in memory');
  const errors = net.records.filter((r) => r.level === 'error' && /cannot save the address ring/.test(r.msg ?? ''));
  assert.equal(errors.length, 1, 'said once, not at every retry');
  store.refuse = false;
  net.settle(2 * SAVE_RETRY_MS);
  const rings = [A, B, C].map((p) => net.ipam(p).ringSnapshot());
  assert.ok(rings[0]!.equals(rings[1]!) && rings[0]!.equals(rings[2]!), 'told once saved');
  assert.equal(rings[0]!.ownedSize(D), 0);
  for (const r of dSpace) assert.equal(rings[0]!.ownerOf(r.start), A, 'A is the heir');
});

test('rmpeer is refused while another owner is unreachable (a partition), unless forced', () => {
  const net = seeded('10.32.0.0/24', [A, B, C, D]);
  net.kill(D);
  net.partition([[A, B], [C]]);
  net.deliverAll();
  assert.throws(() => net.ipam(B).rmpeer(D), (e) => isLoomError(e, 'ERR_CONFLICT'));
  assert.throws(() => net.ipam(C).rmpeer(D), (e) => isLoomError(e, 'ERR_CONFLICT'));
  net.kill(C);
  assert.deepEqual(net.ipam(A).rmpeer([C, D]), { heir: A, moved: 128 }, 'several dead peers at once');
});

test('forced rmpeer in two partitions with different heirs converges to one owner and logs the conflict', () => {
  const net = seeded('10.32.0.0/24', [A, B, C, D]);
  net.kill(D);
  net.partition([[A, B], [C]]);
  net.deliverAll();
  assert.equal(net.ipam(B).rmpeer(D, { force: true }).heir, A);
  assert.equal(net.ipam(C).rmpeer(D, { force: true }).heir, C);
  net.heal();
  net.settle();
  const rings = [A, B, C].map((p) => net.ipam(p).ringSnapshot());
  assert.ok(rings[0]!.equals(rings[1]!) && rings[0]!.equals(rings[2]!));
  assert.ok(rings[0]!.ownedSize(A) > rings[0]!.ownedSize(B), 'A won the tie (smaller name)');
  assert.ok(codes(net).includes('ERR_CONFLICT'));
});

test('reset hands all space to a live peer', async () => {
  const net = seeded('10.32.0.0/24', [A, B]);
  await net.ipam(B).allocate('c1');
  assert.throws(() => net.ipam(B).reset(), (e) => isLoomError(e, 'ERR_CONFLICT'));
  net.ipam(B).release('c1');
  const r = net.ipam(B).reset();
  assert.equal(r.heir, A);
  net.settle();
  assert.equal(net.ipam(A).ringSnapshot().ownedSize(A), 256);
  assert.equal(net.ipam(A).ringSnapshot().ownedSize(B), 0);
});

test('a restarted peer keeps its space and its allocations', async () => {
  const net = seeded('10.32.0.0/24', [A, B]);
  const c1 = await net.ipam(B).allocate('c1');
  net.kill(B);
  net.settle();
  const restarted = net.restart(B);
  assert.equal(restarted.stateText(), 'ready');
  assert.deepEqual(restarted.lookup('c1'), [c1]);
  assert.deepEqual(await restarted.allocate('c1'), c1);
  const next = await restarted.allocate('c2');
  assert.notEqual(next.address, c1.address);
});

test('allocate before any ring waits, then fails with ERR_UNAVAILABLE when nothing arrives', async () => {
  const net = new IpamNet();
  const ipam = net.add(A, { range: '10.32.0.0/24', bootstrap: `seed=${B}`, allocateTimeoutMs: 5000 });
  assert.equal(ipam.stateText(), 'idle');
  const p = ipam.allocate('c1');
  net.clock.advance(5000);
  await assert.rejects(p, (e) => isLoomError(e, 'ERR_UNAVAILABLE'));
  // and succeeds as soon as a seed shows up
  const q = ipam.allocate('c1');
  net.add(B, { range: '10.32.0.0/24', bootstrap: `seed=${B}` });
  net.deliverAll();
  assert.match((await q).address, /^10\.32\.0\./);
});

test('a donor gives away only addresses nobody holds', async () => {
  const net = seeded('10.7.0.0/27', [A, B]);
  const held = new Set<string>();
  for (let i = 0; i < 8; i++) held.add((await net.ipam(A).allocate(`a${i}`)).address);
  for (let i = 0; i < 15; i++) held.add((await net.ipam(B).allocate(`b${i}`)).address);
  net.add(C, { range: '10.7.0.0/27', bootstrap: 'observer' });
  net.settle();
  for (let i = 0; i < 7; i++) {
    const p = net.ipam(C).allocate(`c${i}`);
    net.deliverAll();
    const got = (await p).address;
    assert.ok(!held.has(got), `${got} handed out twice`);
    held.add(got);
  }
  assert.equal(held.size, 30);
});
