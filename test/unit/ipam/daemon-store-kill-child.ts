/**
 * Child process for daemon-store.test.ts: writes through a group-commit SqliteStore, then kills
 * itself with SIGKILL (no close). Does nothing unless started by that test.
 */
import { parseCidr } from '../../../src/ipam/cidr.js';
import { Ring } from '../../../src/ipam/ring.js';
import { encodeRing } from '../../../src/ipam/ring-codec.js';
import { SqliteStore } from '../../../src/ipam/store-sqlite.js';
import { peerName } from './harness.js';

const dir = process.argv[2];
if (process.env['LOOM_IPAM_GROUP_KILL_CHILD'] === '1' && dir) {
  const store = new SqliteStore(dir, { groupCommit: true });
  const subnet = '10.32.0.0/12';
  for (let i = 0; i < 50; i++) store.putAllocation({ containerId: `durable${i}`, subnet, address: 0x0a200001 + i, released: false });
  await store.durable();
  // A ring write commits the queue before it, in the same fsynced transaction.
  for (let i = 0; i < 5; i++) store.putAllocation({ containerId: `before-ring${i}`, subnet, address: 0x0a200100 + i, released: false });
  store.saveRing(encodeRing(Ring.initial(parseCidr(subnet), [peerName(1)])));
  // Queued, never awaited: nobody was told, so losing these is allowed.
  for (let i = 0; i < 5; i++) store.putAllocation({ containerId: `unconfirmed${i}`, subnet, address: 0x0a200200 + i, released: false });
  process.stdout.write(`${JSON.stringify(store.commits)}\n`);
  process.kill(process.pid, 'SIGKILL');
}
