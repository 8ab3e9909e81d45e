import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { openPacket, sealBody } from '../../../src/dataplane/relay/seal.js';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import { randomPeerName } from '../../../src/core/ids.js';
import {
  decodeBatchBody,
  encodeBatchBody,
  MAX_BATCH_BYTES,
  decodeRelayPacket,
  deriveDataKeys,
  encodeRelayPacket,
  parseUdpAddress,
  relayContainerMtu,
  REPLAY_WINDOW_BITS,
  ReplayVerdict,
  ReplayWindow,
  RELAY_HEADER_BYTES,
  RELAY_TAG_BYTES,
  type RelayHeader,
} from '../../../src/dataplane/relay/index.js';

const a = randomPeerName();
const b = randomPeerName();
const c = randomPeerName();

function pairKeys() {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  return { ab: deriveDataKeys({ send: k1, receive: k2 }), ba: deriveDataKeys({ send: k2, receive: k1 }) };
}

function header(over: Partial<RelayHeader> = {}): RelayHeader {
  return { type: 'data', sealed: false, ttl: 16, source: a, destination: c, hop: b, counter: 0, ...over };
}

describe('relay codec', () => {
  it('round-trips a plain packet', () => {
    const body = Buffer.from('0800000000000100' + 'ff'.repeat(20), 'hex');
    const h = header({ counter: 2 ** 40 + 7 });
    const wire = encodeRelayPacket(h, body, null);
    assert.equal(wire.length, RELAY_HEADER_BYTES + body.length);
    const back = decodeRelayPacket(wire, null);
    assert.deepEqual(back.header, h);
    assert.deepEqual(back.body, body);
  });

  it('round-trips a sealed packet, hides the body and rejects tampering anywhere', () => {
    const { ab, ba } = pairKeys();
    const marker = Buffer.from('PLAINTEXT-MARKER-0123456789');
    const body = Buffer.concat([Buffer.alloc(8), marker]);
    const h = header({ sealed: true, counter: 99, type: 'data' });
    const wire = encodeRelayPacket(h, body, ab.send);
    assert.equal(wire.length, RELAY_HEADER_BYTES + body.length + RELAY_TAG_BYTES);
    assert.equal(wire.indexOf(marker), -1);
    const back = decodeRelayPacket(wire, ba.receive);
    assert.deepEqual(back.header, h);
    assert.deepEqual(back.body, body);
    // The header is AAD: flipping the ttl or counter breaks the tag; so does any body bit.
    for (const at of [3, 25, RELAY_HEADER_BYTES + 1, wire.length - 1]) {
      const bad = Buffer.from(wire);
      bad[at]! ^= 0x01;
      assert.throws(() => decodeRelayPacket(bad, ba.receive), (e) => isLoomError(e, 'ERR_AUTH_FAILED') || isLoomError(e, 'ERR_PROTOCOL'));
    }
    // Our own send key is not the key the neighbour seals with.
    assert.throws(() => decodeRelayPacket(wire, ab.receive), (e) => isLoomError(e, 'ERR_AUTH_FAILED'));
  });

  it('derives direction keys that pair up and differ from the session keys', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const ab = deriveDataKeys({ send: k1, receive: k2 });
    const ba = deriveDataKeys({ send: k2, receive: k1 });
    assert.deepEqual(ab.send, ba.receive);
    assert.equal(ab.send.length, 32);
    assert.notDeepEqual(ab.send, ab.receive);
    assert.notDeepEqual(ab.send, k1);
  });

  it('seals exactly as node:crypto ChaCha20-Poly1305 does, and opens what node:crypto sealed', () => {
    const key = randomBytes(32);
    const h = header({ sealed: true, counter: 0x1_0000_0007, type: 'frame' });
    const headerBytes = encodeRelayPacket({ ...h, sealed: false }, Buffer.alloc(0), null);
    headerBytes[2] = 1; // the sealed flag, as the AAD carries it
    const body = randomBytes(1400);
    const [ciphertext, tag] = sealBody(key, headerBytes, body);
    const nonce = Buffer.concat([Buffer.alloc(4), headerBytes.subarray(22, 30)]);
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    cipher.setAAD(headerBytes, { plaintextLength: body.length });
    const theirs = cipher.update(body);
    cipher.final();
    assert.deepEqual(ciphertext, theirs);
    assert.deepEqual(tag, cipher.getAuthTag());
    const packet = Buffer.concat([headerBytes, theirs, tag]);
    assert.deepEqual(openPacket(key, packet, packet.length), body);
    packet[40] = packet[40]! ^ 1;
    assert.equal(openPacket(key, packet, packet.length), null);
  });

  it('rejects malformed headers with ERR_PROTOCOL', () => {
    const good = encodeRelayPacket(header(), Buffer.alloc(22), null);
    const cases: Array<[string, Buffer]> = [
      ['short', good.subarray(0, RELAY_HEADER_BYTES - 1)],
      ['version', Buffer.concat([Buffer.from([2]), good.subarray(1)])],
      ['type', Buffer.from(good).fill(9, 1, 2)],
      ['flags', Buffer.from(good).fill(0x80, 2, 3)],
      ['counter over 2^53', Buffer.from(good).fill(0xff, 22, 23)],
      ['probe body under 8 bytes', encodeRelayPacket(header({ type: 'probe' }), Buffer.alloc(7), null)],
      ['probe reply body size', encodeRelayPacket(header({ type: 'probeReply' }), Buffer.alloc(9), null)],
      ['data body under a VXLAN header', encodeRelayPacket(header(), Buffer.alloc(7), null)],
    ];
    for (const [name, bytes] of cases) {
      assert.throws(() => decodeRelayPacket(bytes, null), (e) => isLoomError(e, 'ERR_PROTOCOL'), name);
    }
  });

  it('never throws anything but a LoomError on random bytes', () => {
    const { ba } = pairKeys();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, withKey) => {
        try {
          decodeRelayPacket(bytes, withKey ? ba.receive : null);
        } catch (e) {
          assert.ok(isLoomError(e, 'ERR_PROTOCOL') || isLoomError(e, 'ERR_AUTH_FAILED'), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('relay batch body', () => {
  const frame = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

  it('round-trips frames in order, as u16 length records, sealed as one packet', () => {
    const frames = [frame(22, 1), frame(1426, 2), frame(60, 3)];
    const body = encodeBatchBody(frames);
    assert.equal(body.length, 3 * 2 + 22 + 1426 + 60);
    assert.equal(body.readUInt16BE(0), 22);
    assert.deepEqual(decodeBatchBody(body), frames);
    const { ab, ba } = pairKeys();
    const h = header({ type: 'dataBatch', sealed: true, counter: 5 });
    const back = decodeRelayPacket(encodeRelayPacket(h, body, ab.send), ba.receive);
    assert.equal(back.header.type, 'dataBatch');
    assert.deepEqual(decodeBatchBody(back.body), frames);
  });

  it('rejects records that do not fill the body exactly, or carry impossible frames', () => {
    const good = encodeBatchBody([frame(30, 1), frame(40, 2)]);
    const cases: Array<[string, Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['truncated frame', good.subarray(0, good.length - 1)],
      ['trailing byte', Buffer.concat([good, Buffer.from([0])])],
      ['dangling length', Buffer.concat([good, Buffer.from([0, 30])])],
      ['frame under a VXLAN + Ethernet header', encodeBatchBody([frame(22, 0)]).fill(21, 1, 2)],
    ];
    for (const [name, bytes] of cases) assert.throws(() => decodeBatchBody(bytes), (e) => isLoomError(e, 'ERR_PROTOCOL'), name);
    assert.throws(() => decodeBatchBody(encodeBatchBody([frame(100, 0)]), 99), (e) => isLoomError(e, 'ERR_PROTOCOL'), 'over the frame bound');
    assert.throws(() => encodeBatchBody([]), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => encodeBatchBody([frame(21, 0)]), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    // A batch header with a body too short for one record is malformed at the header already.
    assert.throws(() => decodeRelayPacket(encodeRelayPacket(header({ type: 'dataBatch' }), Buffer.alloc(9), null), null), (e) => isLoomError(e, 'ERR_PROTOCOL'));
    assert.ok(MAX_BATCH_BYTES >= 16_384);
  });

  it('splits random bytes into frames that re-encode to the same bytes, or refuses them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        let frames: Buffer[];
        try {
          frames = decodeBatchBody(bytes);
        } catch (e) {
          assert.ok(isLoomError(e, 'ERR_PROTOCOL'), String(e));
          return;
        }
        assert.deepEqual(encodeBatchBody(frames), Buffer.from(bytes));
      }),
      { numRuns: 3000 },
    );
    // Random bytes almost never form a batch; make sure valid ones are decoded too.
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 22, maxLength: 200 }), { minLength: 1, maxLength: 20 }), (frames) => {
        assert.deepEqual(decodeBatchBody(encodeBatchBody(frames)).map((f) => Buffer.from(f)), frames.map((f) => Buffer.from(f)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('replay window', () => {
  it('accepts each counter once, in any order, and refuses counters left of the window', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 6000 }), { maxLength: 400 }), (counters) => {
        const w = new ReplayWindow();
        const seen = new Set<number>();
        let top = -1;
        for (const n of counters) {
          const verdict = w.check(n);
          const expected = n > top ? ReplayVerdict.fresh : top - n >= REPLAY_WINDOW_BITS ? ReplayVerdict.tooOld : seen.has(n) ? ReplayVerdict.replayed : ReplayVerdict.fresh;
          assert.equal(verdict, expected, `counter ${n} top ${top}`);
          if (verdict === ReplayVerdict.fresh) {
            w.accept(n);
            seen.add(n);
            top = Math.max(top, n);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('handles counters near 2^53 and big jumps', () => {
    const w = new ReplayWindow();
    const big = Number.MAX_SAFE_INTEGER - 5;
    w.accept(3);
    w.accept(big);
    assert.equal(w.check(big), ReplayVerdict.replayed);
    assert.equal(w.check(3), ReplayVerdict.tooOld);
    assert.equal(w.check(big - 1), ReplayVerdict.fresh);
    w.accept(big - 1);
    assert.equal(w.check(big - 1), ReplayVerdict.replayed);
  });
});

describe('relay helpers', () => {
  it('computes the container MTU for the relay path', () => {
    assert.equal(relayContainerMtu(1500, true), 1404);
    assert.equal(relayContainerMtu(1500, false), 1420);
  });

  it('parses data addresses and rejects bad ones with ERR_INVALID_ARGUMENT', () => {
    assert.deepEqual(parseUdpAddress('10.0.0.1:6783'), { ip: '10.0.0.1', port: 6783 });
    for (const bad of ['10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', 'host:1', '[::1]:1', ':1', 5, null, '1.2.3.4:1x']) {
      assert.throws(() => parseUdpAddress(bad), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), String(bad));
    }
  });
});
