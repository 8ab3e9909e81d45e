/**
 * The short form of `npm run chaos` inside `npm test` (test/chaos/run.ts runs the long one): the
 * kill-restart scenario on three hosts (h1-h2 without UDP, so relayed through h3), killing h1's
 * router (one fast-path peer, one relayed; the long form kills each in turn): the ping matrix whole again within 5 s of each restart, the fast-path
 * transfer across the crash complete, no address change, no duplicate peer. And the flood scenario
 * at a fifth of its long size: the API answers within 1 s and container traffic keeps flowing
 * during a TCP burst on 6783, UDP garbage on the data ports and a slowloris on the API. And the
 * link-flap scenario for 10 s instead of a minute: no connection ends after the flaps, router RSS
 * does not grow, the matrix is whole again.
 * Needs root, nft, ping, nsenter (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipFor, withLab } from '../helpers/lab.js';
import { killContainers } from '../helpers/underlay.js';
import { flood } from '../chaos/flood.js';
import { killRestart } from '../chaos/kill-restart.js';
import { linkFlap } from '../chaos/link-flap.js';

const skip = labSkipFor(['ping', 'nsenter']);

test('chaos (short): kill -9 of a router with fast-path and relayed peers; the matrix is whole within 5 s of the restart and nothing is lost', { skip, timeout: 240_000 }, (t) => {
  process.on('exit', killContainers);
  return withLab(t, { hosts: 3, subnet: '192.168.88.0/24' }, async (lab, cli) => {
    const result = await killRestart(lab, cli, { victims: [0], wholeWithinMs: 5_000, log: (line) => t.diagnostic(line) });
    assert.deepEqual(result.problems, []);
  }).finally(() => {
    killContainers();
    process.off('exit', killContainers);
  });
});

test('chaos (short): floods on the mesh port, the data ports and the API leave status fast and traffic flowing', { skip, timeout: 180_000 }, (t) => {
  process.on('exit', killContainers);
  return withLab(t, { hosts: 3, subnet: '192.168.86.0/24' }, async (lab, cli) => {
    const result = await flood(lab, cli, {
      tcpConnections: 2_000,
      udpSeconds: 4,
      udpPacketsPerSecond: 10_000,
      slowlorisConnections: 300,
      slowlorisSeconds: 4,
      statusLimitMs: 1_000,
      maxPingGapMs: 2_000,
      log: (line) => t.diagnostic(line),
    });
    assert.deepEqual(result.problems, []);
  }).finally(() => {
    killContainers();
    process.off('exit', killContainers);
  });
});

test('chaos (short): a flapping underlay link leaves no connection flapping and no memory growth', { skip, timeout: 180_000 }, (t) => {
  process.on('exit', killContainers);
  return withLab(t, { hosts: 3, subnet: '192.168.84.0/24' }, async (lab, cli) => {
    const result = await linkFlap(lab, cli, { flapMs: 10_000, periodMs: 2_000, quietMs: 5_000, maxGrowthMb: 5, log: (line) => t.diagnostic(line) });
    assert.deepEqual(result.problems, []);
  }).finally(() => {
    killContainers();
    process.off('exit', killContainers);
  });
});
