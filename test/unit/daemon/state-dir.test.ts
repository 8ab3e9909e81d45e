import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { StateDir } from '../../../src/daemon/state-dir.js';
import { LoomError, isPeerName, parsePeerName } from '../../../src/core/index.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'loom-state-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A pid that is certainly not running: a child that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid;
}

test('ensure creates nested directories and is idempotent', () => {
  const s = new StateDir(join(dir, 'a', 'b'));
  s.ensure();
  s.ensure();
  assert.ok(existsSync(join(dir, 'a', 'b')));
});

test('the peer name is generated once and kept; --name overrides without being stored', () => {
  const s = new StateDir(dir);
  const first = s.peerName();
  assert.ok(isPeerName(first));
  assert.equal(new StateDir(dir).peerName(), first);
  assert.equal(readFileSync(join(dir, 'peer-name'), 'utf8').trim(), first);
  const override = parsePeerName('02:00:00:00:00:01');
  assert.equal(s.peerName(override), override);
  assert.equal(s.peerName(), first);
});

test('a corrupt peer-name file is ERR_INVALID_CONFIG and is left alone', () => {
  writeFileSync(join(dir, 'peer-name'), 'garbage\n');
  assert.throws(() => new StateDir(dir).peerName(), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_CONFIG');
  assert.equal(readFileSync(join(dir, 'peer-name'), 'utf8'), 'garbage\n');
});

test('acquire writes the pid; a second live holder is ERR_CONFLICT; release removes only our own', () => {
  const s = new StateDir(dir);
  s.acquire(process.pid);
  assert.equal(readFileSync(s.pidFile, 'utf8').trim(), String(process.pid));
  assert.equal(s.runningPid(), process.pid);
  s.acquire(process.pid); // re-acquiring our own is harmless
  assert.throws(() => s.acquire(process.pid + 1_000_000), (e: unknown) => e instanceof LoomError && e.code === 'ERR_CONFLICT' && /already running/.test(e.message));
  assert.throws(() => s.assertNotRunning(), (e: unknown) => e instanceof LoomError && e.code === 'ERR_CONFLICT');
  s.release(12345);
  assert.ok(existsSync(s.pidFile));
  s.release(process.pid);
  assert.ok(!existsSync(s.pidFile));
  s.release(process.pid);
  s.assertNotRunning();
});

test('a stale pid file (dead process, or garbage) is replaced', () => {
  const s = new StateDir(dir);
  writeFileSync(s.pidFile, `${deadPid()}\n`);
  assert.equal(s.runningPid(), null);
  s.acquire(process.pid);
  assert.equal(s.runningPid(), process.pid);
  s.release(process.pid);
  writeFileSync(s.pidFile, 'not a pid');
  assert.equal(s.runningPid(), null);
  s.acquire(process.pid);
  assert.equal(s.runningPid(), process.pid);
});
