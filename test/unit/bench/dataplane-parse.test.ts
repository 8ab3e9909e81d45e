import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import { machineBusyPct, median, parseIperfJson, parsePidStat, parsePing, parseProcStat, ticksToCorePct } from '../../../bench/dataplane/parse.js';

const IPERF_OK = JSON.stringify({
  start: { connected: [] },
  end: { sum_sent: { bits_per_second: 5.1e9, retransmits: 7 }, sum_received: { bits_per_second: 5.0e9 }, cpu_utilization_percent: { host_total: 40 } },
});

test('iperf3 JSON: receiver throughput in Mbit/s and sender retransmits', () => {
  assert.deepEqual(parseIperfJson(IPERF_OK), { mbps: 5000, retransmits: 7 });
});

test('iperf3 JSON: an iperf3 error, garbage, or a missing field is ERR_PROTOCOL', () => {
  const bad = [
    JSON.stringify({ error: 'unable to connect to server: Connection refused' }),
    'iperf3: error - unable to connect',
    '',
    JSON.stringify({ end: { sum_received: {} } }),
    JSON.stringify({ end: { sum_received: { bits_per_second: 'fast' } } }),
    JSON.stringify({ end: { sum_received: { bits_per_second: -1 } } }),
    'null',
  ];
  for (const text of bad) assert.throws(() => parseIperfJson(text), (e) => isLoomError(e, 'ERR_PROTOCOL'), text);
  assert.throws(() => parseIperfJson(JSON.stringify({ error: 'unable to connect' })), /unable to connect/);
});

test('iperf3 JSON: never throws anything but a LoomError on arbitrary input', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
      try {
        parseIperfJson(text);
      } catch (e) {
        assert.ok(isLoomError(e, 'ERR_PROTOCOL'));
      }
    }),
  );
});

test('ping: per-reply RTTs and the loss summary', () => {
  const out = [
    'PING 10.99.0.2 (10.99.0.2) 56(84) bytes of data.',
    '64 bytes from 10.99.0.2: icmp_seq=1 ttl=64 time=0.101 ms',
    '64 bytes from 10.99.0.2: icmp_seq=2 ttl=64 time=0.087 ms',
    '64 bytes from 10.99.0.2: icmp_seq=4 ttl=64 time=1.20 ms',
    '',
    '--- 10.99.0.2 ping statistics ---',
    '4 packets transmitted, 3 received, 25% packet loss, time 61ms',
  ].join('\n');
  assert.deepEqual(parsePing(out), { rttsMs: [0.101, 0.087, 1.2], lossPct: 25 });
  assert.deepEqual(parsePing('connect: Network is unreachable\n'), { rttsMs: [], lossPct: 100 });
});

test('median of odd, even and empty lists; NaN entries are ignored', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(median([Number.NaN, 5]), 5);
});

test('/proc/stat: idle includes iowait; total is user..steal', () => {
  const t = parseProcStat('cpu  100 5 50 1000 20 1 4 2 0 0\ncpu0 50 2 25 500 10 0 2 1 0 0\n');
  assert.deepEqual(t, { idle: 1020, total: 1182 });
  assert.throws(() => parseProcStat('intr 1 2 3\n'), (e) => isLoomError(e, 'ERR_PROTOCOL'));
  assert.throws(() => parseProcStat('cpu 1 2 x 4 5 6 7 8\n'), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('/proc/PID/stat: utime + stime, even when the command name holds spaces and parentheses', () => {
  const rest = 'S 1 100 100 0 -1 4194560 500 0 0 0 123 45 0 0 20 0 4 0 9999 1000000 300';
  assert.equal(parsePidStat(`4242 (tincd) ${rest}`), 168);
  assert.equal(parsePidStat(`4242 (a) b (c)) ${rest}`), 168);
  assert.throws(() => parsePidStat('4242 tincd S 1'), (e) => isLoomError(e, 'ERR_PROTOCOL'));
  assert.throws(() => parsePidStat('4242 (tincd) S 1 2'), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('CPU arithmetic: ticks to % of a core, machine busy share scaled by cores', () => {
  assert.equal(ticksToCorePct(250, 5, 100), 50);
  assert.ok(Number.isNaN(ticksToCorePct(10, 0, 100)));
  const before = { idle: 1000, total: 2000 };
  assert.equal(machineBusyPct(before, { idle: 1250, total: 3000 }, 2), 150);
  assert.equal(machineBusyPct(before, { idle: 2000, total: 3000 }, 2), 0);
  assert.ok(Number.isNaN(machineBusyPct(before, before, 2)));
});
