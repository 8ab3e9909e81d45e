import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { SseHub, formatSseMessage } from '../../../src/api/sse-hub.js';
import { SseParser, type SseMessage } from '../../../src/api/sse-parser.js';
import type { ResponseStream } from '../../../src/api/route-table.js';

/** A client's stream that records what it was sent, parsed back into messages. */
class FakeStream implements ResponseStream {
  readonly messages: SseMessage[] = [];
  readonly raw: string[] = [];
  ended = false;
  backlog = 0;
  private closeListeners: Array<() => void> = [];
  private readonly parser = new SseParser((m) => this.messages.push(m));
  write(chunk: string): void {
    if (this.ended) throw new Error('write after end');
    this.raw.push(chunk);
    this.parser.push(chunk);
  }
  end(): void {
    this.ended = true;
  }
  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }
  buffered(): number {
    return this.backlog;
  }
  /** The client goes away. */
  hangUp(): void {
    this.ended = true;
    for (const l of this.closeListeners.splice(0)) l();
  }
  snapshots(): number {
    return this.messages.filter((m) => m.event === 'snapshot').length;
  }
}

function hub(clock: FakeClock, init: ConstructorParameters<typeof SseHub>[1] = {}): { hub: SseHub; builds: () => number } {
  let n = 0;
  const h = new SseHub({ clock, logger: silentLogger, snapshot: () => ({ n: ++n }) }, { refreshMs: 0, ...init });
  return { hub: h, builds: () => n };
}

test('a client gets a snapshot on connect, then each event as it is published', () => {
  const clock = new FakeClock();
  const { hub: h } = hub(clock);
  const s = new FakeStream();
  assert.equal(h.connect(s), true);
  assert.deepEqual(s.messages, [{ event: 'snapshot', data: '{"n":1}' }]);
  h.publish('loom-event', { seq: 7, text: 'peer h2 joined' }, 7);
  assert.deepEqual(s.messages[1], { event: 'loom-event', data: '{"seq":7,"text":"peer h2 joined"}' });
  assert.match(s.raw.join(''), /^retry: 1000\n/);
});

test('at most maxClients streams; a full hub ends the extra one and hasRoom says so', () => {
  const clock = new FakeClock();
  const { hub: h } = hub(clock, { maxClients: 2 });
  const a = new FakeStream();
  const b = new FakeStream();
  const c = new FakeStream();
  assert.equal(h.connect(a), true);
  assert.equal(h.hasRoom(), true);
  assert.equal(h.connect(b), true);
  assert.equal(h.hasRoom(), false);
  assert.equal(h.connect(c), false);
  assert.equal(c.ended, true);
  assert.equal(c.messages.length, 0);
  assert.equal(h.clientCount(), 2);
  // One leaves: there is room again.
  a.hangUp();
  assert.equal(h.clientCount(), 1);
  assert.equal(h.hasRoom(), true);
});

test('a client that goes away is forgotten: nothing more is written to it, and timers stop with the last one', () => {
  const clock = new FakeClock();
  const { hub: h, builds } = hub(clock, { refreshMs: 2000, heartbeatMs: 15_000 });
  const s = new FakeStream();
  h.connect(s);
  s.hangUp();
  assert.equal(h.clientCount(), 0);
  h.publish('loom-event', { seq: 1 });
  clock.advance(60_000);
  assert.equal(builds(), 1, 'no snapshot built after the last client left');
  assert.equal(s.raw.length, 1);
});

test('snapshots after changes are throttled to one per minSnapshotIntervalMs, and the last change is never lost', () => {
  const clock = new FakeClock();
  const { hub: h } = hub(clock, { minSnapshotIntervalMs: 1000 });
  const s = new FakeStream();
  h.connect(s); // snapshot at t=0
  for (let i = 0; i < 10; i++) {
    h.publish('loom-event', { seq: i });
    clock.advance(50);
  }
  // t=500: ten events, no second snapshot yet (the first went out at t=0).
  assert.equal(s.snapshots(), 1);
  assert.equal(s.messages.filter((m) => m.event === 'loom-event').length, 10);
  clock.advance(499);
  assert.equal(s.snapshots(), 1, 'not before 1 s after the last snapshot');
  clock.advance(1);
  assert.equal(s.snapshots(), 2, 'one snapshot for the burst, at t=1000');
  // A change long after: sent at once (the interval has passed).
  clock.advance(5000);
  h.changed();
  clock.advance(0);
  assert.equal(s.snapshots(), 3);
  // Another right after: waits for the interval again.
  h.changed();
  clock.advance(999);
  assert.equal(s.snapshots(), 3);
  clock.advance(1);
  assert.equal(s.snapshots(), 4);
});

test('refresh sends a snapshot every refreshMs while someone listens; heartbeats are comments', () => {
  const clock = new FakeClock();
  const { hub: h } = hub(clock, { refreshMs: 2000, heartbeatMs: 15_000 });
  const s = new FakeStream();
  h.connect(s);
  clock.advance(6000);
  assert.equal(s.snapshots(), 4, 'on connect, then at 2, 4 and 6 s');
  clock.advance(9000);
  assert.ok(s.raw.some((c) => c === ': keep-alive\n\n'));
});

test('one snapshot is built per send, whatever the number of clients', () => {
  const clock = new FakeClock();
  const { hub: h, builds } = hub(clock);
  const a = new FakeStream();
  const b = new FakeStream();
  h.connect(a);
  h.connect(b);
  clock.advance(2000);
  h.changed();
  clock.advance(0);
  assert.equal(builds(), 3, 'one per connect, one for both after the change');
  assert.deepEqual(a.messages.at(-1), b.messages.at(-1));
});

test('a client too far behind is dropped; close ends every stream and stops the timers', () => {
  const clock = new FakeClock();
  const { hub: h, builds } = hub(clock, { maxBufferedBytes: 100, refreshMs: 1000 });
  const slow = new FakeStream();
  const ok = new FakeStream();
  h.connect(slow);
  h.connect(ok);
  slow.backlog = 101;
  h.publish('loom-event', { seq: 1 });
  assert.equal(slow.ended, true);
  assert.equal(h.clientCount(), 1);
  h.close();
  assert.equal(ok.ended, true);
  assert.equal(h.clientCount(), 0);
  const before = builds();
  clock.advance(10_000);
  assert.equal(builds(), before);
});

test('formatSseMessage and SseParser agree; the parser joins data lines, skips comments and copes with split chunks', () => {
  const got: SseMessage[] = [];
  const p = new SseParser((m) => got.push(m));
  const text = `: hello\n${formatSseMessage('snapshot', { a: 'x\ny' }, 3)}data: one\ndata: two\n\n`;
  for (let i = 0; i < text.length; i += 3) p.push(text.slice(i, i + 3));
  assert.deepEqual(got, [
    { event: 'snapshot', data: '{"a":"x\\ny"}' },
    { event: 'message', data: 'one\ntwo' },
  ]);
  const small = new SseParser(() => {}, 10);
  assert.throws(() => small.push('data: 0123456789abcdef'), { code: 'ERR_PROTOCOL' });
});
