import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeXml, logDomain, niceCeil, renderSvg } from '../../../bench/dataplane/svg.js';
import { buildRows } from '../../../bench/dataplane/report.js';
import type { PathResult } from '../../../bench/dataplane/types.js';

const results: PathResult[] = [
  { id: 'vxlan', label: 'kernel VXLAN', group: 'kernel', encrypted: false, outcome: { kind: 'measured', measurement: { mtu: 1450, rttMedianMs: 0.1, rttSamples: 50, pingLossPct: 0, runs: [{ mbps: 10000, retransmits: 0, daemonCpuPct: null, machineBusyPct: 200 }] } } },
  { id: 'tinc', label: 'tinc <L2> & "co"', group: 'peer', encrypted: true, outcome: { kind: 'measured', measurement: { mtu: 1400, rttMedianMs: 0.3, rttSamples: 50, pingLossPct: 0, runs: [{ mbps: 500, retransmits: 0, daemonCpuPct: 80, machineBusyPct: 200 }] } } },
  { id: 'wg', label: 'wireguard-go', group: 'peer', encrypted: true, outcome: { kind: 'skipped', reason: 'not installed: wireguard-go' } },
  { id: 'loom-fast', label: 'Loom fast path', group: 'loom', encrypted: false, target: { minMbpsVsVxlan: 0.9 }, outcome: { kind: 'pending', reason: 'later' } },
];

test('the chart is one well-formed SVG with a bar per measured row and a note per other row', () => {
  const svg = renderSvg(buildRows(results), 'Title & more', 'sub');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.equal((svg.match(/<svg /g) ?? []).length, 1);
  assert.ok(svg.includes('Title &amp; more'));
  assert.ok(svg.includes('tinc &lt;L2&gt; &amp; &quot;co&quot;'), 'labels are escaped');
  assert.ok(!/<text[^>]*>[^<]*&(?!amp;|lt;|gt;|quot;|apos;)/.test(svg), 'no raw ampersand in text');
  assert.ok(svg.includes('skipped (not installed: wireguard-go)'));
  assert.ok(svg.includes('>pending<'));
  assert.ok(svg.includes('target 9000 Mbit/s'), 'the pending Loom row still shows where its target lies');
  // two filled bars (throughput and RTT) per measured row, each in its group colour
  assert.equal((svg.match(/fill="#3b6fb6"\/>/g) ?? []).length, 2 + 1, 'vxlan bars + legend swatch');
  assert.equal((svg.match(/fill="#e08a2c"\/>/g) ?? []).length, 2 + 1, 'tinc bars + legend swatch');
});

test('throughput bars are on a log scale: 10x less is one decade shorter, not 10x shorter', () => {
  const svg = renderSvg(buildRows(results), 't', 's');
  const widths = [...svg.matchAll(/<rect x="330" y="[0-9.]+" width="([0-9.]+)" height="16" fill="#(3b6fb6|e08a2c)"/g)].map((m) => Number(m[1]));
  assert.equal(widths.length, 2);
  const [vx, tinc] = widths as [number, number];
  // Values 500..10000 (and the 9000 target) span decades 10^2..10^4 across the 360 px panel.
  assert.equal(vx, 360);
  assert.ok(Math.abs(tinc - (360 * (Math.log10(500) - 2)) / 2) < 0.1, `tinc bar ${tinc}`);
  assert.ok(tinc > 10 * (vx * 500) / 10000 / 2, 'far wider than a linear bar would be');
});

test('scale helpers', () => {
  assert.deepEqual(logDomain([500, 16000]), [2, 5]);
  assert.deepEqual(logDomain([1000]), [3, 4]);
  assert.deepEqual(logDomain([]), [2, 5]);
  assert.equal(niceCeil(0.42), 0.5);
  assert.equal(niceCeil(0.11), 0.2);
  assert.equal(niceCeil(1), 1);
  assert.equal(niceCeil(0), 1);
  assert.equal(escapeXml(`<a href='x'>&</a>`), '&lt;a href=&apos;x&apos;&gt;&amp;&lt;/a&gt;');
});
