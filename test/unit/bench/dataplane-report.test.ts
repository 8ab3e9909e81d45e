import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRows, renderMarkdownTable, targetText } from '../../../bench/dataplane/report.js';
import type { PathGroup, PathOutcome, PathResult, PathTarget } from '../../../bench/dataplane/types.js';

function measured(mbps: number[], rtt: number, cpu: number | null = null): PathOutcome {
  return {
    kind: 'measured',
    measurement: { mtu: 1450, rttMedianMs: rtt, rttSamples: 50, pingLossPct: 0, runs: mbps.map((m) => ({ mbps: m, retransmits: 0, daemonCpuPct: cpu, machineBusyPct: 180 })) },
  };
}

function result(id: string, group: PathGroup, outcome: PathOutcome, encrypted = false, target?: PathTarget): PathResult {
  return { id, label: `label ${id}`, group, encrypted, outcome, ...(target ? { target } : {}) };
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
  assert.match(lines[2]!, /^\| label vxlan \| 1450 \| 10000 \(10000-10000, 1\) \| 0\.100 \| - \| 180 \| 1\.00x \| 1\.00x \| - \|/);
  assert.match(lines[3]!, /skipped \(not installed: nebula\)/);
  assert.match(lines[4]!, /pending \(not built\)/);
  assert.match(lines[4]!, />= 0\.9x VXLAN Mbit\/s, RTT <= 1\.2x VXLAN: \*\*pending\*\*/);
  assert.equal(targetText(ENC_TARGET), '>= 1x best peer Mbit/s');
});
