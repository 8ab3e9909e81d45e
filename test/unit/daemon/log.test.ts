import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDaemonLogger, lossyDestination } from '../../../src/daemon/log.js';
import { LoomError } from '../../../src/core/errors.js';

/** A file descriptor stand-in: takes bytes while `refuse` is null, else throws that errno. */
function fakeFile(): { text: () => string; refuse: string | null; short: boolean; write: (fd: number, bytes: Uint8Array) => number } {
  const chunks: Buffer[] = [];
  const file = {
    refuse: null as string | null,
    short: false,
    text: () => Buffer.concat(chunks).toString(),
    write: (_fd: number, bytes: Uint8Array): number => {
      if (file.refuse !== null) throw Object.assign(new Error(file.refuse), { code: file.refuse });
      // A short write takes at most 3 bytes at a time.
      const n = file.short ? Math.min(3, bytes.length) : bytes.length;
      chunks.push(Buffer.from(bytes.subarray(0, n)));
      return n;
    },
  };
  return file;
}

test('a log line the disk refuses is dropped without a throw; the next line that goes through is followed by one note of how many were lost', () => {
  const file = fakeFile();
  const notes: Array<[number, string]> = [];
  const dest = lossyDestination(9, { write: file.write, onRecovered: (lost, code) => notes.push([lost, code]) });
  dest.write('one\n');
  file.refuse = 'ENOSPC';
  assert.doesNotThrow(() => dest.write('two\n'));
  dest.write('three\n');
  assert.equal(dest.lost, 2);
  file.refuse = 'EROFS';
  dest.write('four\n');
  assert.equal(dest.lost, 3);
  assert.deepEqual(notes, [], 'nothing is said while the disk refuses');
  file.refuse = null;
  dest.write('five\n');
  assert.deepEqual(notes, [[3, 'ENOSPC']], 'once, with the first error of the outage');
  assert.equal(dest.lost, 0);
  dest.write('six\n');
  assert.equal(notes.length, 1, 'no note while nothing is lost');
  assert.equal(file.text(), 'one\nfive\nsix\n');
});

test('short writes are completed; EAGAIN is retried a bounded number of times, then the line counts as lost', () => {
  const file = fakeFile();
  file.short = true;
  const dest = lossyDestination(9, { write: file.write });
  dest.write('{"msg":"a long line"}\n');
  assert.equal(file.text(), '{"msg":"a long line"}\n');
  file.refuse = 'EAGAIN';
  dest.write('never\n');
  assert.equal(dest.lost, 1);
});

test('a logged error\'s type is its name, not its class\'s (minified in the daemon bundle)', () => {
  const file = fakeFile();
  const logger = createDaemonLogger({ destination: lossyDestination(1, { write: file.write }) });
  // A class whose own name differs from the name it gives its errors, as a minified class does.
  class Xq extends Error {
    override readonly name = 'StorageError';
  }
  logger.child({ component: 't' }).error({ err: new Xq('disk full') }, 'one');
  logger.error({ err: new LoomError('ERR_TIMEOUT', 'slow') }, 'two');
  logger.error({ err: new TypeError('bad') }, 'three');
  logger.flush();
  const lines = file.text().trim().split('\n').map((l) => JSON.parse(l) as { err: { type: string; message: string; code?: string } });
  assert.deepEqual(lines.map((l) => [l.err.type, l.err.message]), [['StorageError', 'disk full'], ['LoomError', 'slow'], ['TypeError', 'bad']]);
  assert.equal(lines[1]!.err.code, 'ERR_TIMEOUT');
});
