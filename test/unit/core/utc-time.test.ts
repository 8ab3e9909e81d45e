/**
 * UTC times formatted without V8's Date methods (src/core/utc-time.ts): the same text as
 * `Date#toUTCString` and `Date#toISOString` (here in the test, where ICU's memory does not matter)
 * over leap days, century rules, the epoch, far dates and random instants.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { httpDate, isoTimestamp } from '../../../src/core/utc-time.js';

test('known instants', () => {
  assert.equal(httpDate(0), 'Thu, 01 Jan 1970 00:00:00 GMT');
  assert.equal(httpDate(784_111_777_000), 'Sun, 06 Nov 1994 08:49:37 GMT', 'RFC 9110\'s example');
  assert.equal(httpDate(Date.UTC(2000, 1, 29, 23, 59, 59, 999)), 'Tue, 29 Feb 2000 23:59:59 GMT');
  assert.equal(httpDate(Date.UTC(2100, 2, 1)), 'Mon, 01 Mar 2100 00:00:00 GMT');
  assert.equal(httpDate(-1), 'Wed, 31 Dec 1969 23:59:59 GMT');
});

test('the same text as Date#toUTCString for any instant in years 0-9999', () => {
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(0, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59) }), (ms) => {
      assert.equal(httpDate(ms), new Date(ms).toUTCString());
    }),
    { numRuns: 5000 },
  );
});

test('ISO timestamps: the same text as Date#toISOString', () => {
  assert.equal(isoTimestamp(0), '1970-01-01T00:00:00.000Z');
  assert.equal(isoTimestamp(Date.UTC(2000, 1, 29, 23, 59, 59, 7)), '2000-02-29T23:59:59.007Z');
  assert.equal(isoTimestamp(-1), '1969-12-31T23:59:59.999Z');
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(0, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) }), (ms) => {
      assert.equal(isoTimestamp(ms), new Date(ms).toISOString());
    }),
    { numRuns: 5000 },
  );
});
