import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeClock } from '../../../src/core/clock.js';

test('FakeClock fires in time order, ties in scheduling order, and only when advanced', () => {
  const clock = new FakeClock();
  const fired: string[] = [];
  clock.setTimeout(() => fired.push('b@20'), 20);
  clock.setTimeout(() => fired.push('a@10'), 10);
  clock.setTimeout(() => fired.push('c@20'), 20);
  assert.deepEqual(fired, []);
  clock.advance(15);
  assert.deepEqual(fired, ['a@10']);
  assert.equal(clock.now(), 15);
  clock.advance(5);
  assert.deepEqual(fired, ['a@10', 'b@20', 'c@20']);
  assert.equal(clock.pending, 0);
});

test('FakeClock: cancel, intervals, timers scheduled from callbacks, pending count', () => {
  const clock = new FakeClock();
  let ticks = 0;
  const interval = clock.setInterval(() => {
    ticks++;
    if (ticks === 3) interval.cancel();
  }, 10);
  const cancelled = clock.setTimeout(() => assert.fail('cancelled timer fired'), 5);
  cancelled.cancel();
  cancelled.cancel();
  const nested: number[] = [];
  clock.setTimeout(() => clock.setTimeout(() => nested.push(clock.now()), 7), 3);
  assert.equal(clock.pending, 2);
  clock.advance(100);
  assert.equal(ticks, 3);
  assert.deepEqual(nested, [10]);
  assert.equal(clock.pending, 0);
  assert.equal(clock.nextAt(), null);
});

test('FakeClock.runUntil jumps from timer to timer and stops at the limit', () => {
  const clock = new FakeClock();
  let done = false;
  clock.setTimeout(() => (done = true), 1_000);
  assert.equal(clock.runUntil(() => done, 500), false);
  assert.equal(clock.now(), 500);
  assert.equal(clock.runUntil(() => done, 5_000), true);
  assert.equal(clock.now(), 1_000);
});

test('FakeClock matches a sorted reference for random schedules and cancels', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ at: fc.integer({ min: 0, max: 50 }), cancel: fc.boolean() }), { maxLength: 60 }), (specs) => {
      const clock = new FakeClock();
      const fired: number[] = [];
      specs.forEach((spec, i) => {
        const h = clock.setTimeout(() => fired.push(i), spec.at);
        if (spec.cancel) h.cancel();
      });
      clock.advance(100);
      const expected = specs
        .map((spec, i) => ({ ...spec, i }))
        .filter((s) => !s.cancel)
        .sort((a, b) => a.at - b.at || a.i - b.i)
        .map((s) => s.i);
      assert.deepEqual(fired, expected);
      assert.equal(clock.pending, 0);
    }),
  );
});
