/**
 * The upstream resolvers' file watcher (src/dns/resolv-conf.ts): read on first use, re-read when
 * the file changes, empty while the file is missing. It reads through node:fs's callback forms
 * (node:fs/promises stays out of the router, issue 14 "Memory").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResolvConfWatcher } from '../../../src/dns/resolv-conf.js';

test('nameservers come from the file, follow its changes, and are empty while it is missing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-resolv-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'resolv.conf');
  const watcher = new ResolvConfWatcher(file);
  assert.deepEqual(await watcher.nameservers(), [], 'no file yet');
  writeFileSync(file, 'search example\nnameserver 192.0.2.1\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\n');
  assert.deepEqual(await watcher.nameservers(), ['192.0.2.1', 'fe80::1']);
  // A different size changes the file's identity even within the same mtime tick.
  writeFileSync(file, 'nameserver 198.51.100.7 # a comment\n');
  assert.deepEqual(await watcher.nameservers(), ['198.51.100.7']);
  unlinkSync(file);
  assert.deepEqual(await watcher.nameservers(), []);
});
