/**
 * The partition scenario's history checker (test/chaos/history.ts) on hand-made histories: a
 * clean run passes; a duplicate live address, an allocation of an address another container
 * definitely held, a name still answering after its container's stop and heal + 2 s, a name
 * missing on one host, a pair that never answers and slow convergence each fail with a reason;
 * concurrent operations whose intervals overlap are not held against the system. Histories of
 * the fine DNS probe (a round per host every 100 ms): three hosts turning right at their own
 * times pass with the last one's time; one stale until 2.5 s after the heal fails at 2.5 s; hosts
 * identical to each other but not to the history fail. What DNS must answer comes from the
 * history of starts, stops and moves (`expectedRecords`).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, expectedRecords, settledAt, type DnsOp, type HealOp, type HistoryOp, type ListedContainer, type ListingOp, type PingOp, type StartOp, type StopOp } from '../../chaos/history.js';

const OPTIONS = { dnsWithinMs: 2_000, routesWithinMs: 5_000, seed: 42 };
const HEAL = 100_000;

function start(container: string, host: string, name: string, at: number, address: string, id = `id-${container}`): HistoryOp {
  return { op: 'start', host, container, name, invokeMs: at, completeMs: at + 300, result: { type: 'ok', address, id } };
}
function stop(container: string, host: string, at: number): HistoryOp {
  return { op: 'stop', host, container, invokeMs: at, completeMs: at + 200, result: { type: 'ok' } };
}
function listing(host: string, containers: ListedContainer[], at = HEAL + 50): HistoryOp {
  return { op: 'listing', round: 1, host, invokeMs: at, completeMs: at + 40, containers };
}
function dns(host: string, at: number, answers: Record<string, string[]> | null): DnsOp {
  return { op: 'dns', host, invokeMs: at, completeMs: at + 30, answers };
}
function ping(from: string, to: string, at: number, ok: boolean): PingOp {
  return { op: 'ping', from, to, invokeMs: at, completeMs: at + (ok ? 5 : 1_000), ok };
}

/**
 * Two hosts, a partition at 10 s, `web` started on h1 (c1) and h2 (c2) while partitioned, `db`
 * (c3) on h1 removed during it; healed at HEAL. Observations after the heal from `extra`.
 */
function base(extra: HistoryOp[]): HistoryOp[] {
  return [
    { op: 'partition', sides: [['h1'], ['h2']], oneWay: false, invokeMs: 10_000, completeMs: 10_020 },
    start('c1', 'h1', 'web', 20_000, '10.32.0.1'),
    start('c2', 'h2', 'web', 20_100, '10.40.0.1'),
    start('c3', 'h1', 'db', 30_000, '10.32.0.2'),
    stop('c3', 'h1', 40_000),
    { op: 'heal', invokeMs: HEAL - 20, completeMs: HEAL },
    listing('h1', [{ id: 'id-c1', name: 'web', cidr: '10.32.0.1/12' }]),
    listing('h2', [{ id: 'id-c2', name: 'web', cidr: '10.40.0.1/12' }]),
    ...extra,
  ];
}

const RIGHT = { web: ['10.40.0.1', '10.32.0.1'], db: [] };

/** Right DNS on both hosts from `from` ms after the heal, every 200 ms for 3 s; before that `before`. */
function dnsSeries(from: number, before: Record<string, string[]> | null, host2Right: Record<string, string[]> = RIGHT): DnsOp[] {
  const out: DnsOp[] = [];
  for (let t = 100; t < 3_000; t += 200) {
    out.push(dns('h1', HEAL + t, t >= from ? RIGHT : before));
    out.push(dns('h2', HEAL + t + 5, t >= from ? host2Right : before));
  }
  return out;
}

function pingSeries(from: number): PingOp[] {
  const out: PingOp[] = [];
  for (let t = 100; t < 6_500; t += 500) out.push(ping('c1', 'c2', HEAL + t, t >= from), ping('c2', 'c1', HEAL + t + 2, t >= from));
  return out;
}

test('a clean history passes, with the convergence figures', () => {
  const verdict = checkHistory(base([...dnsSeries(500, { web: ['10.32.0.1'], db: ['10.32.0.2'] }), ...pingSeries(1_000)]), OPTIONS);
  assert.deepEqual(verdict.problems, []);
  assert.equal(verdict.heals.length, 1);
  assert.equal(verdict.heals[0]!.dnsMs, 535, 'the first right answer on the slower host, at its completion');
  assert.equal(verdict.heals[0]!.routesMs, 1_107);
  assert.deepEqual([verdict.heals[0]!.dnsLowerMs, verdict.heals[0]!.routesLowerMs], [305, 602], 'the last wrong answers were asked then');
  assert.deepEqual([verdict.heals[0]!.containers, verdict.heals[0]!.pairs, verdict.heals[0]!.names], [2, 2, 2]);
  assert.deepEqual([verdict.starts, verdict.stops, verdict.failedOps], [3, 1, 0]);
});

test('a duplicate live address fails: in the history and in the listings', () => {
  const history = base([...dnsSeries(0, null), ...pingSeries(0)]);
  history.push(start('c4', 'h2', 'api', 50_000, '10.32.0.1'));
  history.push(listing('h2', [{ id: 'id-c4', name: 'api', cidr: '10.32.0.1/12' }]));
  const verdict = checkHistory(history, OPTIONS);
  assert.ok(verdict.problems.some((p) => /^duplicate address 10\.32\.0\.1: c4 on h2 got it .* while c1 on h1 held it .*\[seed 42\]$/.test(p)), verdict.problems.join('\n'));
  assert.ok(verdict.problems.some((p) => /address 10\.32\.0\.1 held by 2 live containers: c1@h1, c4@h2/.test(p)), verdict.problems.join('\n'));
});

test('an address reused after its holder was stopped passes; one given while the stop was still running too (concurrent)', () => {
  const history = base([...dnsSeries(0, null), ...pingSeries(0)]);
  // c3's 10.32.0.2 was stopped at 40 s: c5 gets it at 60 s.
  history.push(start('c5', 'h2', 'late', 60_000, '10.32.0.2'), stop('c5', 'h2', 61_000));
  // c6 holds .9 until a stop invoked at 70 s completes at 70.2 s; c7's start ran 70.0-70.3 s: overlapping, not a violation.
  history.push(start('c6', 'h1', 'x', 65_000, '10.32.0.9'), stop('c6', 'h1', 70_000), start('c7', 'h2', 'y', 69_900, '10.32.0.9'), stop('c7', 'h2', 75_000));
  const verdict = checkHistory(history, OPTIONS);
  assert.deepEqual(verdict.problems.filter((p) => p.includes('duplicate')), []);
});

test('a failed stop does not end the hold: an allocation of the address afterwards is a duplicate', () => {
  const history = base([...dnsSeries(0, null), ...pingSeries(0)]);
  history.push({ op: 'stop', host: 'h1', container: 'c1', invokeMs: 50_000, completeMs: 50_100, result: { type: 'fail', error: 'ERR_X' } });
  history.push(start('c8', 'h2', 'z', 60_000, '10.32.0.1'), stop('c8', 'h2', 61_000));
  assert.ok(checkHistory(history, OPTIONS).problems.some((p) => p.startsWith('duplicate address 10.32.0.1: c8 on h2')));
});

test("a name still answering after its container's stop completed, and heal + 2 s passed, fails", () => {
  // h2 keeps answering db (c3, removed on h1 during the partition) for the whole window.
  const stale = { web: RIGHT.web, db: ['10.32.0.2'] };
  const verdict = checkHistory(base([...dnsSeries(0, null, stale), ...pingSeries(0)]), OPTIONS);
  assert.deepEqual(verdict.problems, ['heal 1: h2 still answers db with [10.32.0.2] at the end of the window, expected [] [seed 42]']);
  assert.equal(verdict.heals[0]!.dnsMs, null);
});

test('a name missing on one host fails; so does a host whose DNS never answered', () => {
  const missing = { web: ['10.40.0.1'], db: [] };
  const verdict = checkHistory(base([...dnsSeries(0, null, missing), ...pingSeries(0)]), OPTIONS);
  assert.deepEqual(verdict.problems, ['heal 1: h2 still answers web with [10.40.0.1] at the end of the window, expected [10.32.0.1, 10.40.0.1] [seed 42]']);
  const silent = checkHistory(base([...dnsSeries(0, null).map((o) => (o.host === 'h2' ? { ...o, answers: null } : o)), ...pingSeries(0)]), OPTIONS);
  assert.ok(silent.problems.some((p) => p.includes('h2 still answers web with no reply')));
});

test('DNS right only after 2 s, or flapping back to wrong, fails', () => {
  const slow = checkHistory(base([...dnsSeries(2_300, { web: [], db: [] }), ...pingSeries(0)]), OPTIONS);
  assert.deepEqual(slow.problems, ['heal 1: DNS right on every host only 2335 ms after the heal, limit 2000 ms [seed 42]']);
  // Right at once, then wrong once at 1.9 s on h1, then right again: settled only after that.
  const flap = base([...dnsSeries(0, null), ...pingSeries(0)]);
  flap.push(dns('h1', HEAL + 2_150, { web: ['10.32.0.1'], db: [] }));
  const verdict = checkHistory(flap, OPTIONS);
  assert.deepEqual(verdict.heals[0]!.dnsMs, 2_330, 'settled at the first right answer after the wrong one');
  assert.equal(verdict.problems.length, 1);
});

test('an observation asked before the heal and answered after it counts; one answered before the heal does not', () => {
  const history = base([...dnsSeries(1_000, null), ...pingSeries(0)].filter((o) => o.op !== 'dns' || o.invokeMs >= HEAL + 1_000));
  // A slow dig on each host, asked 500 ms before the heal and answered right 800 ms after it.
  history.push({ ...dns('h1', HEAL - 500, RIGHT), completeMs: HEAL + 800 }, { ...dns('h2', HEAL - 500, RIGHT), completeMs: HEAL + 800 });
  // Answered (wrongly) before the heal: outside the window, not held against it.
  history.push({ ...dns('h1', HEAL - 900, { web: [], db: [] }), completeMs: HEAL - 100 });
  const verdict = checkHistory(history, OPTIONS);
  assert.deepEqual(verdict.problems, []);
  assert.equal(verdict.heals[0]!.dnsMs, 800, 'settled at the straddling right answers, the first after the heal');
});

test('routes: a pair that never answers, one never pinged, or one answering after 5 s fails', () => {
  const never = base([...dnsSeries(0, null), ...pingSeries(0).filter((p) => p.from !== 'c2'), ...[100, 600].map((t) => ping('c2', 'c1', HEAL + t, false))]);
  assert.deepEqual(checkHistory(never, OPTIONS).problems, ['heal 1: c2@h2 -> c1@h1 (10.32.0.1) not answering at the end of the window [seed 42]']);
  const unprobed = base([...dnsSeries(0, null), ...pingSeries(0).filter((p) => p.from !== 'c2')]);
  assert.deepEqual(checkHistory(unprobed, OPTIONS).problems, ['heal 1: c2@h2 -> c1@h1 (10.32.0.1) never pinged [seed 42]']);
  const slow = checkHistory(base([...dnsSeries(0, null), ...pingSeries(5_100)]), OPTIONS);
  assert.deepEqual(slow.problems, ['heal 1: every pair answering only 5107 ms after the heal, limit 5000 ms [seed 42]']);
});

test('containers in different subnets are not expected to reach each other', () => {
  const history = base([...dnsSeries(0, { web: RIGHT.web, db: [], m1: ['10.99.0.5'] }), ...pingSeries(0)]);
  history.splice(6, 1, listing('h1', [{ id: 'id-c1', name: 'web', cidr: '10.32.0.1/12' }, { id: 'id-m1', name: 'm1', cidr: '10.99.0.5/24' }]));
  history.splice(1, 0, start('m1', 'h1', 'm1', 5_000, '10.99.0.5', 'id-m1'));
  const verdict = checkHistory(
    history.map((o) => (o.op === 'dns' && o.answers !== null ? { ...o, answers: { ...o.answers, m1: ['10.99.0.5'] } } : o)),
    OPTIONS,
  );
  assert.deepEqual(verdict.problems, []);
  assert.equal(verdict.heals[0]!.pairs, 2, 'only the two /12 containers pair up');
});

test('listings that disagree with the history fail: a live container missing, a removed one still listed', () => {
  const history = base([...dnsSeries(0, null), ...pingSeries(0)]);
  history.splice(6, 2, listing('h1', [{ id: 'id-c3', name: 'db', cidr: '10.32.0.2/12' }, { id: 'id-c1', name: 'web', cidr: '10.32.0.1/12' }]), listing('h2', []));
  const problems = checkHistory(history, OPTIONS).problems;
  assert.ok(problems.includes('listing round 1: c2 (started on h2, never stopped) is listed on [] [seed 42]'), problems.join('\n'));
  assert.ok(problems.includes('listing round 1: c3 was removed but is still listed on h1 [seed 42]'), problems.join('\n'));
});

test('settledAt: the first good observation of the final good run, or null', () => {
  const o = (invokeMs: number, good: boolean): { invokeMs: number; completeMs: number; good: boolean } => ({ invokeMs, completeMs: invokeMs + 1, good });
  assert.equal(settledAt([o(1, false), o(2, true), o(3, true)]), 3);
  assert.equal(settledAt([o(3, true), o(1, true), o(2, false)]), 4, 'sorted by invocation first');
  assert.equal(settledAt([o(1, false), { invokeMs: 2, completeMs: 50, good: true }, o(3, true)]), 4, 'the earliest answer of the final good run');
  assert.equal(settledAt([o(1, true), o(2, false)]), null);
  assert.equal(settledAt([]), null);
});

/**
 * The fine probe's histories (dns-prober.ts: every host asked every name every 100 ms, each
 * round answered in a few ms). Three hosts; during a partition h1 | h2,h3: `web` started on h1
 * (c1) and h3 (c2), `db` (c3) removed on h2, m1 (c4, 10.99.0.1) moved from h2 to h3 (c5);
 * healed at HEAL. Each host's DNS turns right at its own time after the heal (`rightFrom`, ms).
 */
function fineHistory(rightFrom: Record<string, number>, stale: Record<string, Record<string, string[]>>): HistoryOp[] {
  const history: HistoryOp[] = [
    start('c3', 'h2', 'db', 5_000, '10.40.0.3'),
    start('c4', 'h2', 'm1', 6_000, '10.99.0.1'),
    { op: 'partition', sides: [['h1'], ['h2', 'h3']], oneWay: false, invokeMs: 10_000, completeMs: 10_020 },
    start('c1', 'h1', 'web', 20_000, '10.32.0.1'),
    start('c2', 'h3', 'web', 20_100, '10.48.0.1'),
    stop('c3', 'h2', 30_000),
    stop('c4', 'h2', 40_000),
    start('c5', 'h3', 'm1', 40_300, '10.99.0.1'),
    { op: 'heal', invokeMs: HEAL - 20, completeMs: HEAL },
    listing('h1', [{ id: 'id-c1', name: 'web', cidr: '10.32.0.1/12' }]),
    listing('h2', []),
    listing('h3', [
      { id: 'id-c2', name: 'web', cidr: '10.48.0.1/12' },
      { id: 'id-c5', name: 'm1', cidr: '10.99.0.1/24' },
    ]),
    ...pingSeries(0),
  ];
  const right = { web: ['10.32.0.1', '10.48.0.1'], db: [], m1: ['10.99.0.1'] };
  for (const host of ['h1', 'h2', 'h3']) {
    // Rounds from 300 ms before the heal to 4 s after it, every 100 ms, 2-4 ms each.
    for (let t = -300; t < 4_000; t += 100) {
      const at = HEAL + t + Number(host.slice(1));
      history.push({ op: 'dns', host, invokeMs: at, completeMs: at + 3, answers: t >= rightFrom[host]! ? right : stale[host]! });
    }
  }
  return history;
}

/** What each side held during the partition: h1 without c2 and still with c3 and m1 on h2; h2, h3 without c1. */
const STALE = {
  h1: { web: ['10.32.0.1'], db: ['10.40.0.3'], m1: [] },
  h2: { web: ['10.48.0.1'], db: [], m1: ['10.99.0.1'] },
  h3: { web: ['10.48.0.1'], db: [], m1: ['10.99.0.1'] },
};

test('fine probe: every host identical and right 0.6-1.2 s after the heal passes, with the figure at the last host to turn', () => {
  const verdict = checkHistory(fineHistory({ h1: 600, h2: 1_200, h3: 900 }, STALE), OPTIONS);
  assert.deepEqual(verdict.problems, []);
  // h2's first right round was invoked at HEAL + 1,200 + 2 and completed 3 ms later.
  assert.equal(verdict.heals[0]!.dnsMs, 1_205);
  assert.equal(verdict.heals[0]!.dnsLowerMs, 1_102, "h2's last wrong round was asked then");
});

test('fine probe: one host still stale until 2.5 s after the heal fails, at 2.5 s', () => {
  const verdict = checkHistory(fineHistory({ h1: 2_500, h2: 400, h3: 400 }, STALE), OPTIONS);
  assert.deepEqual(verdict.problems, ['heal 1: DNS right on every host only 2504 ms after the heal, limit 2000 ms [seed 42]']);
  assert.equal(verdict.heals[0]!.dnsMs, 2_504);
  assert.equal(verdict.heals[0]!.dnsLowerMs, 2_401);
});

test('fine probe: hosts that agree with each other but not with the history fail (a removed name still answered everywhere)', () => {
  const everywhereStale = { web: ['10.32.0.1', '10.48.0.1'], db: ['10.40.0.3'], m1: ['10.99.0.1'] };
  const verdict = checkHistory(fineHistory({ h1: 99_999, h2: 99_999, h3: 99_999 }, { h1: everywhereStale, h2: everywhereStale, h3: everywhereStale }), OPTIONS);
  assert.deepEqual(
    verdict.problems,
    ['h1', 'h2', 'h3'].map((h) => `heal 1: ${h} still answers db with [10.40.0.3] at the end of the window, expected [] [seed 42]`),
  );
  assert.equal(verdict.heals[0]!.dnsMs, null);
});

test('fine probe: a round with no reply after the heal resets the time (a host that does not answer is not identical)', () => {
  const history = fineHistory({ h1: 300, h2: 300, h3: 300 }, STALE);
  history.push({ op: 'dns', host: 'h3', invokeMs: HEAL + 2_250, completeMs: HEAL + 3_250, answers: null });
  const verdict = checkHistory(history, OPTIONS);
  assert.deepEqual(verdict.heals[0]!.dnsMs, 2_306, 'right again from the first round invoked after the silent one');
  assert.equal(verdict.problems.length, 1);
});

describe('expectedRecords: what DNS must answer after a heal, from the history', () => {
  const heal: HealOp = { op: 'heal', invokeMs: HEAL - 20, completeMs: HEAL };
  const ok = (container: string, host: string, name: string, address: string, at = 1_000): StartOp => start(container, host, name, at, address) as StartOp;
  const names = ['web', 'db'];
  const round = (containers: ListedContainer[]): ListingOp[] => [listing('h1', containers) as ListingOp];

  test('started and not stopped: answered; stopped: not; a failed stop keeps it; a start after the heal does not count', () => {
    const starts = [ok('c1', 'h1', 'web', '10.32.0.1'), ok('c2', 'h2', 'web', '10.40.0.1'), ok('c3', 'h1', 'db', '10.32.0.2'), ok('c9', 'h1', 'db', '10.32.0.9', HEAL + 5_000)];
    const stops: StopOp[] = [stop('c2', 'h2', 2_000) as StopOp, { op: 'stop', host: 'h1', container: 'c3', invokeMs: 3_000, completeMs: 3_100, result: { type: 'fail', error: 'ERR_X' } }];
    const expected = expectedRecords(heal, starts, stops, [], names);
    assert.deepEqual(Object.fromEntries(expected), { web: ['10.32.0.1'], db: ['10.32.0.2'] });
  });

  test('the listing decides only what the history leaves open: a stop that timed out, a start that timed out', () => {
    const starts: StartOp[] = [
      ok('c1', 'h1', 'web', '10.32.0.1'),
      ok('c2', 'h1', 'web', '10.32.0.2'),
      { op: 'start', host: 'h1', container: 'c3', name: 'db', invokeMs: 1_000, completeMs: 31_000, result: { type: 'info', error: 'timed out' } },
    ];
    const stops: StopOp[] = [
      { op: 'stop', host: 'h1', container: 'c1', invokeMs: 2_000, completeMs: 32_000, result: { type: 'info', error: 'timed out' } },
      { op: 'stop', host: 'h1', container: 'c2', invokeMs: 2_000, completeMs: 32_000, result: { type: 'info', error: 'timed out' } },
    ];
    // c1's stop happened (not listed), c2's did not (listed); c3's start happened under an id the history never saw.
    const listed = round([
      { id: 'id-c2', name: 'web', cidr: '10.32.0.2/12' },
      { id: 'unknown-id', name: 'db', cidr: '10.32.0.3/12' },
    ]);
    assert.deepEqual(Object.fromEntries(expectedRecords(heal, starts, stops, listed, names)), { web: ['10.32.0.2'], db: ['10.32.0.3'] });
    // A determinate container missing from the listing is still expected: the history says it lives.
    assert.deepEqual(Object.fromEntries(expectedRecords(heal, starts.slice(0, 1), [], [], names)), { web: ['10.32.0.1'], db: [] });
  });
});
