import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { isLoomError, type LoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { MemoryNetwork } from '../../../src/mesh/transport-memory.js';
import { TcpTransport, formatHostPort, parseHostPort } from '../../../src/mesh/transport-tcp.js';
import type { ByteStream } from '../../../src/mesh/types.js';

interface Recorder {
  chunks: Array<{ at: number; bytes: number[] }>;
  closed: { err: LoomError | null } | null;
}

function record(stream: ByteStream, clock: FakeClock): Recorder {
  const r: Recorder = { chunks: [], closed: null };
  stream.onData((c) => r.chunks.push({ at: clock.now(), bytes: [...c] }));
  stream.onClose((err) => (r.closed = { err }));
  return r;
}

async function memoryPair(latencyMs = 10) {
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock, { latencyMs });
  const server = net.transport('10.0.0.2:6783');
  const client = net.transport('10.0.0.1:6783');
  const accepted: ByteStream[] = [];
  await server.listen((s) => accepted.push(s));
  const dialed = await client.dial('10.0.0.2:6783');
  assert.equal(accepted.length, 1);
  return { clock, net, server, client, dialed, accepted: accepted[0]! };
}

describe('MemoryNetwork', () => {
  it('delivers each chunk after the latency, in order, and counts bytes', async () => {
    const { clock, net, dialed, accepted } = await memoryPair(10);
    const rec = record(accepted, clock);
    dialed.write(new Uint8Array([1]));
    clock.advance(3);
    dialed.write(new Uint8Array([2, 3]));
    dialed.write(new Uint8Array([4]));
    clock.advance(6);
    assert.equal(rec.chunks.length, 0, 'nothing before the latency has passed');
    clock.advance(1);
    assert.deepEqual(rec.chunks, [{ at: 10, bytes: [1] }]);
    clock.advance(10);
    assert.deepEqual(rec.chunks.map((c) => [c.at, c.bytes]), [[10, [1]], [13, [2, 3]], [13, [4]]]);
    assert.equal(net.stats().bytesDelivered, 4);
  });

  it('delivers 50,000 queued chunks in order in linear time', async () => {
    const { clock, dialed, accepted } = await memoryPair(1);
    const got: number[] = [];
    accepted.onData((c) => got.push(c[0]! | (c[1]! << 8)));
    const started = performance.now();
    for (let i = 0; i < 50_000; i++) dialed.write(new Uint8Array([i & 0xff, i >> 8]));
    clock.advance(1);
    assert.equal(got.length, 50_000);
    assert.ok(got.every((v, i) => v === (i & 0xffff)));
    assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
  });

  it('gives the dialer the listen address and the acceptor an ephemeral port of the dialer host', async () => {
    const { dialed, accepted } = await memoryPair();
    assert.equal(dialed.remoteAddress, '10.0.0.2:6783');
    assert.match(accepted.remoteAddress, /^10\.0\.0\.1:\d+$/);
    assert.notEqual(accepted.remoteAddress, '10.0.0.1:6783');
  });

  it('refuses dials to an address nobody listens on', async () => {
    const clock = new FakeClock();
    const net = new MemoryNetwork(clock);
    await assert.rejects(net.transport('a:1').dial('b:2'), (e: unknown) => isLoomError(e, 'ERR_UNAVAILABLE'));
  });

  it('a graceful close arrives behind the data written before it', async () => {
    const { clock, dialed, accepted } = await memoryPair(5);
    const rec = record(accepted, clock);
    const mine = { closed: null as LoomError | null | undefined };
    dialed.onClose((err) => (mine.closed = err));
    dialed.write(new Uint8Array([7]));
    dialed.close();
    assert.equal(dialed.write(new Uint8Array([8])), false, 'no writes after close');
    clock.advance(5);
    assert.deepEqual(rec.chunks.map((c) => c.bytes), [[7]]);
    assert.deepEqual(rec.closed, { err: null });
    assert.equal(mine.closed, null);
  });

  it('partition resets open streams, fails dials until healed', async () => {
    const { clock, net, client, dialed, accepted } = await memoryPair(5);
    const a = record(dialed, clock);
    const b = record(accepted, clock);
    dialed.write(new Uint8Array([1]));
    net.partition('10.0.0.1:6783', '10.0.0.2:6783');
    clock.advance(10);
    assert.equal(b.chunks.length, 0, 'in-flight data is lost');
    assert.equal(a.closed?.err?.code, 'ERR_CONNECTION_CLOSED');
    assert.equal(b.closed?.err?.code, 'ERR_CONNECTION_CLOSED');
    await assert.rejects(client.dial('10.0.0.2:6783'), (e: unknown) => isLoomError(e, 'ERR_UNAVAILABLE'));
    net.heal('10.0.0.2:6783', '10.0.0.1:6783');
    const again = await client.dial('10.0.0.2:6783');
    assert.equal(again.remoteAddress, '10.0.0.2:6783');
  });

  it('kill resets every stream of the address and stops its listener', async () => {
    const { clock, net, client, server, dialed, accepted } = await memoryPair(5);
    const third = net.transport('10.0.0.3:6783');
    const fromThird = await third.dial('10.0.0.2:6783');
    const a = record(dialed, clock);
    const c = record(fromThird, clock);
    record(accepted, clock);
    net.kill('10.0.0.2:6783');
    assert.equal(a.closed?.err?.code, 'ERR_CONNECTION_CLOSED');
    assert.equal(c.closed?.err?.code, 'ERR_CONNECTION_CLOSED');
    await assert.rejects(client.dial('10.0.0.2:6783'), (e: unknown) => isLoomError(e, 'ERR_UNAVAILABLE'));
    await assert.rejects(server.dial('10.0.0.1:6783'), (e: unknown) => isLoomError(e, 'ERR_UNAVAILABLE'), 'a dead process cannot dial');
    // A restarted process may listen on the same address again.
    await net.transport('10.0.0.2:6783').listen(() => {});
    await client.dial('10.0.0.2:6783');
  });

  it('signals backpressure over the high-water mark and drains once delivered', async () => {
    const { clock, dialed, accepted } = await memoryPair(5);
    record(accepted, clock);
    let drained = 0;
    dialed.onDrain(() => drained++);
    assert.equal(dialed.write(new Uint8Array(512 * 1024)), true);
    assert.equal(dialed.write(new Uint8Array(768 * 1024)), false);
    clock.advance(5);
    assert.equal(drained, 1);
  });

  it('close of a transport stops accepting only', async () => {
    const { clock, server, client, dialed, accepted } = await memoryPair(5);
    const rec = record(accepted, clock);
    await server.close();
    await assert.rejects(client.dial('10.0.0.2:6783'), (e: unknown) => isLoomError(e, 'ERR_UNAVAILABLE'));
    dialed.write(new Uint8Array([1]));
    clock.advance(5);
    assert.equal(rec.chunks.length, 1);
  });
});

describe('TcpTransport', () => {
  it('listens on an ephemeral port of 127.0.0.1, and both ends name the other', async () => {
    const server = new TcpTransport({ host: '127.0.0.1', port: 0, logger: silentLogger });
    const client = new TcpTransport({ host: '127.0.0.1', port: 0, logger: silentLogger });
    let onStream: (s: ByteStream) => void = () => {};
    const accepted = new Promise<ByteStream>((resolve) => (onStream = resolve));
    await server.listen((s) => onStream(s));
    try {
      assert.ok(server.port > 0);
      const dialed = await client.dial(`127.0.0.1:${server.port}`);
      const inbound = await accepted;
      assert.equal(dialed.remoteAddress, `127.0.0.1:${server.port}`);
      assert.match(inbound.remoteAddress, /^127\.0\.0\.1:\d+$/);
      const got = new Promise<number[]>((resolve) => inbound.onData((c) => resolve([...c])));
      const closed = new Promise<LoomError | null>((resolve) => inbound.onClose(resolve));
      dialed.onData(() => {});
      dialed.onClose(() => {});
      dialed.write(new Uint8Array([1, 2, 3]));
      assert.deepEqual(await got, [1, 2, 3]);
      dialed.close();
      assert.equal(await closed, null, 'an orderly close reports no error');
    } finally {
      await server.close();
    }
  });

  it('maps a refused dial to ERR_UNAVAILABLE naming ECONNREFUSED', async () => {
    const probe = new TcpTransport({ host: '127.0.0.1', port: 0, logger: silentLogger });
    await probe.listen(() => {});
    const port = probe.port;
    await probe.close();
    const client = new TcpTransport({ port: 0, logger: silentLogger });
    await assert.rejects(client.dial(`127.0.0.1:${port}`), (e: unknown) => isLoomError(e, 'ERR_UNAVAILABLE') && /ECONNREFUSED/.test(e.message));
  });

  it('rejects a bad address with ERR_INVALID_ARGUMENT and a busy port with ERR_UNAVAILABLE', async () => {
    const client = new TcpTransport({ port: 0, logger: silentLogger });
    for (const bad of ['nohost', 'h:0', 'h:70000', ':1', '[::1]', 'a:b:c']) {
      await assert.rejects(client.dial(bad), (e: unknown) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), bad);
    }
    const first = new TcpTransport({ host: '127.0.0.1', port: 0, logger: silentLogger });
    await first.listen(() => {});
    try {
      const second = new TcpTransport({ host: '127.0.0.1', port: first.port, logger: silentLogger });
      await assert.rejects(second.listen(() => {}), (e: unknown) => isLoomError(e, 'ERR_UNAVAILABLE') && /EADDRINUSE/.test(e.message));
    } finally {
      await first.close();
    }
  });

  it('parses and formats host:port, including IPv6 and v4-mapped', () => {
    assert.deepEqual(parseHostPort('10.1.2.3:6783'), { host: '10.1.2.3', port: 6783 });
    assert.deepEqual(parseHostPort('[::1]:6783'), { host: '::1', port: 6783 });
    assert.deepEqual(parseHostPort('host-a.example:1'), { host: 'host-a.example', port: 1 });
    assert.equal(formatHostPort('::ffff:127.0.0.1', 5), '127.0.0.1:5');
    assert.equal(formatHostPort('fe80::1', 5), '[fe80::1]:5');
  });
});
