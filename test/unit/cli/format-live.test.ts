import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clockTime, formatLive, formatPathTable, formatRecentEvents, formatRttMs, type LiveReport } from '../../../src/cli/format-live.js';

const report: LiveReport = {
  router: { name: 'aa:00:00:00:00:01', nickname: 'h1', peers: [{ name: 'aa:00:00:00:00:01', nickname: 'h1' }, { name: 'aa:00:00:00:00:02', nickname: 'h2' }, { name: 'aa:00:00:00:00:03', nickname: 'h3' }] },
  dataplane: {
    peers: [
      { peer: 'aa:00:00:00:00:02', path: 'fastdp', encrypted: false, pmtu: 1500 },
      { peer: 'aa:00:00:00:00:03', path: 'sleeve', encrypted: true, via: 'aa:00:00:00:00:02', reason: 'UDP to the peer is blocked' },
    ],
    relay: { neighbours: [{ peer: 'aa:00:00:00:00:02', rttMs: 0.4567 }, { peer: 'aa:00:00:00:00:03', rttMs: null }] },
  },
  events: {
    recent: [
      { seq: 1, time: Date.UTC(2026, 11, 7, 17, 0, 1), kind: 'peer-joined', peer: 'aa:00:00:00:00:02', text: 'peer h2 joined the mesh' },
      { seq: 2, time: Date.UTC(2026, 11, 7, 17, 0, 9), kind: 'path-changed', peer: 'aa:00:00:00:00:03', text: 'data path to h3: fastdp -> relay via h2' },
    ],
  },
};

test('the path table: one aligned row per peer with path (relay hop by nickname), encryption, PMTU, RTT and reason', () => {
  assert.equal(
    formatPathTable(report),
    [
      '  PEER                   PATH          ENCRYPTED  PMTU  RTT',
      '  h2(aa:00:00:00:00:02)  fastdp        no         1500  0.46ms',
      '  h3(aa:00:00:00:00:03)  relay via h2  yes        -     -       UDP to the peer is blocked',
    ].join('\n') + '\n',
  );
  assert.equal(formatPathTable({ router: report.router }), '', 'nothing without a data plane');
});

test('recent events: newest first, time of day, kinds aligned, limited', () => {
  assert.equal(formatRecentEvents(report.events!.recent!, 10, { utc: true }), '  17:00:09  path-changed  data path to h3: fastdp -> relay via h2\n  17:00:01  peer-joined   peer h2 joined the mesh\n');
  assert.equal(formatRecentEvents(report.events!.recent!, 1, { utc: true }).split('\n').length, 2);
  assert.equal(formatRecentEvents([], 5), '  (none yet)\n');
});

test('formatLive puts both under headings; small helpers', () => {
  const text = formatLive(report, { utc: true });
  assert.match(text, /^\nData paths:\n {2}PEER/);
  assert.match(text, /\nRecent events:\n {2}17:00:09 {2}path-changed/);
  assert.equal(formatLive({ router: report.router }), '');
  assert.equal(formatRttMs(12.6), '13ms');
  assert.equal(formatRttMs(undefined), '-');
  assert.equal(clockTime(Date.UTC(2026, 0, 1, 3, 4, 5), true), '03:04:05');
});
