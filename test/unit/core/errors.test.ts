/**
 * LoomError's instanceof holds across copies of src/core/errors (the CLI's start-up bundle has
 * its own copy; the client and the daemon modules it loads later throw with theirs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LoomError, isLoomError, toLoomError } from '../../../src/core/errors.js';
import { KubeStatusError } from '../../../src/kube/client.js';

test('a LoomError from another copy of the module is a LoomError here, and keeps its code through toLoomError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-errors-'));
  try {
    const copy = join(dir, 'errors.js');
    copyFileSync(fileURLToPath(new URL('../../../src/core/errors.js', import.meta.url)), copy);
    const other = (await import(pathToFileURL(copy).href)) as typeof import('../../../src/core/errors.js');
    assert.notEqual(other.LoomError, LoomError, 'a second module instance (guards against a vacuous pass)');
    const err = new other.LoomError('ERR_NOT_FOUND', 'no such container');
    assert.ok(err instanceof LoomError);
    assert.ok(isLoomError(err, 'ERR_NOT_FOUND'));
    assert.equal(toLoomError(err), err, 'not wrapped into ERR_INTERNAL');
    assert.ok(new LoomError('ERR_CONFLICT', 'x') instanceof other.LoomError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('instanceof is still false for other errors and values, and subclasses keep the prototype check', () => {
  for (const value of [new Error('x'), { code: 'ERR_NOT_FOUND', message: 'x' }, null, undefined, 'ERR_NOT_FOUND', 7]) assert.equal(value instanceof LoomError, false);
  const plain = new LoomError('ERR_UNAVAILABLE', 'x');
  assert.equal(plain instanceof KubeStatusError, false);
  const sub = new KubeStatusError(410, {});
  assert.ok(sub instanceof KubeStatusError && sub instanceof LoomError && sub.code === 'ERR_CONFLICT');
  assert.deepEqual(Object.keys(plain).sort(), ['code', 'detail', 'name'], 'the mark is not an enumerable property (JSON, deepEqual)');
  assert.equal(JSON.stringify(plain), JSON.stringify({ code: 'ERR_UNAVAILABLE', message: 'x' }));
});
