/**
 * The IPAM subsystem in a real daemon (real Router over a MemoryNetwork, FakeClock, SQLite in a
 * temp dir, the real HTTP API): lifecycle and persistence, every /ipam route, metrics, and the
 * CLI commands against the live API.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, EXIT_ERROR, EXIT_OK } from '../../../src/cli/run.js';
import { formatCidr, isLoomError, parseAddressSpec } from '../../../src/core/index.js';
import { recordingLogger } from '../../../src/core/logger.js';
import { cliContext, driveUntil, FakeClock, MemoryNetwork, peerNameOf, startHost } from './daemon-host.js';

const hasCode = (code: string) => (e: unknown) => isLoomError(e) && e.code === code;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ipamd-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('lifecycle: a seed is ready at once; allocations survive a restart; a restart with another range fails with ERR_RANGE_MISMATCH', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock();
    const net = new MemoryNetwork(clock);
    const raw = { ipallocInit: `seed=${peerNameOf(1)}`, ipallocRange: '10.40.0.0/16', ipallocDefaultSubnet: '10.40.1.0/24' };
    const host = await startHost(net, clock, join(dir, 'h1'), 1, { raw });
    let first: { c1: string; c2: string; sub: string; self: string };
    try {
      assert.equal(host.ipam.report().state, 'ready');
      first = {
        c1: await host.ipam.allocate('c1'),
        c2: await host.ipam.claim('c2', '10.40.7.9/16'),
        sub: await host.ipam.allocate('c3', 'net:10.40.2.0/24'),
        self: await host.ipam.allocateHostAddress(),
      };
      assert.equal(first.c1, '10.40.1.1/24', 'first usable address of the default subnet, with its prefix');
      assert.equal(first.c2, '10.40.7.9/16');
      assert.equal(first.sub, '10.40.2.1/24');
      assert.match(first.self, /^10\.40\.1\.\d+\/24$/);
      assert.notEqual(first.self, first.c1);
      assert.equal(await host.ipam.allocate('c1'), first.c1, 'idempotent');
      assert.deepEqual(host.ipam.lookup('c1'), [first.c1]);
      assert.equal(formatCidr(await host.ipam.assign('c4', parseAddressSpec('10.40.7.10/16'))), '10.40.7.10/16', 'assign: a static spec is a claim');
      assert.equal(await host.ipam.release('c4'), 1);
      assert.deepEqual(host.ipam.lookup('c4'), []);
      await assert.rejects(host.ipam.allocate('c5', 'net:10.99.0.0/24'), hasCode('ERR_INVALID_ARGUMENT'));
      await assert.rejects(host.ipam.claim('c5', '10.40.7.9/16'), hasCode('ERR_CONFLICT'));
      await assert.rejects(host.ipam.allocate('bad id!'), hasCode('ERR_INVALID_ARGUMENT'));
    } finally {
      await host.daemon.stop();
    }

    const again = await startHost(net, clock, join(dir, 'h1'), 1, { raw });
    try {
      assert.equal(again.ipam.report().state, 'ready');
      assert.deepEqual(again.ipam.lookup('c1'), [first.c1]);
      assert.deepEqual(again.ipam.lookup('c2'), [first.c2]);
      assert.deepEqual(again.ipam.lookup('c3'), [first.sub]);
      assert.deepEqual(again.ipam.lookup(`host:${peerNameOf(1)}`), [first.self]);
    } finally {
      await again.daemon.stop();
    }

    await assert.rejects(startHost(net, clock, join(dir, 'h1'), 1, { raw: { ...raw, ipallocRange: '10.41.0.0/16', ipallocDefaultSubnet: '10.41.1.0/24' } }), hasCode('ERR_RANGE_MISMATCH'));
  });
});

test('consensus alone with N=3 says what it waits for, and an allocation fails with ERR_UNAVAILABLE instead of hanging', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock();
    const net = new MemoryNetwork(clock);
    const host = await startHost(net, clock, join(dir, 'h1'), 1, { raw: { ipallocInit: 'consensus=3' } });
    try {
      assert.equal(host.ipam.report().state, 'awaiting consensus (quorum 2, known 1)');
      const ctx = cliContext(host.addr);
      assert.equal(await runCli(['status', 'ipam'], ctx), EXIT_OK);
      assert.match(ctx.stdout, /^bootstrap consensus: awaiting consensus \(quorum 2, known 1\)$/m);
      let outcome: unknown = null;
      const pending = host.client.ipam.allocate({ containerId: 'c1' }).then(
        () => (outcome = 'resolved'),
        (e: unknown) => (outcome = e),
      );
      assert.ok(await driveUntil(clock, () => host.ipam.report().pendingAllocations === 1, 1_000), 'the request is waiting');
      assert.ok(await driveUntil(clock, () => outcome !== null, 10_000), 'answered within the allocate timeout');
      await pending;
      assert.ok(isLoomError(outcome, 'ERR_UNAVAILABLE'), String(outcome));
      assert.match((outcome).message, /awaiting consensus/);
    } finally {
      await host.daemon.stop();
    }
  });
});

test('a bare consensus with no peers given expects one peer and becomes ready by itself', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock();
    const net = new MemoryNetwork(clock);
    const host = await startHost(net, clock, join(dir, 'h1'), 1);
    try {
      assert.ok(await driveUntil(clock, () => host.ipam.report().state === 'ready', 5_000));
      assert.equal(await host.ipam.allocate('c1'), '10.32.0.1/12');
    } finally {
      await host.daemon.stop();
    }
  });
});

test('API: allocate, claim, release, lookup, status, report section, metrics, and bad bodies', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock();
    const net = new MemoryNetwork(clock);
    const host = await startHost(net, clock, join(dir, 'h1'), 1, { raw: { ipallocInit: `seed=${peerNameOf(1)}`, ipallocRange: '10.50.0.0/24' } });
    const { client } = host;
    try {
      const a = await client.ipam.allocate({ containerId: 'web' });
      assert.deepEqual(a, { containerId: 'web', address: '10.50.0.1', cidr: '10.50.0.1/24' });
      const b = await client.ipam.allocate({ containerId: 'db', spec: 'net:10.50.0.128/25' });
      assert.equal(b.cidr, '10.50.0.129/25');
      const c = await client.ipam.claim({ containerId: 'fixed', cidr: '10.50.0.77/24' });
      assert.equal(c.cidr, '10.50.0.77/24');
      await assert.rejects(client.ipam.claim({ containerId: 'other', cidr: '10.50.0.77/24' }), hasCode('ERR_CONFLICT'));
      const viaSpec = await client.ipam.allocate({ containerId: 'st', spec: '10.50.0.78/24' });
      assert.equal(viaSpec.cidr, '10.50.0.78/24', 'a static spec claims');

      assert.deepEqual(await client.ipam.lookup({ containerId: 'web' }), { containerId: 'web', cidrs: ['10.50.0.1/24'] });
      await assert.rejects(client.ipam.lookup({ containerId: 'nobody' }), hasCode('ERR_NOT_FOUND'));
      await assert.rejects(client.call('GET', '/ipam/lookup'), hasCode('ERR_INVALID_ARGUMENT'));

      const status = await client.ipam.status();
      assert.equal(status.allocations, 4);
      assert.equal(status.state, 'ready');
      assert.deepEqual(status.peers.map((p) => [p.name, p.owned, p.reachable]), [[peerNameOf(1), 256, true]]);
      assert.deepEqual(status.rangeMismatches, []);
      assert.deepEqual((await client.report())['ipam'], status);

      assert.deepEqual(await client.ipam.release({ containerId: 'web' }), { released: 1 });
      assert.deepEqual(await client.ipam.release({ containerId: 'web' }), { released: 0 }, 'idempotent');

      clock.advance(100); // let the stats timer run; metrics read the same snapshot as status
      const metrics = await client.metrics();
      assert.match(metrics, /^loom_ipam_addresses\{state="in_use"\} 3$/m);
      assert.match(metrics, /^loom_ipam_addresses\{state="owned"\} 256$/m);
      assert.match(metrics, /^loom_ipam_addresses\{state="released"\} 1$/m);
      assert.match(metrics, /^loom_ipam_ready 1$/m);
      assert.match(metrics, /^loom_ipam_owners\{reachable="false"\} 0$/m);

      for (const [path, body] of [
        ['/ipam/allocate', {}],
        ['/ipam/allocate', { containerId: 'x', spec: 'net:banana' }],
        ['/ipam/allocate', { containerId: 'x', extra: 1 }],
        ['/ipam/allocate', { containerId: 'x'.repeat(200) }],
        ['/ipam/claim', { containerId: 'x', cidr: 'net:default' }],
        ['/ipam/claim', { containerId: 'x', cidr: '10.50.0.300/24' }],
        ['/ipam/release', { containerId: 7 }],
        ['/ipam/rmpeer', { peers: [] }],
        ['/ipam/reset', { force: 'yes' }],
      ] as const) {
        await assert.rejects(client.call('POST', path, body), hasCode('ERR_INVALID_ARGUMENT'), `${path} ${JSON.stringify(body)}`);
      }
      await assert.rejects(client.ipam.claim({ containerId: 'x', cidr: '10.60.0.5/24' }), hasCode('ERR_INVALID_ARGUMENT'), 'outside the range');
      await assert.rejects(client.ipam.rmpeer({ peers: [peerNameOf(1)] }), hasCode('ERR_INVALID_ARGUMENT'), 'not ourselves');
      await assert.rejects(client.ipam.rmpeer({ peers: ['host9'] }), hasCode('ERR_NOT_FOUND'), 'unknown nickname');
      await assert.rejects(client.ipam.reset({}), hasCode('ERR_CONFLICT'), 'containers still hold addresses');
      await assert.rejects(client.ipam.reset({ force: true }), hasCode('ERR_UNAVAILABLE'), 'nobody to hand the space to');
    } finally {
      await host.daemon.stop();
    }
  });
});

test('CLI: status ipam lists owners with share and use; rmpeer and reset report their errors with codes', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock();
    const net = new MemoryNetwork(clock);
    const host = await startHost(net, clock, join(dir, 'h1'), 1, { raw: { ipallocInit: `seed=${peerNameOf(1)}`, ipallocRange: '10.50.0.0/24' } });
    const run = async (...argv: string[]) => {
      const ctx = cliContext(host.addr);
      const code = await runCli(argv, ctx);
      return { code, out: ctx.stdout, err: ctx.stderr };
    };
    try {
      await host.ipam.allocate('c1');
      await host.ipam.allocate('c2');
      const status = await run('status', 'ipam');
      assert.equal(status.code, EXIT_OK, status.err);
      assert.deepEqual(status.out.split('\n'), [
        'range 10.50.0.0/24 (256 addresses)',
        'bootstrap seed: ready',
        'this peer: 2 in use, 0 released in grace, 0 pending',
        `${peerNameOf(1)}(host1)  256 IPs  (100.0% of total)  (2 active)`,
        '',
      ]);
      const unknown = await run('rmpeer', 'host7');
      assert.equal(unknown.code, EXIT_ERROR);
      assert.match(unknown.err, /^loom: ERR_NOT_FOUND: /);
      const self = await run('rmpeer', 'host1');
      assert.match(self.err, /^loom: ERR_INVALID_ARGUMENT: cannot rmpeer ourselves/);
      const reset = await run('reset');
      assert.equal(reset.code, EXIT_ERROR);
      assert.match(reset.err, /^loom: ERR_CONFLICT: 2 containers still hold addresses/);
      assert.ok(await host.client.healthy(), 'a refused reset does not stop the router');
    } finally {
      await host.daemon.stop();
    }
  });
});

test('IPAM state changes are one log line each: an allocation, a claim, a conflict (warn), a release; asking again is silent', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock();
    const net = new MemoryNetwork(clock);
    const log = recordingLogger();
    const host = await startHost(net, clock, join(dir, 'h1'), 1, { raw: { ipallocInit: `seed=${peerNameOf(1)}`, ipallocRange: '10.40.0.0/16' }, logger: log });
    try {
      const ipamLines = () => log.records.filter((r) => r.bindings['component'] === 'ipam' && r.level !== 'debug').map((r) => [r.level, r.msg, (r.obj as { containerId?: string }).containerId, (r.obj as { cidr?: string }).cidr]);
      const before = ipamLines().length;
      const a = await host.ipam.allocate('c1');
      assert.equal(await host.ipam.allocate('c1'), a, 'idempotent');
      await host.ipam.claim('c2', '10.40.7.9/16');
      await host.ipam.claim('c2', '10.40.7.9/16');
      await assert.rejects(host.ipam.claim('c3', '10.40.7.9/16'), hasCode('ERR_CONFLICT'));
      await host.ipam.release('c2');
      await host.ipam.release('c2');
      assert.deepEqual(ipamLines().slice(before), [
        ['info', 'address allocated', 'c1', a],
        ['info', 'address claimed', 'c2', '10.40.7.9/16'],
        ['warn', 'address claim refused: conflict', 'c3', '10.40.7.9/16'],
        ['info', 'addresses released', 'c2', undefined],
      ]);
    } finally {
      await host.daemon.stop();
    }
  });
});
