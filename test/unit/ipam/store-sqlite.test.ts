import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemRunner } from '../../../src/os/runner.js';
import { parseCidr } from '../../../src/ipam/cidr.js';
import { Ring } from '../../../src/ipam/ring.js';
import { decodeRing } from '../../../src/ipam/ring-codec.js';
import { SqliteStore } from '../../../src/ipam/store-sqlite.js';
import { IpamNet, peerName } from './harness.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'loom-ipam-'));
}

test('state written by a process killed with SIGKILL is there on reopen', async () => {
  const dir = tempDir();
  try {
    const self = fileURLToPath(import.meta.url);
    const child = join(self, '..', `sqlite-kill-child${extname(self)}`);
    const result = await systemRunner.run(process.execPath, [...process.execArgv, child, dir], {
      allowFailure: true,
      timeoutMs: 20_000,
      env: { ...process.env, LOOM_IPAM_KILL_CHILD: '1' },
    });
    assert.notEqual(result.code, 0, `child should die by SIGKILL: ${result.stderr}`);
    const store = new SqliteStore(dir);
    try {
      const state = store.load();
      assert.ok(state.ring);
      assert.ok(decodeRing(state.ring).equals(Ring.initial(parseCidr('10.32.0.0/12'), [peerName(1), peerName(2)])));
      assert.equal(state.allocations.length, 99);
      assert.equal(state.allocations.filter((a) => a.released).length, 10);
      assert.ok(!state.allocations.some((a) => a.containerId === 'c99'));
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an IPAM peer over SQLite keeps its space and allocations across an unclean restart', async () => {
  const dir = tempDir();
  const a = peerName(1);
  const b = peerName(2);
  try {
    const init = { range: '10.32.0.0/24', bootstrap: `seed=${a},${b}` };
    const first = new IpamNet();
    const store1 = new SqliteStore(dir);
    first.add(a, init, 0, store1);
    first.add(b, init);
    first.settle();
    first.add(peerName(3), { ...init, bootstrap: 'observer' });
    first.settle();
    const got = [await first.ipam(a).allocate('c1'), await first.ipam(a).allocate('c2')];
    first.ipam(a).release('c2');
    const ringBefore = first.ipam(a).ringSnapshot();
    // No stop, no close: the next store opens the same file as a restarted daemon would.
    const store2 = new SqliteStore(dir);
    try {
      const second = new IpamNet();
      const again = second.add(a, init, 0, store2);
      assert.equal(again.stateText(), 'ready');
      assert.ok(again.ringSnapshot().equals(ringBefore));
      assert.deepEqual(again.lookup('c1'), [got[0]]);
      assert.deepEqual(again.lookup('c2'), [], 'released stays released');
      assert.deepEqual(await again.allocate('c2'), got[1], 'still within its grace period after restart');
    } finally {
      store2.close();
      store1.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a state dir that cannot be opened is ERR_INVALID_CONFIG', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'file'), 'not a directory');
    assert.throws(() => new SqliteStore(join(dir, 'file', 'state')), (e) => e instanceof Error && 'code' in e && e.code === 'ERR_INVALID_CONFIG');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
