import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FAILURES_TO_LOWER, FALLBACK_MTU, MAX_PROBED_MTU, MIN_MTU, PathMtu } from '../../../src/dataplane/relay/pmtu.js';

/** Runs discovery rounds against a path of `mtu` until settled: every probe at or under it is answered, the rest are lost. */
function discover(p: PathMtu, mtu: number, localLimit = Infinity, maxRounds = 40): number {
  for (let round = 1; round <= maxRounds; round++) {
    const sizes = p.probeSizes();
    for (const s of sizes) {
      if (s > localLimit) p.refused(s);
      else if (s <= mtu) p.acknowledged(s);
    }
    for (const s of sizes) if (s <= localLimit && s > mtu) p.lost(s);
    if (p.isSettled()) return round;
  }
  return -1;
}

describe('path MTU discovery', () => {
  it('uses the fallback until a probe is answered, then the largest answered size', () => {
    const p = new PathMtu();
    assert.equal(p.current(), FALLBACK_MTU);
    assert.equal(p.isVerified(), false);
    p.acknowledged(1400);
    assert.equal(p.current(), 1400);
    p.acknowledged(1300);
    assert.equal(p.current(), 1400, 'a smaller answer never lowers it');
  });

  for (const mtu of [1500, 1400, 1280, 1453, 9000, 1000]) {
    it(`settles within 8 bytes of a ${mtu}-byte path`, () => {
      const p = new PathMtu();
      const rounds = discover(p, mtu, mtu >= 1500 ? mtu : 1500);
      assert.ok(rounds > 0 && rounds <= 12, `settled in ${rounds} rounds`);
      assert.ok(p.current() <= mtu && p.current() > mtu - 8, `found ${p.current()} for ${mtu}`);
    });
  }

  it('needs FAILURES_TO_LOWER losses in a row before a size counts as too big: 1 % loss does not lower it', () => {
    const p = new PathMtu();
    p.acknowledged(1500);
    for (let i = 0; i < FAILURES_TO_LOWER - 1; i++) assert.equal(p.lost(1500), false);
    p.acknowledged(1500);
    for (let i = 0; i < FAILURES_TO_LOWER - 1; i++) p.lost(1500);
    assert.equal(p.current(), 1500);
    assert.equal(p.lost(1500), true, 'the third loss in a row lowers it');
    assert.ok(p.current() < 1500);
  });

  it('EMSGSIZE lowers it at once, and a path that shrank is found again', () => {
    const p = new PathMtu();
    discover(p, 1500);
    assert.equal(p.current(), 1500);
    assert.equal(p.refused(1500), true);
    assert.ok(p.current() <= FALLBACK_MTU);
    discover(p, 1400);
    assert.ok(p.current() <= 1400 && p.current() > 1392);
  });

  it('probes the ceiling again once settled, so a path that grew is found', () => {
    const p = new PathMtu();
    discover(p, 1400);
    const sizes = p.probeSizes();
    assert.ok(sizes.includes(p.current()), 're-checks the verified size');
    assert.ok(sizes.some((s) => s > p.current()), 'and the size above it');
  });

  it('stays within MIN_MTU..MAX_PROBED_MTU and never verifies an unanswered size, whatever happens', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('ack', 'lost', 'refused'), fc.integer({ min: 0, max: 20_000 })), { maxLength: 200 }), (events) => {
        const p = new PathMtu();
        const answered = new Set<number>();
        for (const [what, size] of events) {
          if (what === 'ack') {
            p.acknowledged(size);
            answered.add(size);
          } else if (what === 'lost') p.lost(size);
          else p.refused(size);
          const now = p.current();
          assert.ok(now >= MIN_MTU - 1 || now === 0 || answered.has(now), `current ${now}`);
          assert.ok(!p.isVerified() || answered.has(now));
          for (const s of p.probeSizes()) assert.ok(s >= 0 && s <= MAX_PROBED_MTU, `probe size ${s}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});
