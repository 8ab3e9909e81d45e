/**
 * The relay's send side against a recording endpoint: what goes to the kernel in one flush (GSO
 * trains of equal-size datagrams per neighbour, records for small frames, one lone record as a
 * plain packet), sealing in place, and EMSGSIZE reported back as the neighbour's path MTU.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { randomPeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { DatagramEndpoint } from '../../../src/dataplane/relay/endpoint.js';
import { NeighbourState } from '../../../src/dataplane/relay/neighbour.js';
import { openPacket } from '../../../src/dataplane/relay/seal.js';
import { zeroCounters } from '../../../src/dataplane/relay/stats.js';
import { Transmitter } from '../../../src/dataplane/relay/transmit.js';
import { decodeHeader, PacketType, RELAY_HEADER_BYTES, RELAY_TAG_BYTES } from '../../../src/dataplane/relay/wire.js';

interface Queued {
  bytes: Buffer;
  segment: number;
  ip: number;
  port: number;
}

function recordingEndpoint(errors: Array<[number, number, number, number]> = []): DatagramEndpoint & { queued: Queued[]; flushes: number } {
  const e = {
    queued: [] as Queued[],
    flushes: 0,
    port: 1,
    onSendError: null as DatagramEndpoint['onSendError'],
    queue(buf: Uint8Array, offset: number, length: number, segment: number, ip: number, port: number) {
      e.queued.push({ bytes: Buffer.from(buf.subarray(offset, offset + length)), segment, ip, port });
    },
    flush() {
      e.flushes++;
      for (const [errno, ip, port, segment] of errors.splice(0)) e.onSendError?.(errno, ip, port, segment);
      return 0;
    },
  };
  return e as unknown as DatagramEndpoint & { queued: Queued[]; flushes: number };
}

function setup(encrypt: boolean) {
  const self = Buffer.from([2, 0, 0, 0, 0, 1]);
  const drops: string[] = [];
  const tooBig: Array<[number, number, number]> = [];
  const counters = zeroCounters();
  const t = new Transmitter({ encrypt, selfBytes: self, counters, drop: (r) => drops.push(r), logger: silentLogger, onTooBig: (ip, port, size) => tooBig.push([ip, port, size]) });
  const keys = { send: randomBytes(32), receive: randomBytes(32) };
  const n1 = new NeighbourState(randomPeerName(), { ip: '10.0.0.1', port: 6783 }, encrypt ? keys : null);
  const n2 = new NeighbourState(randomPeerName(), { ip: '10.0.0.2', port: 6783 }, encrypt ? keys : null);
  return { t, n1, n2, self, drops, tooBig, counters };
}

function send(t: Transmitter, n: NeighbourState, self: Buffer, body: Buffer, type: number = PacketType.frame): void {
  const at = t.reserve(body.length);
  t.arena.set(body, at);
  t.commit(n, type, 16, self, n.nameBytes, body.length);
}

/** A queued train back as its datagrams. */
function datagrams(q: Queued): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < q.bytes.length; at += q.segment) out.push(q.bytes.subarray(at, Math.min(at + q.segment, q.bytes.length)));
  return out;
}

describe('relay transmitter', () => {
  it('sends equal-size datagrams to one neighbour as one GSO train, closed by a shorter one', () => {
    const { t, n1, n2, self } = setup(false);
    const e = recordingEndpoint();
    t.attach(e);
    for (let i = 0; i < 5; i++) send(t, n1, self, Buffer.alloc(1000, i));
    send(t, n1, self, Buffer.alloc(400, 9)); // shorter: ends the train
    send(t, n1, self, Buffer.alloc(1000, 7)); // a new train
    send(t, n2, self, Buffer.alloc(1000, 8)); // another neighbour: a new train
    t.flush();
    assert.equal(e.flushes, 1);
    assert.deepEqual(
      e.queued.map((q) => [q.ip, q.bytes.length, q.segment]),
      [
        [0x0a000001, 5 * 1030 + 430, 1030],
        [0x0a000001, 1030, 1030],
        [0x0a000002, 1030, 1030],
      ],
    );
    const first = datagrams(e.queued[0]!);
    assert.equal(first.length, 6);
    assert.deepEqual(first.map((d) => decodeHeader(d).counter), [0, 1, 2, 3, 4, 5], 'counters in order');
    assert.equal(first[5]![RELAY_HEADER_BYTES], 9);
    assert.equal(n1.sent, 7);
    t.flush();
    assert.equal(e.flushes, 1, 'nothing queued: no syscall');
  });

  it('seals each datagram on its own, in place, so each opens alone', () => {
    const { t, n1, self } = setup(true);
    const e = recordingEndpoint();
    t.attach(e);
    const bodies = [randomBytes(1200), randomBytes(1200), randomBytes(300)];
    for (const b of bodies) send(t, n1, self, b);
    t.flush();
    assert.equal(e.queued.length, 1);
    const all = datagrams(e.queued[0]!);
    assert.equal(all[0]!.length, RELAY_HEADER_BYTES + 1200 + RELAY_TAG_BYTES);
    all.forEach((d, i) => assert.deepEqual(openPacket(n1.dataKeys!.send, d, d.length), bodies[i]));
    assert.equal(all[1]!.includes(bodies[1]!.subarray(0, 32)), false, 'no plaintext');
  });

  it('puts small frames of one turn into one record datagram; a lone record goes as a plain packet', () => {
    const { t, n1, n2, self } = setup(false);
    const e = recordingEndpoint();
    t.attach(e);
    for (let i = 0; i < 10; i++) t.appendRecord(n1, PacketType.frameBatch, self, n1.nameBytes, Buffer.alloc(70, i), 1400);
    t.appendRecord(n2, PacketType.frameBatch, self, n2.nameBytes, Buffer.alloc(70, 42), 1400);
    t.flush();
    const sent = e.queued.flatMap(datagrams);
    assert.deepEqual(sent.map((d) => decodeHeader(d).type), ['frameBatch', 'frame']);
    assert.equal(sent[0]!.length, RELAY_HEADER_BYTES + 10 * 72);
    assert.equal(sent[1]!.length, RELAY_HEADER_BYTES + 70, 'no record framing on a lone frame');
    assert.equal(sent[1]![RELAY_HEADER_BYTES], 42);
  });

  it('never makes a record datagram bigger than the body bound it was given', () => {
    const { t, n1, self } = setup(false);
    const e = recordingEndpoint();
    t.attach(e);
    for (let i = 0; i < 40; i++) t.appendRecord(n1, PacketType.frameBatch, self, n1.nameBytes, Buffer.alloc(200, i), 1000);
    t.flush();
    const sent = e.queued.flatMap(datagrams);
    for (const d of sent) assert.ok(d.length - RELAY_HEADER_BYTES <= 1000, `body ${d.length - RELAY_HEADER_BYTES}`);
    assert.equal(sent.length, Math.ceil(40 / Math.floor(1000 / 202)));
  });

  it('reports EMSGSIZE as a too-big datagram of that size on the underlay, and counts unsent datagrams without an endpoint', () => {
    const { t, n1, self, tooBig, drops } = setup(false);
    const e = recordingEndpoint([[90, 0x0a000001, 6783, 1430]]);
    t.attach(e);
    send(t, n1, self, Buffer.alloc(1400));
    t.flush();
    assert.deepEqual(tooBig, [[0x0a000001, 6783, 1430 + 28]]);
    t.attach(null);
    send(t, n1, self, Buffer.alloc(100));
    send(t, n1, self, Buffer.alloc(100));
    t.flush();
    assert.deepEqual(drops, ['send-failed']);
  });
});
