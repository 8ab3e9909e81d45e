/**
 * The quiet GC's scheduling (src/daemon/quiet-gc.ts) on a fake clock: it collects once after the
 * router goes quiet with a grown heap, never while busy (a busy event loop or mutating API calls),
 * never again when nothing grew, never on an idle router; and, in a child process, the real
 * probes (src/daemon/process-gc.ts): V8's gc is obtained and the committed heap comes down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FakeClock } from '../../../src/core/clock.js';
import { DEFAULT_GROWTH_BYTES, parseQuietGcSetting, QuietGc, type QuietGcProbes } from '../../../src/daemon/quiet-gc.js';

const MB = 1024 * 1024;

/** A process that the test drives: how busy each window is, how big the heap is, what a collection leaves. */
class FakeProcess implements QuietGcProbes {
  busy = 0.005;
  committed = 15 * MB;
  /** What a collection brings the committed heap down to (the live set). */
  live = 15 * MB;
  /** How much one collection gives back at most (fragmentation: one full GC compacts only some pages); default all. */
  perRound = Number.POSITIVE_INFINITY;
  collections: number[] = [];
  compacting: number[] = [];

  constructor(private readonly clock: FakeClock) {}

  busyFraction(): number {
    return this.busy;
  }

  heapCommittedBytes(): number {
    return this.committed;
  }

  heapUsedBytes(): number {
    return this.live;
  }

  collect(compact: boolean): { gcMs: number; trimMs: number } {
    this.collections.push(this.clock.now());
    if (compact) this.compacting.push(this.clock.now());
    // A compacting collection gives back every free page; an ordinary one at most perRound.
    this.committed = compact ? this.live : Math.max(this.live, this.committed - this.perRound);
    return { gcMs: 11.25, trimMs: 1.25 };
  }
}

function setUp(init = {}): { clock: FakeClock; proc: FakeProcess; gc: QuietGc } {
  const clock = new FakeClock();
  const proc = new FakeProcess(clock);
  const gc = new QuietGc({ clock, probes: proc }, { quietMs: 20_000, checkMs: 5_000, busyFraction: 0.1, ...init });
  gc.start();
  return { clock, proc, gc };
}

test('an idle router never collects, however long it runs', () => {
  const { clock, proc, gc } = setUp();
  clock.advance(24 * 3600_000);
  assert.deepEqual(proc.collections, []);
  assert.equal(gc.status().settled, true, 'quiet, and nothing to give back');
});

test('after churn that grew the heap: exactly one collection, once the router has been quiet for the quiet time', () => {
  const { clock, proc, gc } = setUp();
  // Two minutes of churn: a busy loop, the heap grows to 27 MB, 16 MB of it live.
  proc.busy = 0.3;
  for (let t = 0; t < 120_000; t += 5_000) {
    proc.committed += MB / 2;
    clock.advance(5_000);
  }
  assert.deepEqual(proc.collections, [], 'never while busy');
  assert.equal(gc.status().settled, false);
  proc.live = 16 * MB;
  proc.busy = 0.004;
  const quietFrom = clock.now();
  clock.advance(15_000);
  assert.deepEqual(proc.collections, [], 'not before the quiet time');
  clock.advance(5_000);
  assert.deepEqual(proc.collections, [quietFrom + 20_000], 'at the first check 20 s into the quiet');
  const s = gc.status();
  assert.equal(s.collections, 1);
  assert.equal(s.lastPauseMs, 12.5);
  assert.equal(s.lastGcMs, 11.25);
  assert.equal(s.lastTrimMs, 1.25);
  assert.equal(s.settled, true);
  assert.equal(s.baselineBytes, 16 * MB);
  clock.advance(3600_000);
  assert.equal(proc.collections.length, 1, 'not again when nothing grew');
});

test('mutating API calls keep it from collecting even when the event loop is idle', () => {
  const { clock, proc, gc } = setUp();
  proc.committed += 10 * MB;
  for (let i = 0; i < 60; i++) {
    clock.advance(10_000);
    gc.noteActivity();
    assert.equal(gc.status().settled, false);
  }
  assert.deepEqual(proc.collections, []);
  const lastCall = clock.now();
  clock.advance(20_000);
  assert.deepEqual(proc.collections, [lastCall + 20_000]);
});

test('a check window busier than the limit restarts the quiet time (traffic bursts)', () => {
  const { clock, proc } = setUp();
  proc.committed += 5 * MB;
  // A burst every 15 s: the router is never quiet for 20 s.
  for (let i = 0; i < 40; i++) {
    proc.busy = i % 3 === 0 ? 0.5 : 0.01;
    clock.advance(5_000);
  }
  assert.deepEqual(proc.collections, []);
  proc.busy = 0.01;
  clock.advance(20_000);
  assert.equal(proc.collections.length, 1);
});

test('growth below the threshold is not worth a pause; growth past it, after another quiet time, is', () => {
  const { clock, proc } = setUp();
  proc.committed += DEFAULT_GROWTH_BYTES - 1;
  clock.advance(3600_000);
  assert.deepEqual(proc.collections, [], 'just under the threshold');
  proc.committed += 1;
  clock.advance(5_000);
  assert.equal(proc.collections.length, 1, 'at the threshold, the router already quiet');
  proc.committed = proc.live + 3 * MB;
  proc.busy = 0.2;
  clock.advance(5_000);
  proc.busy = 0.01;
  clock.advance(15_000);
  assert.equal(proc.collections.length, 1);
  clock.advance(5_000);
  assert.equal(proc.collections.length, 2, 'grew again: collected again after the quiet time');
});

test('a heap V8 shrank by itself lowers the baseline: growth counts from there', () => {
  const { clock, proc } = setUp();
  clock.advance(30_000);
  proc.committed = 12 * MB;
  clock.advance(5_000);
  proc.committed = 14.5 * MB; // 2.5 MB above the shrunk heap, under the start figure
  clock.advance(5_000);
  assert.equal(proc.collections.length, 1);
});

test('defaults: 20 s of quiet, checked every 5 s; a short quiet time is still checked over 2 s windows', () => {
  const clock = new FakeClock();
  const proc = new FakeProcess(clock);
  new QuietGc({ clock, probes: proc }).start();
  proc.committed += 3 * MB;
  clock.advance(19_999);
  assert.deepEqual(proc.collections, []);
  clock.advance(1);
  assert.deepEqual(proc.collections, [20_000]);

  const short = new FakeClock();
  const p2 = new FakeProcess(short);
  new QuietGc({ clock: short, probes: p2 }, { quietMs: 3_000 }).start();
  p2.committed += 3 * MB;
  assert.equal(short.nextAt(), 2_000);
  short.advance(4_000);
  assert.deepEqual(p2.collections, [4_000]);
});

test('a fragmented heap: another round at each check while a round gives back 1 MiB or more and 2 MiB stay above live, settled only after the last', () => {
  // An ordinary round that gives back little, the slack still there: one compacting round, the last.
  const little = setUp();
  little.proc.committed = 28 * MB;
  little.proc.live = 17 * MB;
  little.proc.perRound = 0.5 * MB;
  little.clock.advance(3600_000);
  assert.deepEqual(little.proc.collections, [20_000, 25_000]);
  assert.deepEqual(little.proc.compacting, [25_000]);
  assert.equal(little.proc.committed, 17 * MB);
  assert.equal(little.gc.status().compactions, 1);

  const { clock, proc, gc } = setUp();
  proc.committed = 28 * MB;
  proc.live = 17 * MB;
  proc.perRound = 4 * MB;
  clock.advance(20_000);
  assert.deepEqual(proc.collections, [20_000]);
  assert.equal(proc.committed, 24 * MB);
  assert.equal(gc.status().settled, false, 'rounds left');
  clock.advance(5_000);
  assert.equal(proc.committed, 20 * MB);
  clock.advance(5_000);
  assert.deepEqual(proc.collections, [20_000, 25_000, 30_000]);
  assert.equal(proc.committed, 17 * MB, 'down to what is live: nothing more to give back');
  assert.equal(gc.status().settled, true);
  clock.advance(3600_000);
  assert.equal(proc.collections.length, 3);

  assert.deepEqual(proc.compacting, [], 'ordinary rounds were enough');

  // At most four ordinary rounds, however much each one gives back; then one compacting round.
  const many = setUp({ maxRounds: 4 });
  many.proc.committed = 60 * MB;
  many.proc.perRound = 5 * MB;
  many.clock.advance(3600_000);
  assert.equal(many.proc.collections.length, 5);
  assert.deepEqual(many.proc.compacting, [many.proc.collections[4]]);
  assert.equal(many.proc.committed, 15 * MB);
  assert.equal(many.gc.status().settled, true);
});

test('churn between two rounds stops them; the next quiet period takes them up again', () => {
  const { clock, proc, gc } = setUp();
  proc.committed = 28 * MB;
  proc.live = 17 * MB;
  proc.perRound = 4 * MB;
  clock.advance(20_000);
  assert.equal(proc.collections.length, 1);
  gc.noteActivity();
  assert.equal(gc.status().settled, false);
  clock.advance(15_000);
  assert.equal(proc.collections.length, 1, 'busy again: no round');
  clock.advance(5_000);
  assert.deepEqual(proc.collections, [20_000, 40_000], 'quiet again: the rounds take up where they were cut');
  clock.advance(3600_000);
  assert.equal(proc.committed, 17 * MB);
  assert.deepEqual(proc.collections, [20_000, 40_000, 45_000]);
  assert.equal(gc.status().settled, true);
});

test('its own pause does not count as busy: the rounds go on at each check', () => {
  const clock = new FakeClock();
  const proc = new FakeProcess(clock);
  // The busy fraction of the window that held a collection is 0.9; of the others, idle.
  let heldBy = false;
  const probes: QuietGcProbes = {
    busyFraction: () => {
      const b = heldBy ? 0.9 : 0.01;
      heldBy = false;
      return b;
    },
    heapCommittedBytes: () => proc.heapCommittedBytes(),
    heapUsedBytes: () => proc.heapUsedBytes(),
    collect: (compact) => {
      heldBy = true;
      return proc.collect(compact);
    },
  };
  const gc = new QuietGc({ clock, probes }, { quietMs: 20_000, checkMs: 5_000 });
  gc.start();
  proc.committed = 28 * MB;
  proc.live = 17 * MB;
  proc.perRound = 4 * MB;
  clock.advance(3600_000);
  assert.deepEqual(proc.collections, [20_000, 25_000, 30_000]);
  assert.equal(gc.status().settled, true);
});

test('stop ends the checks; start twice is one timer', () => {
  const { clock, proc, gc } = setUp();
  gc.start();
  assert.equal(clock.pending, 1);
  gc.stop();
  proc.committed += 10 * MB;
  clock.advance(3600_000);
  assert.deepEqual(proc.collections, []);
  assert.equal(clock.pending, 0);
});

test('LOOM_QUIET_GC: unset is the default, off, or seconds 1..3600; anything else is a clear error', () => {
  assert.deepEqual(parseQuietGcSetting(undefined), { quietMs: 20_000 });
  assert.deepEqual(parseQuietGcSetting(''), { quietMs: 20_000 });
  assert.equal(parseQuietGcSetting('off'), 'off');
  assert.deepEqual(parseQuietGcSetting('3'), { quietMs: 3_000 });
  assert.deepEqual(parseQuietGcSetting('2.5'), { quietMs: 2_500 });
  for (const bad of ['0', '0.5', '-1', '3601', 'soon', '1e3', ' 5']) assert.throws(() => parseQuietGcSetting(bad), /LOOM_QUIET_GC takes/, bad);
});

/** Runs an ES module script in a child Node (the GC flags and heap of this test process stay untouched); its stdout as JSON. */
function child(script: string): unknown {
  const r = spawnSync(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const processGc = JSON.stringify(fileURLToPath(new URL('../../../src/daemon/process-gc.js', import.meta.url)));

test("the real probes: V8's gc is obtained, a full collection gives dropped objects' pages back, the busy fraction tells a spinning loop from a sleeping one", () => {
  const out = child(`
    import { processGcProbes } from ${processGc};
    const probes = processGcProbes();
    const spin = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
    probes.busyFraction();
    spin(300);
    const spinning = probes.busyFraction();
    await new Promise((r) => setTimeout(r, 300));
    const sleeping = probes.busyFraction();
    let junk = [];
    for (let i = 0; i < 400_000; i++) junk.push({ i, s: 'x' + i });
    const grown = probes.heapCommittedBytes();
    junk = null;
    const pause = probes.collect();
    console.log(JSON.stringify({ spinning, sleeping, grown, after: probes.heapCommittedBytes(), pause }));
  `) as { spinning: number; sleeping: number; grown: number; after: number; pause: { gcMs: number; trimMs: number } };
  assert.ok(out.spinning > 0.5, `spinning: ${out.spinning}`);
  assert.ok(out.sleeping < 0.5, `sleeping: ${out.sleeping}`);
  assert.ok(out.after < out.grown - 20 * MB, `committed ${out.grown} -> ${out.after}`);
  assert.ok(out.pause.gcMs > 0 && out.pause.trimMs >= 0);
});

test('in a real process: a heap that grew is collected after the quiet time (one to four rounds), then not again, and the status is reported', () => {
  // 20 MB kept alive: the heap stays grown whatever V8 collects by itself, so the collection is due.
  const out = child(`
    import { startQuietGc } from ${processGc};
    const sections = {};
    const metrics = {};
    const api = { registerReportSection: (n, f) => (sections[n] = f), registerMetrics: (n, m) => (metrics[n] = m) };
    const logger = { debug() {}, info() {}, warn: (o, m) => console.error(m), error() {}, child() { return logger; } };
    const stop = startQuietGc(api, logger, { quietMs: 1000, checkMs: 250 });
    const kept = [];
    for (let i = 0; i < 200_000; i++) kept.push({ i, s: 'x' + i });
    const deadline = Date.now() + 45_000;
    const done = (q) => q.collections > 0 && q.settled;
    while (!done(sections.memory().quietGc) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const status = sections.memory().quietGc;
    await new Promise((r) => setTimeout(r, 2_000));
    const text = await metrics.memory.render();
    console.log(JSON.stringify({ status, later: sections.memory().quietGc.collections, kept: kept.length, text }));
    stop();
  `) as { status: { collections: number; settled: boolean; lastPauseMs: number }; later: number; text: string };
  assert.ok(out.status.collections >= 1 && out.status.collections <= 4, JSON.stringify(out.status));
  assert.equal(out.status.settled, true);
  assert.ok(out.status.lastPauseMs > 0);
  assert.equal(out.later, out.status.collections, 'not again once settled: nothing grew since');
  assert.match(out.text, new RegExp(`^loom_memory_quiet_gc_total ${out.status.collections}$`, 'm'));
});
