import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoomError } from '../../../src/core/errors.js';
import { Backoff } from '../../../src/mesh/backoff.js';

test('delays grow exponentially up to the cap (random = top of range)', () => {
  const b = new Backoff({ baseMs: 1000, capMs: 60_000, minMs: 100, random: () => 0.999999 });
  const delays = Array.from({ length: 9 }, () => b.next());
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  assert.equal(b.attempts, 9);
});

test('full jitter: the bottom of the range is the floor, not half the ceiling', () => {
  const b = new Backoff({ random: () => 0 });
  for (let i = 0; i < 10; i++) assert.equal(b.next(), 100);
});

test('reset starts again from the base', () => {
  const b = new Backoff({ random: () => 0.999999 });
  b.next();
  b.next();
  b.next();
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(b.next(), 1000);
});

test('many attempts never overflow past the cap', () => {
  const b = new Backoff({ random: () => 0.999999 });
  for (let i = 0; i < 2000; i++) assert.ok(b.next() <= 60_000);
});

test('inconsistent options are rejected with ERR_INVALID_ARGUMENT', () => {
  assert.throws(() => new Backoff({ baseMs: 0 }), (e: unknown) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => new Backoff({ baseMs: 5000, capMs: 1000 }), (e: unknown) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => new Backoff({ minMs: 2000 }), (e: unknown) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
});
