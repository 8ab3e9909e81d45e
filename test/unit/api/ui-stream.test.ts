/**
 * The live page's stream over real HTTP (ApiServer on 127.0.0.1:0, the events subsystem over a
 * fake router): a snapshot on connect, events as they happen, the client cap answered with
 * ERR_UNAVAILABLE, a client that hangs up forgotten, every stream ended when the server closes;
 * and `loom status --watch` (watchReports) printing successive snapshots without a terminal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiServer } from '../../../src/api/server.js';
import { registerRouterRoutes } from '../../../src/api/router-routes.js';
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { EventsSubsystem } from '../../../src/daemon/events.js';
import { LoomClient } from '../../../src/client/index.js';
import type { SseMessage } from '../../../src/api/sse-parser.js';
import { watchReports } from '../../../src/cli/watch.js';
import { FakeRouter } from './fake-router.js';

async function start(maxClients: number): Promise<{ server: ApiServer; events: EventsSubsystem; client: LoomClient; clock: FakeClock }> {
  const clock = new FakeClock();
  const router = new FakeRouter();
  const server = new ApiServer({ logger: silentLogger }, { port: 0 });
  registerRouterRoutes(server, router, { defaultMetrics: false });
  const events = new EventsSubsystem({ router, api: server, clock, logger: silentLogger }, { stream: { maxClients } });
  server.registerReportSection('events', () => events.report());
  await events.start();
  const addr = await server.listen();
  return { server, events, clock, client: new LoomClient({ address: `127.0.0.1:${addr.port}` }) };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the stream over HTTP: snapshot on connect, then events; the cap refuses more; hang-ups and server close clean up', async () => {
  const { server, events, client } = await start(2);
  try {
    const a: SseMessage[] = [];
    const b: SseMessage[] = [];
    const sa = client.openStream('/ui/events', (m) => a.push(m));
    const sb = client.openStream('/ui/events', (m) => b.push(m));
    await until('both snapshots', () => a.length >= 1 && b.length >= 1);
    assert.equal(a[0]!.event, 'snapshot');
    assert.equal((JSON.parse(a[0]!.data) as { router: { nickname: string } }).router.nickname, 'host1');
    assert.equal(events.hub.clientCount(), 2);

    const third = client.openStream('/ui/events', () => {});
    await assert.rejects(third.done, { code: 'ERR_UNAVAILABLE' });

    events.log.emit({ kind: 'container-started', container: 'web', text: 'container web started' });
    await until('the event on both', () => a.some((m) => m.event === 'loom-event') && b.some((m) => m.event === 'loom-event'));
    assert.equal((JSON.parse(a.find((m) => m.event === 'loom-event')!.data) as { seq: number }).seq, 1);

    sa.close();
    await sa.done;
    await until('the hub to forget the client that hung up', () => events.hub.clientCount() === 1);
    // The list of events is there too.
    assert.deepEqual((await client.events.list({ after: 0 })).events.map((e) => e.container), ['web']);
    await assert.rejects(client.call('GET', '/events?after=x'), { code: 'ERR_INVALID_ARGUMENT' });

    await server.close();
    await sb.done;
    await until('no client left', () => events.hub.clientCount() === 0);
  } finally {
    await events.stop();
    await server.close();
  }
});

test('status --watch without a terminal prints one copy per snapshot and stops on abort', async () => {
  const { server, events, client, clock } = await start(4);
  try {
    const printed: string[] = [];
    const abort = new AbortController();
    const watching = watchReports(client, (r) => `peers ${r.router.peers.length}\n`, { out: (t) => printed.push(t), tty: false, signal: abort.signal, now: () => Date.UTC(2026, 0, 1, 12, 0, 0) });
    await until('the first snapshot', () => printed.length === 1);
    assert.equal(printed[0], '--- 12:00:00\npeers 3\n');
    // A change: the next snapshot is due within the throttle interval (the fake clock decides when).
    events.log.emit({ kind: 'peer-left', text: 'peer host3 left' });
    clock.advance(1000);
    await until('a second snapshot', () => printed.length === 2);
    abort.abort();
    await watching;
  } finally {
    await events.stop();
    await server.close();
  }
});
