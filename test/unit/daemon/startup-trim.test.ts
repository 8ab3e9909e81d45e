/**
 * The router's one malloc_trim after start-up (src/daemon/startup-trim.ts, issue 14 "Memory"):
 * it runs once, after its delay, with glibc's real malloc_trim; cancelling stops it; and its timer
 * never keeps a process alive. Each case runs in a child Node, so this process's malloc and timers
 * are left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../../src/demo/loom-cli.js';

const dist = (rel: string): string => pathToFileURL(join(repoRoot(), 'dist', 'src', rel)).href;

/** Runs `body` as an ES module in a child Node with the trim module and malloc_trim imported; returns stdout and wall time. */
function child(body: string): { stdout: string; stderr: string; status: number | null; ms: number } {
  const script = `import { trimAfterStartup } from ${JSON.stringify(dist('daemon/startup-trim.js'))};\nimport { trimMalloc } from ${JSON.stringify(dist('os/malloc.js'))};\n${body}`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status, ms: Date.now() - t0 };
}

test('the trim runs once, after its delay, and glibc gives memory back', { skip: process.platform !== 'linux' && 'glibc only' }, () => {
  const r = child(`
const t0 = Date.now();
trimAfterStartup(150, () => { const ok = trimMalloc(); console.log('trim', Date.now() - t0 >= 140, ok); return ok; });
setTimeout(() => console.log('done'), 600);
`);
  assert.equal(r.status, 0, r.stderr);
  // malloc_trim(0) answers 1 when it released memory; a fresh Node has freed some by then.
  assert.deepEqual(r.stdout.trim().split('\n'), ['trim true true', 'done']);
});

test('cancelled before its delay, the trim never runs', () => {
  const r = child(`
const cancel = trimAfterStartup(100, () => { console.log('trim'); return true; });
cancel();
setTimeout(() => console.log('done'), 400);
`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done');
});

test('the pending trim does not keep a process alive', () => {
  const r = child(`trimAfterStartup(60_000, () => { console.log('trim'); return true; });`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.ok(r.ms < 20_000, `the child exited at once, not after the 60 s delay (${r.ms} ms)`);
});
