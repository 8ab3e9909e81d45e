/** bench/dns/histogram.ts: the in-server latency histogram the DNS bench reads per round. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import { bucketOf, bucketRange, HISTOGRAM_BUCKETS, LatencyHistogram } from '../../../bench/dns/histogram.js';

test('every value lands in the bucket whose range holds it, at most ~3 % wide', () => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 2 ** 31 - 1, noNaN: true }), (us) => {
      const i = bucketOf(us);
      assert.ok(i >= 0 && i < HISTOGRAM_BUCKETS);
      const { low, width } = bucketRange(i);
      const v = Math.max(0, Math.floor(us));
      assert.ok(v >= low && v < low + width, `${us} in [${low}, ${low + width})`);
      assert.ok(width === 1 || width / low <= 1 / 32 + 1e-12);
    }),
  );
  assert.equal(bucketOf(NaN), 0);
  assert.equal(bucketOf(-5), 0);
  assert.equal(bucketOf(2 ** 40), HISTOGRAM_BUCKETS - 1);
  for (let i = 1; i < HISTOGRAM_BUCKETS; i++) assert.equal(bucketRange(i).low, bucketRange(i - 1).low + bucketRange(i - 1).width, `bucket ${i} follows ${i - 1}`);
});

test('percentiles are within a bucket of the exact nearest-rank value; max is exact', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.constantFrom(0.5, 0.9, 0.99, 0.999, 1), (values, q) => {
      const h = new LatencyHistogram();
      for (const v of values) h.record(v);
      const sorted = [...values].sort((a, b) => a - b);
      const exact = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
      const got = h.percentile(q);
      const { low, width } = bucketRange(bucketOf(exact));
      assert.ok(got >= Math.min(low, h.max) && got <= low + width, `q ${q}: ${got} vs exact ${exact}`);
      assert.equal(h.max, sorted[sorted.length - 1]);
      assert.equal(h.count, values.length);
    }),
  );
  assert.ok(Number.isNaN(new LatencyHistogram().percentile(0.99)));
});

test('the text form round-trips and merges; a damaged line is ERR_PROTOCOL', () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  [3, 70, 70, 900, 12_000].forEach((v) => a.record(v));
  [1, 250].forEach((v) => b.record(v));
  const back = LatencyHistogram.fromText(a.toText());
  assert.deepEqual([...back.counts], [...a.counts]);
  assert.equal(back.max, 12_000);
  back.merge(LatencyHistogram.fromText(b.toText()));
  assert.equal(back.count, 7);
  assert.equal(back.percentile(1), 12_000);
  assert.equal(LatencyHistogram.fromText(new LatencyHistogram().toText()).count, 0);
  for (const bad of ['', '3:1.0:', '2:5.0:1=1', `1:1.0:${HISTOGRAM_BUCKETS}=1`, '1:1.0:1=1;rm']) {
    assert.throws(() => LatencyHistogram.fromText(bad), (e: unknown) => isLoomError(e) && e.code === 'ERR_PROTOCOL', bad);
  }
  a.reset();
  assert.equal(a.count, 0);
  assert.equal(a.toText(), '0:0.0:-');
});
