/**
 * The short form of `npm run chaos` inside `npm test` (test/chaos/run.ts runs the long one): the
 * kill-restart scenario on three hosts (h1-h2 without UDP, so relayed through h3), killing h1's
 * router (one fast-path peer, one relayed; the long form kills each in turn): the ping matrix whole again within 5 s of each restart, the fast-path
 * transfer across the crash complete, no address change, no duplicate peer.
 * Needs root, nft, ping, nsenter (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { labSkipReason, withLab } from '../helpers/lab.js';
import { killContainers } from '../helpers/underlay.js';
import { killRestart } from '../chaos/kill-restart.js';

const missing = ['ping', 'nsenter'].filter((c) => !['/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(`${d}/${c}`)));
const skip = labSkipReason() ?? (missing.length > 0 ? `missing ${missing.join(', ')}` : false);

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
