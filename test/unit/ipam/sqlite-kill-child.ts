/**
 * Child process for store-sqlite.test.ts: writes IPAM state, then kills itself with SIGKILL
 * (no close, no cleanup). Does nothing unless started by that test (it lives under test/, so
 * a directory-wide `node --test` may also load it).
 */
import { parseCidr } from '../../../src/ipam/cidr.js';
import { Ring } from '../../../src/ipam/ring.js';
import { encodeRing } from '../../../src/ipam/ring-codec.js';
import { SqliteStore } from '../../../src/ipam/store-sqlite.js';
import { peerName } from './harness.js';

const dir = process.argv[2];
if (process.env['LOOM_IPAM_KILL_CHILD'] === '1' && dir) {
  const store = new SqliteStore(dir);
  store.saveRing(encodeRing(Ring.initial(parseCidr('10.32.0.0/12'), [peerName(1), peerName(2)])));
  for (let i = 0; i < 100; i++) store.putAllocation({ containerId: `c${i}`, subnet: '10.32.0.0/12', address: 0x0a200001 + i, released: i % 10 === 0 });
  store.deleteAllocation('c99', '10.32.0.0/12');
  process.kill(process.pid, 'SIGKILL');
}
