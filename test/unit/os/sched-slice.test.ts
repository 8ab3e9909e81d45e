/** src/os/sched-slice.ts: the calling thread's EEVDF slice through sched_setattr. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { MAX_SLICE_US, MIN_SLICE_US, setThreadSlice } from '../../../src/os/sched-slice.js';

/** Custom slices for SCHED_OTHER came with Linux 6.12. */
function kernelHasCustomSlices(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  return m !== null && (Number(m[1]) > 6 || (Number(m[1]) === 6 && Number(m[2]) >= 12));
}

test('out-of-range or fractional slices are refused without a syscall', async () => {
  for (const bad of [0, MIN_SLICE_US - 1, MAX_SLICE_US + 1, 150.5, NaN]) {
    const r = await setThreadSlice(bad);
    assert.ok('unavailable' in r, String(bad));
  }
});

test('the slice is set on this thread and read back, then restored', { skip: process.platform !== 'linux' || !kernelHasCustomSlices() ? 'needs Linux >= 6.12' : false }, async () => {
  const first = await setThreadSlice(300);
  assert.ok('nowUs' in first, JSON.stringify(first));
  assert.equal(first.nowUs, 300);
  assert.ok(first.previousUs >= MIN_SLICE_US && first.previousUs <= MAX_SLICE_US, `previous slice ${first.previousUs} µs`);
  const back = await setThreadSlice(first.previousUs);
  assert.ok('nowUs' in back, JSON.stringify(back));
  assert.equal(back.previousUs, 300);
  assert.equal(back.nowUs, first.previousUs);
});
