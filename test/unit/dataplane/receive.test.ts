/**
 * The relay's receive side against a scripted endpoint: GRO messages split at their segment
 * size, a missing or odd GRO control message, and random messages: every datagram is delivered or
 * dropped and counted, never thrown.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { FakeClock } from '../../../src/core/clock.js';
import { randomPeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { Coalescer } from '../../../src/dataplane/relay/coalesce.js';
import { encodeRelayPacket } from '../../../src/dataplane/relay/codec.js';
import type { DatagramEndpoint } from '../../../src/dataplane/relay/endpoint.js';
import { NeighbourState } from '../../../src/dataplane/relay/neighbour.js';
import { Prober } from '../../../src/dataplane/relay/probes.js';
import { Receiver } from '../../../src/dataplane/relay/receive.js';
import { RelayState } from '../../../src/dataplane/relay/state.js';

const PEER_IP = 0x0a000002;
const PEER_PORT = 6783;

/** An endpoint that hands out scripted messages, once. */
function scripted(messages: Array<{ bytes: Buffer; segment: number; ip?: number; port?: number }>): DatagramEndpoint {
  let batch: typeof messages = [];
  return {
    receive: () => {
      batch = messages.splice(0);
      return batch.length;
    },
    data: (i: number) => batch[i]!.bytes,
    segmentSize: (i: number) => batch[i]!.segment,
    sourceIp: (i: number) => batch[i]!.ip ?? PEER_IP,
    sourcePort: (i: number) => batch[i]!.port ?? PEER_PORT,
  } as unknown as DatagramEndpoint;
}

function setup() {
  const self = randomPeerName();
  const peer = randomPeerName();
  const state = new RelayState(self, true, new FakeClock(), silentLogger);
  const keys = { send: randomBytes(32), receive: randomBytes(32) };
  const n = new NeighbourState(peer, { ip: '10.0.0.2', port: PEER_PORT }, keys);
  state.neighbours.set(peer, n);
  state.neighboursByKey.set(n.key, n);
  const receiver = new Receiver(state, new Prober(state, 1000), 9216);
  const delivered: Buffer[] = [];
  receiver.coalescer = { push: (f: Uint8Array) => delivered.push(Buffer.from(f)), flush: () => undefined } as unknown as Coalescer;
  let counter = 0;
  /** A sealed `frame` datagram from the peer, as its relay would send it (its send key = our receive key). */
  const datagram = (payload: Buffer): Buffer =>
    encodeRelayPacket({ type: 'frame', sealed: true, ttl: 16, source: peer, destination: self, hop: peer, counter: counter++ }, Buffer.concat([Buffer.alloc(10), Buffer.from('02000000000102000000000208000000', 'hex').subarray(0, 14), payload]), n.dataKeys!.receive);
  const dropped = (): number => Object.values(state.drops).reduce((a, b) => a + b, 0);
  return { state, receiver, delivered, datagram, dropped };
}

describe('relay receive side', () => {
  it('splits a GRO message at its segment size: every datagram opened and delivered, in order', () => {
    const { receiver, delivered, datagram, dropped } = setup();
    const d = [datagram(Buffer.alloc(1000, 1)), datagram(Buffer.alloc(1000, 2)), datagram(Buffer.alloc(300, 3))];
    assert.equal(receiver.drain(scripted([{ bytes: Buffer.concat(d), segment: d[0]!.length }])), 1);
    assert.deepEqual(delivered.map((f) => f[30]), [1, 2, 3]);
    assert.equal(dropped(), 0);
  });

  it('a GRO message without its control message is one datagram: it fails its tag, is dropped and counted', () => {
    const { state, receiver, delivered, datagram } = setup();
    const d = [datagram(Buffer.alloc(500, 1)), datagram(Buffer.alloc(500, 2))];
    receiver.drain(scripted([{ bytes: Buffer.concat(d), segment: 0 }]));
    assert.equal(delivered.length, 0);
    assert.equal(state.drops['auth-failed'], 1);
  });

  it('an odd segment size cuts datagrams wrongly: every piece is dropped and counted, none delivered, nothing thrown', () => {
    const { receiver, delivered, datagram, dropped, state } = setup();
    const d = Buffer.concat([datagram(Buffer.alloc(700, 1)), datagram(Buffer.alloc(700, 2))]);
    receiver.drain(scripted([{ bytes: d, segment: 333 }]));
    assert.equal(delivered.length, 0);
    assert.equal(dropped(), Math.ceil(d.length / 333));
    assert.equal(state.counters.fromNeighbours, Math.ceil(d.length / 333));
  });

  it('random messages and segment sizes: every datagram seen is delivered or dropped, never thrown', () => {
    const { receiver, delivered, datagram, dropped, state } = setup();
    fc.assert(
      fc.property(
        fc.array(fc.record({ valid: fc.boolean(), junk: fc.uint8Array({ maxLength: 200 }), segment: fc.integer({ min: 0, max: 400 }) }), { maxLength: 8 }),
        (messages) => {
          const script = messages.map((m) => ({ bytes: m.valid ? datagram(Buffer.from(m.junk)) : Buffer.from(m.junk), segment: m.segment }));
          receiver.drain(scripted(script));
          assert.equal(delivered.length + dropped(), state.counters.fromNeighbours);
        },
      ),
      { numRuns: 300 },
    );
  });
});
