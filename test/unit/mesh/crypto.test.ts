import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isLoomError } from '../../../src/core/errors.js';
import {
  AEAD_TAG_BYTES,
  FrameOpener,
  FrameSealer,
  deriveDirectionalKeys,
  generateEphemeralKeyPair,
  passwordSalt,
  x25519SharedSecret,
} from '../../../src/mesh/crypto.js';

describe('mesh crypto', () => {
  it('X25519 gives both sides the same 32-byte secret', () => {
    const a = generateEphemeralKeyPair();
    const b = generateEphemeralKeyPair();
    assert.equal(a.publicKey.length, 32);
    const ab = x25519SharedSecret(a.privateKey, b.publicKey);
    assert.ok(ab.equals(x25519SharedSecret(b.privateKey, a.publicKey)));
    assert.equal(ab.length, 32);
  });

  it('rejects wrong-size and low-order public keys with ERR_PROTOCOL', () => {
    const a = generateEphemeralKeyPair();
    assert.throws(() => x25519SharedSecret(a.privateKey, new Uint8Array(31)), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
    // The all-zero point has order 1: the shared secret would be all zeros.
    assert.throws(() => x25519SharedSecret(a.privateKey, new Uint8Array(32)), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
  });

  it('derives different keys for different passwords, infos and directions', () => {
    const shared = randomBytes(32);
    const info = Buffer.from('loom v1 test');
    const none = deriveDirectionalKeys(shared, undefined, info);
    const one = deriveDirectionalKeys(shared, 'one', info);
    const two = deriveDirectionalKeys(shared, 'two', info);
    const otherInfo = deriveDirectionalKeys(shared, 'one', Buffer.from('other'));
    const all = [none.first, none.second, one.first, one.second, two.first, two.second, otherInfo.first].map((k) => k.toString('hex'));
    assert.equal(new Set(all).size, all.length);
    assert.ok(deriveDirectionalKeys(shared, 'one', info).first.equals(one.first), 'deterministic');
    assert.equal(passwordSalt(undefined).length, 0);
    assert.equal(passwordSalt('').length, 32, 'an empty password is still a password');
  });

  it('seals and opens frames in order; the nonce advances per frame', () => {
    const key = randomBytes(32);
    const sealer = new FrameSealer(key);
    const opener = new FrameOpener(key);
    const m1 = sealer.seal(Buffer.from('hello'), 4);
    const m2 = sealer.seal(Buffer.from('hello'), 4);
    assert.equal(m1.length, 4 + 5 + AEAD_TAG_BYTES);
    assert.ok(!m1.subarray(4).equals(m2.subarray(4)), 'same plaintext, different ciphertext');
    assert.equal(opener.open(m1.subarray(4)).toString(), 'hello');
    assert.equal(opener.open(m2.subarray(4)).toString(), 'hello');
  });

  it('fails ERR_AUTH_FAILED on a wrong key, a flipped bit, or a replayed frame', () => {
    const key = randomBytes(32);
    const sealed = new FrameSealer(key).seal(Buffer.from('data'));
    assert.throws(() => new FrameOpener(randomBytes(32)).open(sealed), (e: unknown) => isLoomError(e, 'ERR_AUTH_FAILED'));
    const flipped = Buffer.from(sealed);
    flipped[0]! ^= 1;
    assert.throws(() => new FrameOpener(key).open(flipped), (e: unknown) => isLoomError(e, 'ERR_AUTH_FAILED'));
    const opener = new FrameOpener(key);
    opener.open(sealed);
    assert.throws(() => opener.open(sealed), (e: unknown) => isLoomError(e, 'ERR_AUTH_FAILED'));
    assert.throws(() => opener.open(new Uint8Array(5)), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
  });

  it('refuses to reuse a nonce when the 64-bit counter is exhausted', () => {
    const key = randomBytes(32);
    const sealer = new FrameSealer(key, 0xffff_ffff_ffff_fffen);
    const opener = new FrameOpener(key, 0xffff_ffff_ffff_fffen);
    assert.equal(opener.open(sealer.seal(Buffer.from('last'))).toString(), 'last');
    assert.throws(() => sealer.seal(Buffer.from('one more')), (e: unknown) => isLoomError(e, 'ERR_PROTOCOL'));
  });

  it('carries the counter across the 32-bit boundary', () => {
    const key = randomBytes(32);
    const sealer = new FrameSealer(key, 0xffff_ffffn);
    const opener = new FrameOpener(key, 0xffff_ffffn);
    for (let i = 0; i < 3; i++) assert.equal(opener.open(sealer.seal(Buffer.from([i])))[0], i);
    assert.throws(() => new FrameOpener(key, 0x1_0000_0000n).open(new FrameSealer(key, 0xffff_ffffn).seal(Buffer.from('x'))), (e: unknown) =>
      isLoomError(e, 'ERR_AUTH_FAILED'),
    );
  });
});
