import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import { randomPeerName, randomPeerUid } from '../../../src/core/ids.js';
import { generateEphemeralKeyPair } from '../../../src/mesh/crypto.js';
import {
  checkFlags,
  compareIdentities,
  createHello,
  decodeHello,
  deriveSessionKeys,
  encodeHello,
  negotiateVersion,
  FLAG_PASSWORD,
} from '../../../src/mesh/handshake.js';
import type { PeerIdentity } from '../../../src/mesh/types.js';

function identity(nickname = 'host'): PeerIdentity {
  return { name: randomPeerName(), uid: randomPeerUid(), nickname };
}

function hello(id: PeerIdentity, passwordSet = false) {
  const keyPair = generateEphemeralKeyPair();
  const h = createHello({ identity: id, minVersion: 1, maxVersion: 2, passwordSet, listenPort: 6783, keyPair });
  return { hello: h, encoded: encodeHello(h), keyPair };
}

describe('handshake hello', () => {
  it('round-trips, with a UTF-8 nickname', () => {
    const { hello: h, encoded } = hello(identity('höst-ñ'), true);
    assert.deepEqual(decodeHello(encoded), h);
    assert.equal(encoded.subarray(0, 4).toString(), 'LOOM');
    assert.equal(encoded.length, 24 + Buffer.byteLength('höst-ñ') + 48);
  });

  it('ignores extension bytes after the random bytes', () => {
    const { hello: h, encoded } = hello(identity());
    assert.deepEqual(decodeHello(Buffer.concat([encoded, Buffer.from('future')])), h);
  });

  it('rejects every truncation and a bad magic with ERR_PROTOCOL', () => {
    const { encoded } = hello(identity('n'));
    for (let n = 0; n < encoded.length; n++) {
      assert.throws(() => decodeHello(encoded.subarray(0, n)), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'), `length ${n}`);
    }
    const bad = Buffer.from(encoded);
    bad[0] = 0x4d;
    assert.throws(() => decodeHello(bad), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
  });

  it('never throws anything but ERR_PROTOCOL on random bytes after the magic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
        try {
          decodeHello(Buffer.concat([Buffer.from('LOOM'), tail]));
        } catch (err) {
          assert.ok(isLoomError(err, 'ERR_PROTOCOL'), String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses nicknames over 64 bytes', () => {
    assert.throws(() => hello(identity('x'.repeat(65))), (e: unknown) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  });
});

describe('version negotiation and flags', () => {
  it('picks the highest common version or names both ranges', () => {
    assert.equal(negotiateVersion({ minVersion: 1, maxVersion: 3 }, { minVersion: 2, maxVersion: 5 }), 3);
    assert.equal(negotiateVersion({ minVersion: 1, maxVersion: 1 }, { minVersion: 1, maxVersion: 1 }), 1);
    assert.throws(
      () => negotiateVersion({ minVersion: 1, maxVersion: 1 }, { minVersion: 2, maxVersion: 4 }),
      (e: unknown) => isLoomError(e, 'ERR_VERSION_MISMATCH') && /1\.\.1/.test(e.message) && /2\.\.4/.test(e.message),
    );
  });

  it('requires both or neither side to have a password', () => {
    checkFlags(0, 0);
    checkFlags(FLAG_PASSWORD, FLAG_PASSWORD);
    assert.throws(() => checkFlags(FLAG_PASSWORD, 0), (e: unknown) => isLoomError(e, 'ERR_AUTH_FAILED') && /peer has no password/.test(e.message));
    assert.throws(() => checkFlags(0, FLAG_PASSWORD), (e: unknown) => isLoomError(e, 'ERR_AUTH_FAILED') && /we have none/.test(e.message));
  });
});

describe('session keys', () => {
  it('give each side the other side\'s send key as its receive key', () => {
    const a = hello(identity('a'));
    const b = hello(identity('b'));
    const ka = deriveSessionKeys({ ours: a.hello, oursEncoded: a.encoded, theirs: b.hello, theirsEncoded: b.encoded, keyPair: a.keyPair, password: 'pw' });
    const kb = deriveSessionKeys({ ours: b.hello, oursEncoded: b.encoded, theirs: a.hello, theirsEncoded: a.encoded, keyPair: b.keyPair, password: 'pw' });
    assert.deepEqual(ka.send, kb.receive);
    assert.deepEqual(ka.receive, kb.send);
    assert.notDeepEqual(ka.send, ka.receive);
  });

  it('differ when a hello was tampered with in transit', () => {
    const a = hello(identity('a'));
    const b = hello(identity('b'));
    const tampered = Buffer.from(b.encoded);
    tampered[tampered.length - 1]! ^= 1;
    const ka = deriveSessionKeys({ ours: a.hello, oursEncoded: a.encoded, theirs: b.hello, theirsEncoded: tampered, keyPair: a.keyPair, password: undefined });
    const kb = deriveSessionKeys({ ours: b.hello, oursEncoded: b.encoded, theirs: a.hello, theirsEncoded: a.encoded, keyPair: b.keyPair, password: undefined });
    assert.notDeepEqual(ka.send, kb.receive);
  });

  it('orders identities by name bytes, then uid; equal only for ourselves', () => {
    const id = identity();
    assert.equal(compareIdentities(id, { ...id }), 0);
    const lowName = { ...id, name: '00:00:00:00:00:01' as PeerIdentity['name'] };
    const highName = { ...id, name: 'ff:00:00:00:00:00' as PeerIdentity['name'] };
    assert.ok(compareIdentities(lowName, highName) < 0);
    assert.ok(compareIdentities({ ...id, uid: '0000000000000001' as PeerIdentity['uid'] }, { ...id, uid: '0100000000000000' as PeerIdentity['uid'] }) < 0);
    const self = hello(id);
    const again = hello(id);
    assert.throws(
      () => deriveSessionKeys({ ours: self.hello, oursEncoded: self.encoded, theirs: again.hello, theirsEncoded: again.encoded, keyPair: self.keyPair, password: undefined }),
      (e: unknown) => isLoomError(e, 'ERR_SELF_CONNECTION'),
    );
  });
});
