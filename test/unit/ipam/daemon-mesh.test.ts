/**
 * Two or three daemons in this process, each with a real Router over one MemoryNetwork on a
 * FakeClock and the real IPAM subsystem over SQLite. Allocations go in through the HTTP API;
 * the clock is driven by hand (nothing sleeps).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, EXIT_OK } from '../../../src/cli/run.js';
import { parseAddressInCidr } from '../../../src/ipam/cidr.js';
import { cliContext, connected, driveUntil, FakeClock, MemoryNetwork, peerNameOf, startHost, type Host } from './daemon-host.js';

const SEEDS = `seed=${peerNameOf(1)},${peerNameOf(2)}`;

async function twoSeeds(dir: string, clock: FakeClock, net: MemoryNetwork, range = '10.32.0.0/24'): Promise<[Host, Host]> {
  const host1 = await startHost(net, clock, join(dir, 'h1'), 1, { raw: { ipallocInit: SEEDS, ipallocRange: range } });
  const host2 = await startHost(net, clock, join(dir, 'h2'), 2, { peers: ['10.0.0.1'], raw: { ipallocInit: SEEDS, ipallocRange: range } });
  assert.ok(await driveUntil(clock, () => connected(host1, host2), 30_000), 'connected');
  return [host1, host2];
}

async function runCliDriving(clock: FakeClock, addr: string, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const ctx = cliContext(addr);
  let code: number | null = null;
  const done = runCli(argv, ctx).then((c) => (code = c));
  await driveUntil(clock, () => code !== null, 60_000);
  await done;
  return { code: code!, out: ctx.stdout, err: ctx.stderr };
}

test('two seeds over the mesh: concurrent allocations through both APIs are unique and inside each owner\'s half', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ipammesh-'));
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const hosts: Host[] = [];
  try {
    hosts.push(...(await twoSeeds(dir, clock, net)));
    const [host1, host2] = hosts as [Host, Host];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? host1 : host2).client.ipam.allocate({ containerId: `c${i}` })),
    );
    const addresses = results.map((r) => r.address);
    assert.equal(new Set(addresses).size, 40, 'no address handed out twice');
    for (const [i, r] of results.entries()) {
      const last = Number(r.address.split('.')[3]);
      assert.ok(i % 2 === 0 ? last >= 1 && last < 128 : last >= 128 && last < 255, `${r.address} in the half of host ${(i % 2) + 1}`);
      assert.equal(r.cidr, `${r.address}/24`);
    }
    // Both see the same ring, each owning half.
    assert.ok(await driveUntil(clock, () => host2.ipam.report().peers.every((p) => p.inUse === 20), 5_000), 'stats gossiped');
    assert.deepEqual(host1.ipam.report().peers.map((p) => p.owned), [128, 128]);
  } finally {
    for (const h of hosts.reverse()) await h.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a peer with another range is refused: its gossip changes nothing and status names it, on both sides', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ipammesh-'));
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const hosts: Host[] = [];
  try {
    hosts.push(...(await twoSeeds(dir, clock, net)));
    const [host1] = hosts as [Host, Host];
    // Let the two seeds' ring gossip settle first (free-space counts travel after the split).
    await driveUntil(clock, () => false, 3_000);
    const ringBefore = host1.ipam.ipam.ringSnapshot();
    const host3 = await startHost(net, clock, join(dir, 'h3'), 3, { peers: ['10.0.0.1'], raw: { ipallocInit: `seed=${peerNameOf(3)}`, ipallocRange: '10.99.0.0/16' } });
    hosts.push(host3);
    assert.ok(await driveUntil(clock, () => host1.ipam.report().rangeMismatches.length > 0 && host3.ipam.report().rangeMismatches.length > 0, 30_000), 'mismatch seen');
    const seen1 = host1.ipam.report().rangeMismatches;
    assert.equal(seen1.length, 1);
    assert.equal(seen1[0]!.range, '10.99.0.0/16');
    assert.ok(seen1[0]!.peers.includes(peerNameOf(3) as never), JSON.stringify(seen1));
    assert.deepEqual(host3.ipam.report().rangeMismatches.map((m) => m.range), ['10.32.0.0/24']);
    assert.ok(host1.ipam.ipam.ringSnapshot().equals(ringBefore), 'our ring is unchanged');
    assert.equal((await host3.client.ipam.allocate({ containerId: 'x' })).cidr, '10.99.0.1/16', 'each keeps working in its own range');

    const out = await runCliDriving(clock, host1.addr, ['status', 'ipam']);
    assert.equal(out.code, EXIT_OK, out.err);
    assert.match(out.out, new RegExp(`^refused: ${peerNameOf(3)}.* use range 10\\.99\\.0\\.0/16, not 10\\.32\\.0\\.0/24 \\(ERR_RANGE_MISMATCH`, 'm'));
  } finally {
    for (const h of hosts.reverse()) await h.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rmpeer by nickname takes over a stopped peer\'s space; status showed it unreachable first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ipammesh-'));
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const hosts: Host[] = [];
  try {
    hosts.push(...(await twoSeeds(dir, clock, net)));
    const [host1, host2] = hosts as [Host, Host];
    await host2.daemon.stop();
    hosts.pop();
    assert.ok(await driveUntil(clock, () => host1.ipam.report().unreachableOwners.length === 1, 30_000), 'host 2 unreachable');
    const before = await runCliDriving(clock, host1.addr, ['status', 'ipam']);
    assert.match(before.out, new RegExp(`^${peerNameOf(2)}\\S*\\s+128 IPs\\s+\\(50\\.0% of total\\)\\s+- unreachable!$`, 'm'));
    assert.match(before.out, /^owners not reachable: .*loom rmpeer/m);

    const nickname = host1.daemon.router.mesh.nicknameOf(peerNameOf(2) as never);
    const rm = await runCliDriving(clock, host1.addr, ['rmpeer', nickname ?? peerNameOf(2)]);
    assert.equal(rm.code, EXIT_OK, rm.err);
    assert.equal(rm.out, `128 IPs taken over by ${peerNameOf(1)} from ${peerNameOf(2)}\n`);
    assert.deepEqual(host1.ipam.report().peers.map((p) => [p.name, p.owned]), [[peerNameOf(1), 256]]);
    const { address } = parseAddressInCidr(await host1.ipam.claim('taken-over', '10.32.0.200/24'));
    assert.ok(address > 0, 'an address of the removed peer can now be claimed here');
  } finally {
    for (const h of hosts.reverse()) await h.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loom reset hands the space to the live peer, stops the router and removes ipam.db and the peer name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ipammesh-'));
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const hosts: Host[] = [];
  try {
    hosts.push(...(await twoSeeds(dir, clock, net)));
    const [host1, host2] = hosts as [Host, Host];
    const stateDir2 = join(dir, 'h2');
    assert.ok(existsSync(join(stateDir2, 'ipam.db')));
    const reset = await runCliDriving(clock, host2.addr, ['reset']);
    assert.equal(reset.code, EXIT_OK, reset.err);
    assert.equal(reset.out, `128 IPs handed to ${peerNameOf(1)}\n`);
    await host2.daemon.stopped;
    hosts.pop();
    for (const file of ['ipam.db', 'ipam.db-wal', 'ipam.db-shm', 'peer-name']) assert.ok(!existsSync(join(stateDir2, file)), `${file} removed`);
    assert.ok(await driveUntil(clock, () => host1.ipam.report().peers.length === 1, 10_000), 'host 1 learnt of the handover');
    assert.deepEqual(host1.ipam.report().peers.map((p) => [p.name, p.owned]), [[peerNameOf(1), 256]]);
  } finally {
    for (const h of hosts.reverse()) await h.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
