import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LoomError } from '../../../src/core/errors.js';
import { parseCidr } from '../../../src/ipam/cidr.js';
import { Ring } from '../../../src/ipam/ring.js';
import { decodeRing, encodeRing } from '../../../src/ipam/ring-codec.js';
import { decodeIpamMessage, encodeIpamMessage } from '../../../src/ipam/messages.js';
import { peerName } from './harness.js';

const VALID = (() => {
  const r = Ring.initial(parseCidr('10.32.0.0/12'), [1, 2, 3].map(peerName));
  r.setStats(peerName(1), 100, 3);
  return encodeRing(r);
})();

/** Decoding either yields a ring that re-encodes to the same bytes, or throws ERR_PROTOCOL. */
function decodesCleanlyOrProtocolError(bytes: Uint8Array): void {
  try {
    const r = decodeRing(bytes);
    assert.deepEqual(encodeRing(r), bytes);
  } catch (err) {
    assert.ok(err instanceof LoomError, `not a LoomError: ${String(err)}`);
    assert.equal(err.code, 'ERR_PROTOCOL');
  }
}

test('random bytes are ERR_PROTOCOL, never a crash', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), decodesCleanlyOrProtocolError), { numRuns: 2000 });
});

test('mutated and truncated valid rings are either valid or ERR_PROTOCOL', () => {
  fc.assert(
    fc.property(fc.nat(VALID.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(VALID.length), (pos, value, cut) => {
      const m = VALID.slice();
      m[pos] = value;
      decodesCleanlyOrProtocolError(m);
      decodesCleanlyOrProtocolError(VALID.subarray(0, cut));
    }),
    { numRuns: 2000 },
  );
});

test('specific malformations are rejected', () => {
  const bad = (mutate: (b: Uint8Array) => Uint8Array): void =>
    assert.throws(() => decodeRing(mutate(VALID.slice())), (e) => e instanceof LoomError && e.code === 'ERR_PROTOCOL');
  bad((b) => ((b[0] = 0), b)); // magic
  bad((b) => ((b[2] = 9), b)); // format version
  bad((b) => ((b[7] = 33), b)); // prefix
  bad((b) => b.subarray(0, b.length - 1)); // truncated
  bad((b) => {
    const c = new Uint8Array(b.length + 1);
    c.set(b);
    return c;
  }); // trailing byte
  // second token (entry 1) set below the first
  bad((b) => {
    const entries = 10 + 3 * 6 + 4;
    new DataView(b.buffer).setUint32(entries + 14, 0);
    return b;
  });
});

test('ipam messages round-trip and reject bad bytes with ERR_PROTOCOL', () => {
  for (const m of [
    { type: 'donate-request', subnet: null },
    { type: 'donate-none', subnet: parseCidr('10.32.1.0/24') },
  ] as const) {
    assert.deepEqual(decodeIpamMessage(encodeIpamMessage(m)), m);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
      try {
        decodeIpamMessage(bytes);
      } catch (err) {
        assert.ok(err instanceof LoomError && err.code === 'ERR_PROTOCOL');
      }
    }),
  );
});
