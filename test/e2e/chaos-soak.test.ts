/**
 * The short form of the soak (test/chaos/soak.ts; `npm run chaos -- --scenario soak` runs ten
 * minutes): 20 s of container churn (at least 6 operations, at most 90 s on a slow machine) (start, stop, move, rename) on three hosts with pings between
 * long-lived containers and dig queries. The invariants are the leak counts (veths, container
 * namespaces, IPAM addresses, DNS records, FDB entries, router fds and sockets back to their
 * baseline), DNS consistent everywhere afterwards, every dig answered, long-lived pings never
 * interrupted for more than 2 s, and router RSS growth at most 5 MB between a start figure after
 * a warm-up churn and an end figure, each read once every router reports itself settled (quiet
 * for its quiet time, 4 s here, and its quiet GC done or not needed: src/daemon/quiet-gc.ts).
 * Needs root, nft, ping, nsenter, dig (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipFor, withLab } from '../helpers/lab.js';
import { killSoakContainers, soak } from '../chaos/soak.js';

const skip = labSkipFor(['ping', 'nsenter', 'dig']);

test('chaos (short): container churn on three hosts leaks no veth, namespace, address, DNS record, FDB entry or socket', { skip, timeout: 240_000 }, (t) => {
  process.on('exit', killSoakContainers);
  return withLab(t, { hosts: 4, subnet: '192.168.82.0/24' }, async (lab, cli) => {
    const result = await soak(lab, cli, {
      churnMs: 20_000,
      minOps: 6,
      maxChurnMs: 90_000,
      quietMs: 1_000,
      warmupMs: 4_000,
      warmupMinOps: 3,
      quietGcSeconds: 4,
      settledTimeoutMs: 45_000,
      settleMs: 30_000,
      pauseMs: 100,
      maxChurnPerHost: 4,
      maxPingGapMs: 2_000,
      maxRssGrowthMb: 5,
      rssGoalMb: 64,
      seed: 12,
      log: (line) => t.diagnostic(line),
    });
    assert.ok(result.ops['start']! >= 1 && Object.values(result.ops).reduce((a, b) => a + b, 0) >= 4, `the churn did something: ${JSON.stringify(result.ops)}`);
    assert.deepEqual(result.problems, []);
  }).finally(() => {
    killSoakContainers();
    process.off('exit', killSoakContainers);
  });
});
