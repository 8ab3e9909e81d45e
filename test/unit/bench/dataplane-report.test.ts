import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRows, renderMarkdownTable, renderVerdicts, targetText } from '../../../bench/dataplane/report.js';
import type { PathGroup, PathOutcome, PathResult, PathTarget } from '../../../bench/dataplane/types.js';

function measured(mbps: number[], rtt: number, cpu: number | null = null, fragments?: number): PathOutcome {
  return {
    kind: 'measured',
    measurement: {
      mtu: 1450,
      rttMedianMs: rtt,
      rttSamples: 50,
      pingLossPct: 0,
      runs: mbps.map((m) => ({ mbps: m, retransmits: 0, daemonCpuPct: cpu, machineBusyPct: 180 })),
      ...(fragments === undefined ? {} : { underlayFragments: fragments, underlayPackets: 1000 }),
    },
  };
}

function result(id: string, group: PathGroup, outcome: PathOutcome, encrypted = false, target?: PathTarget, condition?: string): PathResult {
  return { id, label: `label ${id}`, group, encrypted, outcome, ...(target ? { target } : {}), ...(condition === undefined ? {} : { condition }) };
}

const FAST_TARGET: PathTarget = { minMbpsVsVxlan: 0.9, maxRttVsVxlan: 1.2 };
const ENC_TARGET: PathTarget = { minMbpsVsBestPeer: 1.0 };

test('ratios: against the VXLAN row, and encrypted rows against the best encrypted peer', () => {
  const rows = buildRows([
    result('veth', 'limit', measured([16000], 0.05)),
    result('vxlan', 'kernel', measured([9000, 10000, 11000], 0.1)),
    result('tinc', 'peer', measured([500], 0.3, 80), true),
    result('nebula', 'peer', measured([400], 0.4, 90), true),
  ]);
  const [veth, vxlan, tinc, nebula] = rows;
  assert.equal(vxlan!.mbps, 10000);
  assert.equal(vxlan!.mbpsMin, 9000);
  assert.equal(vxlan!.mbpsMax, 11000);
  assert.equal(veth!.mbpsVsVxlan, 1.6);
  assert.equal(veth!.rttVsVxlan, 0.5);
  assert.equal(veth!.mbpsVsBestPeer, undefined, 'an unencrypted row has no peer ratio');
  assert.equal(tinc!.mbpsVsBestPeer, 1);
  assert.equal(nebula!.mbpsVsBestPeer, 0.8);
  assert.equal(tinc!.daemonCpuPct, 80);
  assert.equal(vxlan!.daemonCpuPct, null);
});

test('Loom targets: pass and fail are judged on this run\'s reference rows', () => {
  const base = [result('vxlan', 'kernel', measured([10000], 0.1)), result('tinc', 'peer', measured([500], 0.3), true)];
  const pass = buildRows([...base, result('loom-fast', 'loom', measured([9500], 0.11), false, FAST_TARGET), result('loom-enc', 'loom', measured([520], 0.5), true, ENC_TARGET)]);
  assert.equal(pass[2]!.target?.verdict, 'pass');
  assert.equal(pass[3]!.target?.verdict, 'pass');
  assert.equal(pass[2]!.targetMbps, 9000);
  assert.ok(Math.abs(pass[2]!.targetRttMs! - 0.12) < 1e-9);
  assert.equal(pass[3]!.targetMbps, 500);

  const slowRtt = buildRows([...base, result('loom-fast', 'loom', measured([9500], 0.13), false, FAST_TARGET)]);
  assert.equal(slowRtt[2]!.target?.verdict, 'fail', 'RTT 1.3x VXLAN breaks the 1.2x target even at full throughput');
  const slowEnc = buildRows([...base, result('loom-enc', 'loom', measured([499], 0.3), true, ENC_TARGET)]);
  assert.equal(slowEnc[2]!.target?.verdict, 'fail');
  // The plain relay has no encrypted counterpart among the peers, yet its target is "above the best peer".
  const plain = buildRows([...base, result('loom-relay', 'loom', measured([600], 0.5), false, ENC_TARGET)]);
  assert.equal(plain[2]!.mbpsVsBestPeer, 1.2);
  assert.equal(plain[2]!.target?.verdict, 'pass');
  const slowPlain = buildRows([...base, result('loom-relay', 'loom', measured([400], 0.5), false, ENC_TARGET)]);
  assert.equal(slowPlain[2]!.target?.verdict, 'fail');
});

test('a pending Loom row shows its target as pending; without a reference row a verdict is impossible', () => {
  const rows = buildRows([
    result('vxlan', 'kernel', { kind: 'failed', reason: 'ERR_TIMEOUT: boom' }),
    result('loom-fast', 'loom', { kind: 'pending', reason: 'not built' }, false, FAST_TARGET),
    result('loom-fast2', 'loom', measured([9000], 0.1), false, FAST_TARGET),
  ]);
  assert.equal(rows[1]!.target?.verdict, 'pending');
  assert.equal(rows[2]!.target?.verdict, 'no reference');
  assert.equal(rows[2]!.mbpsVsVxlan, undefined);
});

test('markdown: one line per path, skipped and pending rows say why, targets are spelled out', () => {
  const md = renderMarkdownTable(
    buildRows([
      result('vxlan', 'kernel', measured([10000], 0.1)),
      result('nebula', 'peer', { kind: 'skipped', reason: 'not installed: nebula' }, true),
      result('loom-fast', 'loom', { kind: 'pending', reason: 'not built' }, false, FAST_TARGET),
    ]),
  );
  const lines = md.trim().split('\n');
  assert.equal(lines.length, 5);
  assert.match(lines[2]!, /^\| - \| label vxlan \| 1450 \| 10000 \(10000-10000, 1\) \| 0\.100 \| - \| - \| - \| 180 \| 1\.00x \| 1\.00x \| - \| - \|/);
  assert.equal(lines[0]!.split('|').length, lines[1]!.split('|').length, 'header and rule have as many columns');
  assert.equal(lines[2]!.split('|').length, lines[0]!.split('|').length);
  assert.equal(lines[3]!.split('|').length, lines[0]!.split('|').length);
  assert.match(lines[3]!, /skipped \(not installed: nebula\)/);
  assert.match(lines[4]!, /pending \(not built\)/);
  assert.match(lines[4]!, />= 0\.9x VXLAN Mbit\/s, RTT <= 1\.2x VXLAN: \*\*pending\*\*/);
  assert.equal(targetText(ENC_TARGET), '>= 1x best peer Mbit/s');
});

const SEALED_CLEAN: PathTarget = { minMbpsVsBestPeer: 2, maxRttVsBestPeer: 2, maxFragments: 0 };
const SEALED_LOSS: PathTarget = { minMbpsVsBestPeer: 1, maxRttVsBestPeer: 2, maxFragments: 0 };

test('conditions: each row is compared with the peers under its own condition only', () => {
  const rows = buildRows([
    result('tinc', 'peer', measured([500], 0.3, 80, 0), true, undefined, 'clean'),
    result('nebula', 'peer', measured([400], 0.2, 90, 0), true, undefined, 'clean'),
    result('loom-relay-enc', 'loom', measured([1100], 0.35, 150, 0), true, SEALED_CLEAN, 'clean'),
    result('tinc', 'peer', measured([100], 0.5, 40, 12), true, undefined, 'loss1'),
    result('loom-relay-enc', 'loom', measured([150], 0.6, 60, 0), true, SEALED_LOSS, 'loss1'),
  ]);
  const [, , clean, , loss] = rows;
  assert.equal(clean!.condition, 'clean');
  assert.equal(clean!.mbpsVsBestPeer, 2.2, 'against tinc clean (500), not tinc under loss');
  assert.ok(Math.abs(clean!.rttVsBestPeer! - 0.35 / 0.2) < 1e-9, 'RTT against the lowest peer RTT (nebula 0.2 ms)');
  assert.equal(clean!.target?.verdict, 'pass');
  assert.equal(loss!.mbpsVsBestPeer, 1.5);
  assert.ok(Math.abs(loss!.rttVsBestPeer! - 1.2) < 1e-9);
  assert.equal(loss!.target?.verdict, 'pass');
  assert.equal(rows[3]!.fragments, 12);
  assert.ok(Math.abs(loss!.targetRttMs! - 1.0) < 1e-9);
});

test('CPU per Gbit/s is daemon CPU % over Gbit/s; null for kernel-only rows', () => {
  const rows = buildRows([result('vxlan', 'kernel', measured([10000], 0.1)), result('tinc', 'peer', measured([500], 0.3, 80), true)]);
  assert.equal(rows[0]!.cpuPerGbps, null);
  assert.equal(rows[1]!.cpuPerGbps, 160);
  assert.equal(rows[1]!.fragments, undefined, 'no counter, no figure');
});

test('fragments and RTT fail a Loom target even at full throughput; a missing counter is no verdict', () => {
  const peers = [result('tinc', 'peer', measured([500], 0.3, 80, 0), true, undefined, 'nofrag')];
  const frag = buildRows([...peers, result('loom-relay-enc', 'loom', measured([1000], 0.3, 100, 3), true, SEALED_CLEAN, 'nofrag')]);
  assert.equal(frag[1]!.target?.verdict, 'fail', '3 fragments on the underlay');
  const slow = buildRows([...peers, result('loom-relay-enc', 'loom', measured([1000], 0.61, 100, 0), true, SEALED_CLEAN, 'nofrag')]);
  assert.equal(slow[1]!.target?.verdict, 'fail', 'RTT 2.03x the best peer');
  const uncounted = buildRows([...peers, result('loom-relay-enc', 'loom', measured([1000], 0.3, 100), true, SEALED_CLEAN, 'nofrag')]);
  assert.equal(uncounted[1]!.target?.verdict, 'no reference');
  assert.equal(targetText(SEALED_CLEAN), '>= 2x best peer Mbit/s, RTT <= 2x best peer, <= 0 fragments');
  const verdicts = renderVerdicts(frag).trim().split('\n');
  assert.equal(verdicts.length, 1, 'one line per target');
  assert.match(verdicts[0]!, /^FAIL +nofrag +loom-relay-enc +>= 2x best peer Mbit\/s.*\(1000 Mbit\/s = 2\.00x best peer, RTT 1\.00x, 3 fragments\)$/);
  const md = renderMarkdownTable(frag).trim().split('\n');
  assert.match(md[3]!, /^\| nofrag \| label loom-relay-enc \| 1450 \| 1000 \(1000-1000, 1\) \| 0\.300 \| 100 \| 100 \| 3 \| 180 \| - \| - \| 2\.00x \| 1\.00x \| .*\*\*fail\*\* \|$/);
});

test('a relay that carries nothing is 0x the best peer and fails, not "no reference"', () => {
  const rows = buildRows([
    result('tinc', 'peer', measured([200], 0.3, 80, 0), true, undefined, 'nofrag'),
    result('loom-relay', 'loom', measured([0, 0, 0], 1.2, 3, 72), false, { minMbpsVsBestPeer: 1, maxRttVsBestPeer: 2, maxFragments: 0 }, 'nofrag'),
  ]);
  assert.equal(rows[1]!.mbpsVsBestPeer, 0);
  assert.equal(rows[1]!.target?.verdict, 'fail');
  assert.equal(rows[1]!.cpuPerGbps, null, 'no CPU per Gbit/s without throughput');
});
