import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileDurable, type DurableFileOps } from '../../../src/os/durable-file.js';
import { LoomError } from '../../../src/core/errors.js';

function scratch(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'loom-durable-'));
  t.after(() => {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** The umask without changing it (process.umask() with no argument writes it twice). */
function currentUmask(): number {
  const mask = process.umask(0o022);
  process.umask(mask);
  return mask;
}

test('writes a new file, then replaces its content; no temp file is left', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'state.json');
  writeFileDurable(path, '{"a":1}\n');
  assert.equal(readFileSync(path, 'utf8'), '{"a":1}\n');
  writeFileDurable(path, Buffer.from('second'));
  assert.equal(readFileSync(path, 'utf8'), 'second');
  assert.deepEqual(readdirSync(dir), ['state.json']);
});

test('the content is replaced atomically: a reader of the old file still sees all of the old content', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'peer-name');
  const old = 'old content '.repeat(1000);
  writeFileSync(path, old);
  const inodeBefore = statSync(path).ino;
  const reader = openSync(path, 'r');
  try {
    writeFileDurable(path, 'new');
    const buf = Buffer.alloc(old.length + 10);
    const n = readSync(reader, buf, 0, buf.length, 0);
    assert.equal(buf.subarray(0, n).toString(), old, 'the old file was not truncated or written in place');
  } finally {
    closeSync(reader);
  }
  assert.notEqual(statSync(path).ino, inodeBefore, 'a new file was renamed over the old one');
  assert.equal(readFileSync(path, 'utf8'), 'new');
});

test('mode: the given mode (less the umask) on a new file and on a replaced one; 0o666 by default', (t) => {
  const dir = scratch(t);
  const umask = currentUmask();
  const path = join(dir, 'secret');
  writeFileDurable(path, 'x', 0o600);
  assert.equal(statSync(path).mode & 0o777, 0o600 & ~umask);
  chmodSync(path, 0o644);
  writeFileDurable(path, 'y', 0o600);
  assert.equal(statSync(path).mode & 0o777, 0o600 & ~umask, 'the earlier file’s mode is not carried over');
  const plain = join(dir, 'plain');
  writeFileDurable(plain, 'z');
  assert.equal(statSync(plain).mode & 0o777, 0o666 & ~umask);
});

test('a failed rename (the target is a directory) throws and removes the temp file', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'taken');
  mkdirSync(path);
  writeFileSync(join(path, 'inside'), 'keep');
  assert.throws(() => writeFileDurable(path, 'data'), (err: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(err.code ?? ''));
  assert.deepEqual(readdirSync(dir), ['taken'], 'no temp file left behind');
  assert.equal(readFileSync(join(path, 'inside'), 'utf8'), 'keep');
});

test('a missing directory is ENOENT and creates nothing', (t) => {
  const dir = scratch(t);
  assert.throws(() => writeFileDurable(join(dir, 'no-such-dir', 'f'), 'data'), { code: 'ENOENT' });
  assert.deepEqual(readdirSync(dir), []);
});

/**
 * A read-only directory: the write fails, the old content stays, nothing is left behind. Root
 * writes into a read-only directory anyway, so as root the write runs in a child process as
 * nobody (uid 65534), which the directory's mode does stop.
 */
test('a read-only directory: the write fails, the old file is untouched, no temp file is left', (t) => {
  const dir = scratch(t);
  chmodSync(dir, 0o755);
  const path = join(dir, 'state');
  writeFileSync(path, 'old', { mode: 0o644 });
  chmodSync(dir, 0o555);

  const here = fileURLToPath(import.meta.url);
  const fromTs = here.endsWith('.ts');
  const helper = new URL(`../../../src/os/durable-file.${fromTs ? 'ts' : 'js'}`, import.meta.url).href;
  const script = `
    const { writeFileDurable } = await import(${JSON.stringify(helper)});
    try {
      writeFileDurable(${JSON.stringify(path)}, 'new');
      process.stdout.write('written');
    } catch (err) {
      process.stdout.write(err.code);
    }
  `;
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const child = spawnSync(process.execPath, [...(fromTs ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script], { encoding: 'utf8', ...asNobody });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout, 'EACCES');
  assert.equal(readFileSync(path, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['state']);
});

/** Node's file operations, with `failing` throwing `code` instead (a full or read-only disk on cue). */
function failingOps(failing: keyof DurableFileOps, code: string): DurableFileOps & { unlinked: string[] } {
  const unlinked: string[] = [];
  const real: DurableFileOps = { openSync, writeFileSync, fsyncSync, closeSync, renameSync, unlinkSync };
  const fail = (): never => {
    throw Object.assign(new Error(`${code}: refused`), { code });
  };
  return {
    ...real,
    unlinked,
    [failing]: fail,
    unlinkSync: (p: string) => {
      unlinked.push(p);
      if (failing === 'unlinkSync') fail();
      real.unlinkSync(p);
    },
  };
}

test('a full disk (ENOSPC) while writing is ERR_STORAGE naming the file; the old content stays and no temp file is left', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'attachments.json');
  writeFileDurable(path, 'old');
  for (const step of ['writeFileSync', 'fsyncSync', 'renameSync'] as const) {
    const ops = failingOps(step, 'ENOSPC');
    assert.throws(
      () => writeFileDurable(path, 'new', 0o600, ops),
      (err: unknown) => err instanceof LoomError && err.code === 'ERR_STORAGE' && err.message === `cannot write ${path}: the disk is full (ENOSPC)`,
      step,
    );
    assert.equal(readFileSync(path, 'utf8'), 'old', `the target is untouched when ${step} fails`);
    assert.deepEqual(readdirSync(dir), ['attachments.json'], `no temp file is left when ${step} fails`);
    assert.equal(ops.unlinked.length, 1, 'the temp file was removed');
  }
});

test('a read-only file system (EROFS) at the temp file is ERR_STORAGE; other errors keep their errno', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'peer-name');
  assert.throws(
    () => writeFileDurable(path, 'x', 0o644, failingOps('openSync', 'EROFS')),
    (err: unknown) => err instanceof LoomError && err.code === 'ERR_STORAGE' && /read-only \(EROFS\)$/.test(err.message) && err.message.includes(path),
  );
  assert.throws(() => writeFileDurable(path, 'x', 0o644, failingOps('openSync', 'EACCES')), { code: 'EACCES' });
  assert.deepEqual(readdirSync(dir), []);
});
