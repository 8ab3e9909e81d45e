/**
 * The ids IPAM accepts: container ids, the host's own `host:<peer>`, and the ids the daemon derives
 * for attached namespaces and exposed addresses (they carry ':' and '/', which a container id
 * may not; before this, IPAM refused them, so `loom attach` and `loom expose net:CIDR` failed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllocationId } from '../../../src/ipam/allocations.js';

test('allocation ids: containers, host, attach and expose ids pass; anything else is ERR_INVALID_ARGUMENT', () => {
  for (const id of ['3da5241edbf6', 'host:66:38:e2:a5:88:b9', 'attach:pid:4242:777', 'attach:netns:4:4026532871', 'expose:net:10.33.0.0/16', 'expose:10.32.9.9/12']) {
    assert.equal(parseAllocationId(id), id);
  }
  for (const bad of ['', 'attach:', 'expose:a b', `attach:${'x'.repeat(121)}`, 'other:1', 'host:nope', 7, null]) {
    assert.throws(() => parseAllocationId(bad), { code: 'ERR_INVALID_ARGUMENT' }, String(bad));
  }
});
