import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitAddress } from '../../../src/cli/commands/run.js';
import { isLoomError } from '../../../src/core/errors.js';

test('loom run: the optional address is told from the command by its shape', () => {
  assert.deepEqual(splitAddress(['10.32.0.5/12', 'sleep', 'infinity']), { cidr: '10.32.0.5/12', cmd: ['sleep', 'infinity'] });
  assert.deepEqual(splitAddress(['net:10.2.3.0/24', 'sh']), { cidr: 'net:10.2.3.0/24', cmd: ['sh'] });
  assert.deepEqual(splitAddress(['net:default', 'sh']), { cidr: 'net:default', cmd: ['sh'] });
  assert.deepEqual(splitAddress(['sleep', 'infinity']), { cidr: '', cmd: ['sleep', 'infinity'] }, 'no address = net:default');
  assert.deepEqual(splitAddress(['10.0.0.1', 'x']), { cidr: '', cmd: ['10.0.0.1', 'x'] }, 'an address without a prefix is not an address spec');
  assert.throws(() => splitAddress(['10.32.0.5/12']), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => splitAddress([]), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
});
