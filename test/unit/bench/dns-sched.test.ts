/** test/helpers/proc.ts threadScheds: the per-thread scheduler counters the DNS bench reads per round. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { threadScheds } from '../../helpers/proc.js';

test('threadScheds lists this process\'s threads; the main thread\'s CPU time grows while it works', () => {
  const before = threadScheds(process.pid);
  const main = before.find((t) => t.tid === process.pid);
  assert.ok(main, 'the main thread (tid = pid) is listed');
  assert.ok(before.length >= 2, 'Node has threads besides the main one');
  for (const t of before) {
    for (const v of [t.runNs, t.waitNs, t.slices, t.involuntary]) assert.ok(Number.isInteger(v) && v >= 0, JSON.stringify(t));
    assert.notEqual(t.name, '');
  }
  // Work until the counter moves (bounded): the clock that schedstat uses is the scheduler's.
  const deadline = Date.now() + 5000;
  let after = main;
  let work = 0;
  while (after.runNs <= main.runNs + 5e6 && Date.now() < deadline) {
    for (let i = 0; i < 1e5; i++) work += Math.sqrt(i);
    after = threadScheds(process.pid).find((t) => t.tid === process.pid) ?? after;
  }
  assert.ok(work > 0);
  assert.ok(after.runNs > main.runNs + 5e6, `main thread ran ${after.runNs - main.runNs} ns more`);
  assert.ok(after.slices >= main.slices);
});

test('threadScheds of a process that is not there is empty', () => {
  assert.deepEqual(threadScheds(2 ** 22 + 12345), []);
});
