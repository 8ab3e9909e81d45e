/**
 * The soak's RSS invariant (test/chaos/soak.ts, rssGrowthProblems): growth over the limit fails,
 * growth at or under it passes, and a figure read on a router that was not settled (or reported
 * no quiet-GC status, or an unreadable RSS) fails as not like with like. The real thing failing
 * on a real leak is shown by `npm run chaos -- --scenario soak --leak-kb N` (docs/RELIABILITY.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rssGrowthProblems, type QuietGcReading, type RssFigures } from '../../chaos/soak.js';

const settled: QuietGcReading = { settled: true, quietForMs: 12_000, collections: 1, lastPauseMs: 14, maxPauseMs: 14, totalPauseMs: 14 };

function figures(startMb: number, endMb: number, end: QuietGcReading | null = settled): RssFigures {
  return {
    startMb,
    endMb,
    peakMb: Math.max(startMb, endMb) + 8,
    heapStartMb: 14,
    heapEndMb: 16,
    anonStartMb: 24,
    anonEndMb: 26,
    heapTotalStartMb: 16,
    heapTotalEndMb: 18,
    externalStartMb: 5.7,
    externalEndMb: 5.7,
    quietGcStart: settled,
    quietGcEnd: end,
  };
}

test('RSS growth within the limit passes; over it, each router that grew too much is named with its figures', () => {
  assert.deepEqual(rssGrowthProblems({ h1: figures(70, 74.9), h2: figures(70, 75), h3: figures(72, 70) }, 5), []);
  assert.deepEqual(rssGrowthProblems({ h1: figures(70, 74), h2: figures(70.2, 82.6) }, 5), ['h2: router RSS grew 12.4 MB (70.2 -> 82.6; limit 5 MB)']);
});

test('a reading not taken on a settled router, or an unreadable RSS, is a problem', () => {
  assert.match(rssGrowthProblems({ h1: figures(70, 71, { ...settled, settled: false, quietForMs: 2_000 }) }, 5).join(), /h1: RSS end figure read on a router that was not settled \(quiet 2000 ms\)/);
  assert.match(rssGrowthProblems({ h1: figures(70, 71, null) }, 5).join(), /no quiet GC status/);
  assert.match(rssGrowthProblems({ h1: figures(70, Number.NaN) }, 5).join(), /h1: router RSS grew NaN MB/);
});
