import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LoomError, isLoomError } from '../../../src/core/errors.js';
import { peerNameFromBytes } from '../../../src/core/ids.js';
import { decodeControlMessage, encodeControlMessage, MESSAGE_TAG, UNICAST_HOP_LIMIT, type GossipUnicastMessage } from '../../../src/mesh/protocol.js';
import type { ControlMessage } from '../../../src/mesh/types.js';

const peerName = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => peerNameFromBytes(b));
const channel = fc.string({ minLength: 1, maxLength: 16, unit: 'grapheme' }).filter((s) => Buffer.byteLength(s) <= 64);
const payload = fc.uint8Array({ maxLength: 200 });

const message: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.constant({ type: 'heartbeat' as const }),
  fc.record({ type: fc.constant('gossip' as const), channel, payload }),
  fc.record({ type: fc.constant('gossip-unicast' as const), channel, src: peerName, dst: peerName, hopsLeft: fc.integer({ min: 0, max: 255 }), payload }),
  fc.record({ type: fc.constant('gossip-broadcast' as const), channel, src: peerName, payload }),
  fc.record({ type: fc.constant('goodbye' as const), reason: fc.string({ maxLength: 100 }) }),
);

/** Normalises payloads to hex so deepEqual compares content, not buffer identity. */
function plain(msg: ControlMessage): unknown {
  return 'payload' in msg ? { ...msg, payload: Buffer.from(msg.payload).toString('hex') } : { ...msg };
}

describe('ControlMessage codec', () => {
  it('round-trips every message type', () => {
    fc.assert(
      fc.property(message, (msg) => {
        assert.deepEqual(plain(decodeControlMessage(encodeControlMessage(msg))), plain(msg));
      }),
    );
  });

  it('leaves headroom untouched and encodes after it', () => {
    const msg: ControlMessage = { type: 'gossip', channel: 'ab', payload: new Uint8Array([5]) };
    const out = encodeControlMessage(msg, 4);
    assert.deepEqual([...out.subarray(4)], [MESSAGE_TAG.gossip, 2, 0x61, 0x62, 5]);
  });

  it('has a fixed wire form (tag, channel length, channel, peers, payload)', () => {
    const src = peerNameFromBytes(new Uint8Array([1, 2, 3, 4, 5, 6]));
    const dst = peerNameFromBytes(new Uint8Array([6, 5, 4, 3, 2, 1]));
    const out = encodeControlMessage({ type: 'gossip-unicast', channel: 'x', src, dst, payload: new Uint8Array([0xff]) });
    assert.deepEqual([...out], [3, 1, 0x78, 1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1, UNICAST_HOP_LIMIT, 0xff]);
  });

  it('carries the hops a unicast has left in one byte after the peers', () => {
    const src = peerNameFromBytes(new Uint8Array([1, 2, 3, 4, 5, 6]));
    const msg: GossipUnicastMessage = { type: 'gossip-unicast', channel: 'x', src, dst: src, hopsLeft: 3, payload: new Uint8Array([9]) };
    const out = encodeControlMessage(msg);
    assert.equal(out[15], 3);
    assert.equal((decodeControlMessage(out) as GossipUnicastMessage).hopsLeft, 3);
  });

  it('never throws anything but LoomError ERR_PROTOCOL on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        try {
          decodeControlMessage(bytes);
        } catch (err) {
          assert.ok(isLoomError(err, 'ERR_PROTOCOL'), String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects unknown tags, short bodies, trailing heartbeat bytes and bad UTF-8 channels', () => {
    const bad = [
      [],
      [0],
      [99],
      [MESSAGE_TAG.heartbeat, 0],
      [MESSAGE_TAG.gossip],
      [MESSAGE_TAG.gossip, 0],
      [MESSAGE_TAG.gossip, 65, ...new Array<number>(65).fill(0x61)],
      [MESSAGE_TAG.gossip, 3, 0x61],
      [MESSAGE_TAG.gossip, 1, 0xff],
      [MESSAGE_TAG['gossip-unicast'], 1, 0x61, 1, 2, 3, 4, 5, 6, 1, 2],
      [MESSAGE_TAG['gossip-unicast'], 1, 0x61, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6],
      [MESSAGE_TAG['gossip-broadcast'], 1, 0x61, 1, 2, 3],
    ];
    for (const bytes of bad) {
      assert.throws(() => decodeControlMessage(new Uint8Array(bytes)), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'), `accepted ${JSON.stringify(bytes)}`);
    }
  });

  it('refuses to encode channel names out of bounds with ERR_INVALID_ARGUMENT', () => {
    for (const name of ['', 'x'.repeat(65), 'é'.repeat(33)]) {
      assert.throws(
        () => encodeControlMessage({ type: 'gossip', channel: name, payload: new Uint8Array() }),
        (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT',
      );
    }
  });

  it('cuts long goodbye reasons on a character boundary', () => {
    const msg = decodeControlMessage(encodeControlMessage({ type: 'goodbye', reason: '😀'.repeat(1000) }));
    assert.equal(msg.type, 'goodbye');
    assert.equal(msg.type === 'goodbye' && msg.reason, '😀'.repeat(256));
  });

  it('hands out payloads as views of the frame (no copy)', () => {
    const frame = encodeControlMessage({ type: 'gossip', channel: 'c', payload: new Uint8Array([1, 2, 3]) });
    const msg = decodeControlMessage(frame);
    assert.equal(msg.type === 'gossip' && msg.payload.buffer, frame.buffer);
  });
});
