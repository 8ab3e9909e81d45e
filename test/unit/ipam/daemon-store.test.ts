import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemRunner } from '../../../src/os/runner.js';
import { SqliteStore } from '../../../src/ipam/store-sqlite.js';

test('group commit: what durable() confirmed, and what a ring write flushed, survives SIGKILL; one transaction per batch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ipam-group-'));
  try {
    const self = fileURLToPath(import.meta.url);
    const child = join(self, '..', `daemon-store-kill-child${extname(self)}`);
    const result = await systemRunner.run(process.execPath, [...process.execArgv, child, dir], {
      allowFailure: true,
      timeoutMs: 20_000,
      env: { ...process.env, LOOM_IPAM_GROUP_KILL_CHILD: '1' },
    });
    assert.notEqual(result.code, 0, `child should die by SIGKILL: ${result.stderr}`);
    assert.deepEqual(JSON.parse(result.stdout), { transactions: 2, writes: 56 }, '50 rows in one commit, then 5 rows and the ring in another');
    const store = new SqliteStore(dir);
    try {
      const state = store.load();
      assert.ok(state.ring, 'ring');
      const ids = state.allocations.map((a) => a.containerId);
      assert.equal(ids.filter((id) => id.startsWith('durable')).length, 50);
      assert.equal(ids.filter((id) => id.startsWith('before-ring')).length, 5);
      assert.equal(ids.filter((id) => id.startsWith('unconfirmed')).length, 0, 'queued writes are not committed before the turn ends');
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('group commit: writes of one turn are one transaction, durable() resolves after it, close() commits the rest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ipam-group-'));
  try {
    const store = new SqliteStore(dir, { groupCommit: true });
    const subnet = '10.32.0.0/12';
    for (let i = 0; i < 100; i++) store.putAllocation({ containerId: `c${i}`, subnet, address: i + 1, released: false });
    store.deleteAllocation('c0', subnet);
    assert.deepEqual(store.commits, { transactions: 0, writes: 0 }, 'nothing committed within the turn');
    await Promise.all([store.durable(), store.durable()]);
    assert.deepEqual(store.commits, { transactions: 1, writes: 101 });
    await store.durable(); // nothing queued: resolves at once
    store.putAllocation({ containerId: 'last', subnet, address: 999, released: true });
    store.close();
    const reopened = new SqliteStore(dir);
    try {
      const rows = reopened.load().allocations;
      assert.equal(rows.length, 100);
      assert.ok(rows.some((r) => r.containerId === 'last' && r.released));
      assert.ok(!rows.some((r) => r.containerId === 'c0'));
    } finally {
      reopened.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
