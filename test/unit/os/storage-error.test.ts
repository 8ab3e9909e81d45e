import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoomError } from '../../../src/core/errors.js';
import { storageErrorCode, storageFailure } from '../../../src/os/storage-error.js';

const errno = (code: string, path?: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: failed`), { code, ...(path === undefined ? {} : { path }) });

test('errno and SQLite codes of a full, read-only or failing disk are storage failures; others are not', () => {
  assert.equal(storageErrorCode(errno('ENOSPC')), 'ENOSPC');
  assert.equal(storageErrorCode(errno('EROFS')), 'EROFS');
  assert.equal(storageErrorCode(errno('EDQUOT')), 'EDQUOT');
  assert.equal(storageErrorCode(errno('EIO')), 'EIO');
  assert.equal(storageErrorCode(errno('SQLITE_FULL')), 'SQLITE_FULL');
  assert.equal(storageErrorCode(errno('SQLITE_READONLY_DBMOVED')), 'SQLITE_READONLY_DBMOVED');
  assert.equal(storageErrorCode(errno('SQLITE_IOERR_WRITE')), 'SQLITE_IOERR_WRITE');
  for (const other of ['ENOENT', 'EACCES', 'EEXIST', 'SQLITE_CONSTRAINT', 'SQLITE_FULLX']) assert.equal(storageErrorCode(errno(other)), null, other);
  assert.equal(storageErrorCode('ENOSPC'), null, 'a bare string is not an error');
  assert.equal(storageErrorCode(null), null);
});

test('the code is found in the cause chain, and in the strerror text of a failed command', () => {
  const wrapped = new LoomError('ERR_INTERNAL', 'could not write IPAM state', { cause: errno('SQLITE_FULL') });
  assert.equal(storageErrorCode(wrapped), 'SQLITE_FULL');
  const command = new LoomError('ERR_OS_COMMAND', "mkfifo -m 600 /s/containers/x.gate failed (exit 1): mkfifo: cannot create fifo '/s/containers/x.gate': Read-only file system");
  assert.equal(storageErrorCode(command), 'EROFS');
  assert.equal(storageErrorCode(new Error('write: No space left on device')), 'ENOSPC');
  assert.equal(storageErrorCode(new Error('mkfifo: cannot create fifo: Permission denied')), null);
});

test('storageFailure: ERR_STORAGE naming the file (the error\'s own path first) and the reason; null for anything else', () => {
  const full = storageFailure(errno('ENOSPC'), '/state/containers/a.json');
  assert.ok(full instanceof LoomError);
  assert.equal(full.code, 'ERR_STORAGE');
  assert.equal(full.message, 'cannot write /state/containers/a.json: the disk is full (ENOSPC)');
  assert.deepEqual(full.detail, { path: '/state/containers/a.json', errno: 'ENOSPC' });
  const ro = storageFailure(errno('EROFS', '/state/loom.log'), '/state', 'open');
  assert.equal(ro?.message, 'cannot open /state/loom.log: the file system is read-only (EROFS)');
  assert.equal(storageFailure(errno('SQLITE_FULL'), '/state/ipam.db')?.message, 'cannot write /state/ipam.db: the disk is full (SQLITE_FULL)');
  assert.equal(storageFailure(errno('ENOENT'), '/state/x'), null);
  const already = new LoomError('ERR_STORAGE', 'cannot write /a: the disk is full (ENOSPC)');
  assert.equal(storageFailure(already, '/b'), already, 'an ERR_STORAGE comes back as it is');
});
