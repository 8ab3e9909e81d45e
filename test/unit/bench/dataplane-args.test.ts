import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoomError } from '../../../src/core/errors.js';
import { parseBenchArgs } from '../../../bench/dataplane/args.js';
import { missingExecutables, onPath } from '../../../bench/dataplane/executables.js';
import { DATA_PATHS } from '../../../bench/dataplane/paths/index.js';

const IDS = ['veth', 'vxlan', 'tinc'];

test('defaults: 3 runs of 5 s, 50 pings, every path, chart at the default place', () => {
  const o = parseBenchArgs([], IDS, '/repo/docs/dataplane-bench.svg');
  assert.deepEqual(o, { runs: 3, seconds: 5, pingCount: 50, only: [], svgPath: '/repo/docs/dataplane-bench.svg', jsonPath: null, budgetSeconds: 270, help: false });
});

test('options are parsed and bounded', () => {
  const o = parseBenchArgs(['--runs', '1', '--seconds', '2', '--only', 'vxlan, tinc', '--no-svg', '--json', '/tmp/x.json'], IDS, 'd.svg');
  assert.equal(o.runs, 1);
  assert.equal(o.seconds, 2);
  assert.deepEqual(o.only, ['vxlan', 'tinc']);
  assert.equal(o.svgPath, null);
  assert.equal(o.jsonPath, '/tmp/x.json');
});

test('bad arguments are ERR_INVALID_ARGUMENT, never a crash', () => {
  const bad = [
    ['--runs', '0'],
    ['--runs', '11'],
    ['--runs', '2.5'],
    ['--seconds', '-1'],
    ['--seconds', 'abc'],
    ['--only', 'nope'],
    ['--bogus'],
    ['positional'],
    ['--svg', 'a.svg', '--no-svg'],
    ['--pings', '1'],
  ];
  for (const argv of bad) assert.throws(() => parseBenchArgs(argv, IDS, 'd.svg'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), argv.join(' '));
});

test('a peer is found only when it is an executable file on PATH', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpbench-path-'));
  try {
    writeFileSync(join(dir, 'fake-peer'), '#!/bin/sh\n');
    chmodSync(join(dir, 'fake-peer'), 0o755);
    writeFileSync(join(dir, 'not-exec'), 'x');
    chmodSync(join(dir, 'not-exec'), 0o644);
    assert.equal(onPath('fake-peer', dir), true);
    assert.equal(onPath('not-exec', dir), false);
    assert.equal(onPath('../etc/passwd', dir), false);
    assert.deepEqual(missingExecutables(['fake-peer', 'surely-not-here-xyz', 'not-exec'], `/nonexistent:${dir}`), ['surely-not-here-xyz', 'not-exec']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the path list: unique ids, the reference rows, the peers, and Loom rows with their targets', () => {
  const ids = DATA_PATHS.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual(ids.slice(0, 5), ['veth', 'vxlan', 'tinc', 'nebula', 'wireguard-go']);
  assert.ok(DATA_PATHS.filter((p) => p.group === 'peer').every((p) => p.encrypted && p.requires.length > 0));
  const loom = DATA_PATHS.filter((p) => p.group === 'loom');
  assert.deepEqual(
    loom.map((p) => p.id),
    ['loom-fast', 'loom-relay', 'loom-relay-enc', 'loom-relay-enc-jumbo'],
    'fast path, relay plain, relay encrypted, and the informative jumbo-MTU row',
  );
  assert.deepEqual(loom.find((p) => p.id === 'loom-fast')?.target, { minMbpsVsVxlan: 0.9, maxRttVsVxlan: 1.2 });
  assert.deepEqual(loom.find((p) => p.id === 'loom-relay-enc')?.target, { minMbpsVsBestPeer: 1.0 });
});
