/**
 * One connection suite, run over MemoryNetwork and over TcpTransport on 127.0.0.1, so the fake
 * and the real transport are held to the same contract. Protocol timers run on a FakeClock in
 * both; TCP I/O is awaited by turning the event loop (no sleeps).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { LoomError, isLoomError, type ErrorCode } from '../../../src/core/errors.js';
import { randomPeerName, randomPeerUid } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import { establishConnection, type ConnectionOptions } from '../../../src/mesh/connection.js';
import { encodeFrame } from '../../../src/mesh/framing.js';
import { MemoryNetwork } from '../../../src/mesh/transport-memory.js';
import { TcpTransport } from '../../../src/mesh/transport-tcp.js';
import type { ByteStream, ControlMessage, PeerIdentity, ProtocolConnection } from '../../../src/mesh/types.js';

interface Env {
  clock: FakeClock;
  /** A connected pair: [dialer's stream, acceptor's stream]. */
  pair(): Promise<[ByteStream, ByteStream]>;
  /** Lets in-flight bytes arrive: memory advances the fake clock, TCP turns the event loop. */
  pump(): Promise<void>;
  teardown(): Promise<void>;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function memoryEnv(): Env {
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock, { latencyMs: 2 });
  const server = net.transport('10.0.0.2:6783');
  const client = net.transport('10.0.0.1:6783');
  let accepted: ByteStream[] = [];
  let listening: Promise<void> | null = null;
  return {
    clock,
    async pair() {
      listening ??= server.listen((s) => accepted.push(s));
      await listening;
      const dialed = await client.dial('10.0.0.2:6783');
      const [acceptor] = accepted;
      accepted = [];
      assert.ok(acceptor);
      return [dialed, acceptor];
    },
    async pump() {
      clock.advance(2);
      await turn();
    },
    async teardown() {
      await server.close();
    },
  };
}

function tcpEnv(): Env {
  const clock = new FakeClock();
  const server = new TcpTransport({ host: '127.0.0.1', port: 0, logger: silentLogger });
  const client = new TcpTransport({ host: '127.0.0.1', port: 0, logger: silentLogger });
  const waiting: Array<(s: ByteStream) => void> = [];
  const opened: ByteStream[] = [];
  let listening: Promise<void> | null = null;
  return {
    clock,
    async pair() {
      listening ??= server.listen((s) => {
        opened.push(s);
        waiting.shift()?.(s);
      });
      await listening;
      const acceptorP = new Promise<ByteStream>((resolve) => waiting.push(resolve));
      const dialed = await client.dial(`127.0.0.1:${server.port}`);
      opened.push(dialed);
      return [dialed, await acceptorP];
    },
    pump: turn,
    async teardown() {
      for (const s of opened) s.close(new LoomError('ERR_CONNECTION_CLOSED', 'test over'));
      await server.close();
    },
  };
}

function identity(nickname: string): PeerIdentity {
  return { name: randomPeerName(), uid: randomPeerUid(), nickname };
}

/** Pumps until `p` settles; bounded in iterations and in real time. */
async function settle<T>(env: Env, p: Promise<T>): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 20_000 && !done && Date.now() < deadline; i++) await env.pump();
  assert.ok(done, 'promise did not settle');
  return p;
}

async function pumpUntil(env: Env, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 20_000 && !cond() && Date.now() < deadline; i++) await env.pump();
  assert.ok(cond(), 'condition not reached');
}

async function rejectsWith(env: Env, p: Promise<unknown>, code: ErrorCode): Promise<LoomError> {
  try {
    await settle(env, p);
  } catch (err) {
    assert.ok(isLoomError(err), `expected LoomError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected rejection with ${code}`);
}

/** Both handshakes must fail with `code`; handlers are attached at once so neither rejection goes unhandled. */
async function bothReject(env: Env, pa: Promise<unknown>, pb: Promise<unknown>, code: ErrorCode): Promise<[LoomError, LoomError]> {
  const [ra, rb] = await settle(env, Promise.allSettled([pa, pb]));
  const errors: LoomError[] = [];
  for (const r of [ra, rb]) {
    assert.equal(r.status, 'rejected', `expected rejection with ${code}`);
    const err: unknown = r.status === 'rejected' ? r.reason : null;
    assert.ok(isLoomError(err), `expected LoomError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    errors.push(err);
  }
  return [errors[0]!, errors[1]!];
}

function options(env: Env, outbound: boolean, extra: Partial<ConnectionOptions> = {}): ConnectionOptions {
  return { outbound, local: identity(outbound ? 'dialer' : 'acceptor'), listenPort: outbound ? 6783 : 6784, clock: env.clock, logger: silentLogger, ...extra };
}

/** Handshakes both ends of a fresh pair. */
async function connect(env: Env, a: Partial<ConnectionOptions> = {}, b: Partial<ConnectionOptions> = {}): Promise<[ProtocolConnection, ProtocolConnection]> {
  const [sa, sb] = await env.pair();
  const pa = establishConnection(sa, options(env, true, a));
  const pb = establishConnection(sb, options(env, false, b));
  return [await settle(env, pa), await settle(env, pb)];
}

/** Collects what a connection delivers and how it closes. */
function watch(conn: ProtocolConnection): { messages: ControlMessage[]; closed: { err: LoomError | null } | null } {
  const seen = { messages: [] as ControlMessage[], closed: null as { err: LoomError | null } | null };
  conn.onMessage((m) => seen.messages.push(m));
  conn.onClose((err) => (seen.closed = { err }));
  return seen;
}

/** A stream wrapper through which a test can inject bytes as if they came from the peer. */
function tap(stream: ByteStream): { stream: ByteStream; inject(chunk: Uint8Array): void; corruptNextChunk(): void } {
  let deliver: ((chunk: Uint8Array) => void) | null = null;
  let corrupt = false;
  const wrapped: ByteStream = {
    remoteAddress: stream.remoteAddress,
    write: (c) => stream.write(c),
    close: (e) => stream.close(e),
    onDrain: (l) => stream.onDrain(l),
    onClose: (l) => stream.onClose(l),
    onData(listener) {
      deliver = listener;
      stream.onData((chunk) => {
        if (corrupt && chunk.length > 0) {
          corrupt = false;
          const copy = new Uint8Array(chunk);
          copy[copy.length - 1]! ^= 0xff;
          chunk = copy;
        }
        listener(chunk);
      });
    },
  };
  return { stream: wrapped, inject: (c) => deliver?.(c), corruptNextChunk: () => (corrupt = true) };
}

function connectionSuite(name: string, makeEnv: () => Env): void {
  describe(`connection over ${name}`, () => {
    let env: Env;
    before(() => {
      env = makeEnv();
    });
    after(async () => {
      await env.teardown();
    });

    it('establishes without a password and tells each side who the other is', async () => {
      const idA = identity('alpha');
      const idB = identity('beta');
      const [a, b] = await connect(env, { local: idA, listenPort: 7001 }, { local: idB, listenPort: 7002 });
      assert.deepEqual(a.remote, idB);
      assert.deepEqual(b.remote, idA);
      assert.equal(a.remoteListenPort, 7002);
      assert.equal(b.remoteListenPort, 7001);
      assert.equal(a.outbound, true);
      assert.equal(b.outbound, false);
      assert.equal(a.protocolVersion, 1);
      assert.equal(a.encrypted, false);
      assert.deepEqual(a.sessionKeys.send, b.sessionKeys.receive);
      assert.deepEqual(a.sessionKeys.receive, b.sessionKeys.send);
      assert.notDeepEqual(a.sessionKeys.send, a.sessionKeys.receive);
      a.close();
      b.close();
    });

    for (const password of [undefined, 's3cret']) {
      it(`carries every message type in order (${password ? 'encrypted' : 'plaintext'})`, async () => {
        const [a, b] = await connect(env, { password }, { password });
        assert.equal(a.encrypted, password !== undefined);
        const seenB = watch(b);
        const seenA = watch(a);
        const src = a.remote.name;
        const dst = b.remote.name;
        const sent: ControlMessage[] = [
          { type: 'gossip', channel: 'topology', payload: new Uint8Array([1, 2, 3]) },
          // hopsLeft travels on the wire (protocol.ts GossipUnicastMessage).
          { type: 'gossip-unicast', channel: 'ipam', src, dst, hopsLeft: 5, payload: new Uint8Array(5000).fill(7) },
          { type: 'gossip-broadcast', channel: 'dns', src, payload: new Uint8Array(0) },
        ];
        for (let i = 0; i < 50; i++) sent.push({ type: 'gossip', channel: 'c', payload: new Uint8Array([i]) });
        for (const m of sent) a.send(m);
        b.send({ type: 'gossip', channel: 'back', payload: new Uint8Array([9]) });
        await pumpUntil(env, () => seenB.messages.length === sent.length && seenA.messages.length === 1);
        assert.deepEqual(
          seenB.messages.map((m) => ({ ...m, ...('payload' in m ? { payload: Buffer.from(m.payload).toString('hex') } : {}) })),
          sent.map((m) => ({ ...m, ...('payload' in m ? { payload: Buffer.from(m.payload).toString('hex') } : {}) })),
        );
        assert.equal(seenA.messages[0]?.type, 'gossip');
        a.close();
        b.close();
      });
    }

    it('delivers a message sent before the peer set its listener', async () => {
      const [a, b] = await connect(env);
      a.send({ type: 'gossip', channel: 'early', payload: new Uint8Array([1]) });
      for (let i = 0; i < 20; i++) await env.pump();
      const seen = watch(b);
      await pumpUntil(env, () => seen.messages.length === 1);
      assert.equal(seen.messages[0]?.type === 'gossip' && seen.messages[0].channel, 'early');
      a.close();
      b.close();
    });

    it('fails ERR_AUTH_FAILED on both ends with different passwords', async () => {
      const [sa, sb] = await env.pair();
      const pa = establishConnection(sa, options(env, true, { password: 'one' }));
      const pb = establishConnection(sb, options(env, false, { password: 'two' }));
      const [ea] = await bothReject(env, pa, pb, 'ERR_AUTH_FAILED');
      assert.match(ea.message, /password mismatch/);
    });

    it('fails ERR_AUTH_FAILED on both ends when only one side has a password', async () => {
      const [sa, sb] = await env.pair();
      const pa = establishConnection(sa, options(env, true, { password: 'one' }));
      const pb = establishConnection(sb, options(env, false));
      const [ea, eb] = await bothReject(env, pa, pb, 'ERR_AUTH_FAILED');
      assert.match(ea.message, /peer has no password/);
      assert.match(eb.message, /we have none/);
    });

    it('fails ERR_VERSION_MISMATCH on both ends, naming both ranges', async () => {
      const [sa, sb] = await env.pair();
      const pa = establishConnection(sa, options(env, true, { minVersion: 2, maxVersion: 3 }));
      const pb = establishConnection(sb, options(env, false, { minVersion: 1, maxVersion: 1 }));
      const [ea, eb] = await bothReject(env, pa, pb, 'ERR_VERSION_MISMATCH');
      for (const e of [ea, eb]) {
        assert.match(e.message, /2\.\.3/);
        assert.match(e.message, /1\.\.1/);
      }
    });

    it('picks the highest common version', async () => {
      const [a, b] = await connect(env, { minVersion: 1, maxVersion: 3 }, { minVersion: 2, maxVersion: 5 });
      assert.equal(a.protocolVersion, 3);
      assert.equal(b.protocolVersion, 3);
      a.close();
      b.close();
    });

    it('refuses a connection to ourselves with ERR_SELF_CONNECTION', async () => {
      const self = identity('self');
      const [sa, sb] = await env.pair();
      const pa = establishConnection(sa, options(env, true, { local: self }));
      const pb = establishConnection(sb, options(env, false, { local: self }));
      await bothReject(env, pa, pb, 'ERR_SELF_CONNECTION');
    });

    it('closes a half handshake with ERR_HANDSHAKE_TIMEOUT and closes the stream', async () => {
      const [sa, sb] = await env.pair();
      let rawClosed = false;
      sb.onData(() => {});
      sb.onClose(() => (rawClosed = true));
      const pa = establishConnection(sa, options(env, true, { handshakeTimeoutMs: 3000 }));
      let settled = false;
      pa.catch(() => {}).finally(() => (settled = true));
      for (let i = 0; i < 10; i++) await env.pump();
      assert.equal(settled, false);
      env.clock.advance(3000);
      await rejectsWith(env, pa, 'ERR_HANDSHAKE_TIMEOUT');
      await pumpUntil(env, () => rawClosed);
      sb.close();
    });

    it('rejects garbage with ERR_PROTOCOL (an HTTP request, a frame without the magic)', async () => {
      for (const garbage of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), encodeFrame(Buffer.from('NOPE-not-a-hello'))]) {
        const [sa, sb] = await env.pair();
        sb.onData(() => {});
        sb.onClose(() => {});
        const pa = establishConnection(sa, options(env, true));
        sb.write(garbage);
        await rejectsWith(env, pa, 'ERR_PROTOCOL');
        sb.close();
      }
    });

    it('rejects ERR_CONNECTION_CLOSED when the peer hangs up mid-handshake', async () => {
      const [sa, sb] = await env.pair();
      sb.onData(() => {});
      sb.onClose(() => {});
      const pa = establishConnection(sa, options(env, true));
      sb.close();
      await rejectsWith(env, pa, 'ERR_CONNECTION_CLOSED');
    });

    it('closes with ERR_FRAME_TOO_LARGE when a frame exceeds maxFrameBytes', async () => {
      const [a, b] = await connect(env, { maxFrameBytes: 1024 }, {});
      const seenA = watch(a);
      const seenB = watch(b);
      assert.throws(() => a.send({ type: 'gossip', channel: 'x', payload: new Uint8Array(2000) }), (e: unknown) => isLoomError(e, 'ERR_FRAME_TOO_LARGE'));
      b.send({ type: 'gossip', channel: 'x', payload: new Uint8Array(2000) });
      await pumpUntil(env, () => seenA.closed !== null && seenB.closed !== null);
      assert.equal(seenA.closed?.err?.code, 'ERR_FRAME_TOO_LARGE');
      assert.equal(seenB.closed?.err?.code, 'ERR_CONNECTION_CLOSED');
      assert.equal(seenA.messages.length, 0);
    });

    it('closes with ERR_PROTOCOL on a malformed message after the handshake', async () => {
      const [sa, sb] = await env.pair();
      const tapped = tap(sb);
      const pa = establishConnection(sa, options(env, true));
      const pb = establishConnection(tapped.stream, options(env, false));
      const [a, b] = [await settle(env, pa), await settle(env, pb)];
      const seenB = watch(b);
      tapped.inject(encodeFrame(new Uint8Array([0xee, 1, 2])));
      await pumpUntil(env, () => seenB.closed !== null);
      assert.equal(seenB.closed?.err?.code, 'ERR_PROTOCOL');
      a.close();
    });

    it('closes with ERR_PROTOCOL when an encrypted frame is tampered with', async () => {
      const [sa, sb] = await env.pair();
      const tapped = tap(sb);
      const pa = establishConnection(sa, options(env, true, { password: 'pw' }));
      const pb = establishConnection(tapped.stream, options(env, false, { password: 'pw' }));
      const [a, b] = [await settle(env, pa), await settle(env, pb)];
      const seenB = watch(b);
      tapped.corruptNextChunk();
      a.send({ type: 'gossip', channel: 'x', payload: new Uint8Array(100) });
      await pumpUntil(env, () => seenB.closed !== null);
      assert.equal(seenB.closed?.err?.code, 'ERR_PROTOCOL');
      assert.equal(seenB.messages.length, 0);
      a.close();
    });

    it('closes with ERR_HEARTBEAT_TIMEOUT when the peer goes silent', async () => {
      const [a, b] = await connect(env, { heartbeatTimeoutMs: 5000 }, { heartbeatIntervalMs: 1_000_000_000 });
      const seenA = watch(a);
      watch(b);
      env.clock.advance(4000);
      assert.equal(seenA.closed === null, true, 'still open before the timeout');
      env.clock.advance(2000);
      assert.equal(seenA.closed?.err?.code, 'ERR_HEARTBEAT_TIMEOUT');
      b.close();
    });

    it('stays up while heartbeats flow', async () => {
      const [a, b] = await connect(env);
      const seenA = watch(a);
      const seenB = watch(b);
      for (let t = 0; t < 20_000; t += 500) {
        env.clock.advance(500);
        for (let i = 0; i < 5; i++) await env.pump();
      }
      assert.equal(seenA.closed, null);
      assert.equal(seenB.closed, null);
      assert.equal(seenA.messages.length, 0, 'heartbeats are not delivered to the listener');
      a.close();
      b.close();
    });

    it('goodbye closes both ends; the peer sees the reason', async () => {
      const [a, b] = await connect(env, { password: 'pw' }, { password: 'pw' });
      const seenA = watch(a);
      const seenB = watch(b);
      a.close('shutting down');
      a.close('twice is harmless');
      assert.deepEqual(seenA.closed, { err: null });
      assert.equal(a.send({ type: 'heartbeat' }), false);
      await pumpUntil(env, () => seenB.closed !== null);
      assert.equal(seenB.closed?.err?.code, 'ERR_CONNECTION_CLOSED');
      assert.match(seenB.closed?.err?.message ?? '', /shutting down/);
    });

    it('reports ERR_CONNECTION_CLOSED when the stream drops without goodbye', async () => {
      const [sa, sb] = await env.pair();
      const pa = establishConnection(sa, options(env, true));
      const pb = establishConnection(sb, options(env, false));
      const [a] = [await settle(env, pa), await settle(env, pb)];
      const seenA = watch(a);
      sb.close(new LoomError('ERR_INTERNAL', 'crash'));
      await pumpUntil(env, () => seenA.closed !== null);
      assert.equal(seenA.closed?.err?.code, 'ERR_CONNECTION_CLOSED');
    });

    it('leaves no protocol timers behind once its connections are closed', async () => {
      const [a, b] = await connect(env, { password: 'pw' }, { password: 'pw' });
      assert.ok(env.clock.pending > 0, 'heartbeat timers run while established');
      a.close('done');
      await pumpUntil(env, () => env.clock.pending === 0);
      assert.equal(b.send({ type: 'heartbeat' }), false, 'the peer closed on goodbye');
    });

    it('rejects bad options with ERR_INVALID_ARGUMENT and closes the stream', async () => {
      const [sa, sb] = await env.pair();
      let peerClosed = false;
      sb.onData(() => {});
      sb.onClose(() => (peerClosed = true));
      await rejectsWith(env, establishConnection(sa, options(env, true, { local: { ...identity('x'), nickname: 'n'.repeat(65) } })), 'ERR_INVALID_ARGUMENT');
      await pumpUntil(env, () => peerClosed);
    });
  });
}

connectionSuite('MemoryNetwork', memoryEnv);
connectionSuite('TcpTransport on 127.0.0.1', tcpEnv);
