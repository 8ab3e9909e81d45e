import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoomError } from '../../../src/core/errors.js';
import { parseBenchArgs } from '../../../bench/dataplane/args.js';
import { missingExecutables, onPath } from '../../../bench/dataplane/executables.js';
import { DATA_PATHS } from '../../../bench/dataplane/paths/index.js';
import { CONDITIONS, peerMtu, runsUnder, targetFor } from '../../../bench/dataplane/conditions.js';

const IDS = ['veth', 'vxlan', 'tinc'];

test('defaults: 3 runs of 5 s, 50 pings, every path under every condition on a realistic wire, chart at the default place', () => {
  const o = parseBenchArgs([], IDS, '/repo/docs/dataplane-bench.svg');
  assert.deepEqual(o, {
    runs: 3,
    seconds: 5,
    pingCount: 50,
    only: [],
    conditions: ['clean', 'nofrag', 'loss1', 'mtu1400'],
    gsoWire: false,
    svgPath: '/repo/docs/dataplane-bench.svg',
    jsonPath: null,
    budgetSeconds: 840,
    help: false,
  });
});

test('--conditions picks underlay conditions (deduplicated); --gso-wire lets trains cross whole', () => {
  const o = parseBenchArgs(['--conditions', 'loss1, clean,loss1', '--gso-wire'], IDS, 'd.svg');
  assert.deepEqual(o.conditions, ['loss1', 'clean']);
  assert.equal(o.gsoWire, true);
  for (const argv of [['--conditions', 'lossy'], ['--conditions', ','], ['--conditions', 'clean,mtu9000']]) {
    assert.throws(() => parseBenchArgs(argv, IDS, 'd.svg'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), argv.join(' '));
  }
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
  assert.deepEqual(DATA_PATHS.filter((p) => p.optIn === true).map((p) => p.id), ['loom-relay-enc-jumbo'], 'the jumbo row runs only when asked for');
});

test('conditions: clean runs every default path; the others the peers and Loom\'s relay rows only', () => {
  const ids = (condition: string, only: string[] = []): string[] =>
    DATA_PATHS.filter((p) => runsUnder(p, CONDITIONS.find((c) => c.id === condition)!, only)).map((p) => p.id);
  assert.deepEqual(ids('clean'), ['veth', 'vxlan', 'tinc', 'nebula', 'wireguard-go', 'loom-fast', 'loom-relay', 'loom-relay-enc']);
  for (const c of ['nofrag', 'loss1', 'mtu1400']) assert.deepEqual(ids(c), ['tinc', 'nebula', 'wireguard-go', 'loom-relay', 'loom-relay-enc'], c);
  assert.deepEqual(ids('clean', ['loom-relay-enc-jumbo', 'tinc']), ['tinc', 'loom-relay-enc-jumbo']);
  assert.deepEqual(ids('loss1', ['vxlan']), [], 'the kernel rows are not part of the degraded conditions');
  assert.deepEqual(CONDITIONS.map((c) => [c.id, c.mtu, c.degrade ?? null]), [
    ['clean', 1500, null],
    ['nofrag', 1500, { dropFragments: true }],
    ['loss1', 1500, { lossPercent: 1 }],
    ['mtu1400', 1400, null],
  ]);
});

test('targets per condition: sealed relay 2x / 1.5x / 1x the best peer, RTT within 2x, no fragments; fast path 0.95x VXLAN', () => {
  assert.deepEqual(targetFor('loom-relay-enc', 'clean'), { minMbpsVsBestPeer: 2, maxRttVsBestPeer: 2, maxFragments: 0 });
  assert.equal(targetFor('loom-relay-enc', 'nofrag')?.minMbpsVsBestPeer, 1.5);
  assert.equal(targetFor('loom-relay-enc', 'mtu1400')?.minMbpsVsBestPeer, 1.5);
  assert.equal(targetFor('loom-relay-enc', 'loss1')?.minMbpsVsBestPeer, 1.0);
  assert.deepEqual(targetFor('loom-relay', 'loss1'), { minMbpsVsBestPeer: 1, maxRttVsBestPeer: 2, maxFragments: 0 });
  assert.deepEqual(targetFor('loom-fast', 'clean'), { minMbpsVsVxlan: 0.95, maxRttVsVxlan: 1.2, maxFragments: 0 });
  assert.equal(targetFor('tinc', 'clean'), undefined);
  assert.equal(targetFor('loom-relay-enc-jumbo', 'clean'), undefined);
  assert.equal(peerMtu(1400, 1500), 1400);
  assert.equal(peerMtu(1420, 1400), 1320);
  assert.equal(peerMtu(1400, 1400), 1300);
});
