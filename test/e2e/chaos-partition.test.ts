/**
 * The short form of the chaos "partition" scenario (test/chaos/partition.ts; `npm run chaos --
 * --scenario partition` runs the long one on five hosts): three hosts, a fixed seed whose
 * schedule has one asymmetric partition (h3's packets to h1 and h2 dropped, not the reverse),
 * containers started (IPAM) on both sides and removed while it lasts (one moved before it), then
 * the heal. The history checker decides: no address held twice, DNS right on every host within
 * 2 s of the heal, every pair of containers answering pings within 5 s.
 * Needs root, nft, ping, nsenter, dig (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipFor, withLab } from '../helpers/lab.js';
import { describeStep, partitionScenario, planSchedule } from '../chaos/partition.js';

const skip = labSkipFor(['ping', 'nsenter', 'dig']);

const SEED = 2;
const STEPS = 6;

test('chaos (short): a one-way partition while containers come and go; after the heal no duplicate address, DNS right within 2 s, routes within 5 s', { skip, timeout: 180_000 }, (t) => {
  const schedule = planSchedule(SEED, ['h1', 'h2', 'h3'], { steps: STEPS, maxPerHost: 2 });
  assert.deepEqual(
    schedule.filter((s) => s.kind !== 'ops').map(describeStep),
    ['drop h2 -> h1,h3 (one way)', 'heal'],
    'the fixed seed gives one asymmetric partition and its heal',
  );
  return withLab(t, { hosts: 3, subnet: '192.168.82.0/24' }, async (lab, cli) => {
    const result = await partitionScenario(lab, cli, {
      seed: SEED,
      steps: STEPS,
      timeBoundMs: 60_000,
      maxPerHost: 2,
      dnsWithinMs: 2_000,
      routesWithinMs: 5_000,
      observeMs: 10_000,
      stableMs: 1_000,
      log: (line) => t.diagnostic(line),
    });
    assert.deepEqual(result.problems, []);
    assert.ok(result.verdict.starts >= 4, `containers were started (${result.verdict.starts})`);
    assert.equal(result.verdict.heals.length, 1);
  });
});
