import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import { FrameDecoder, encodeFrame } from '../../../src/mesh/framing.js';

function drain(decoder: FrameDecoder): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = decoder.next(); f !== null; f = decoder.next()) out.push(f);
  return out;
}

describe('framing', () => {
  it('writes a 4-byte big-endian length before the body', () => {
    assert.deepEqual([...encodeFrame(new Uint8Array([9, 8, 7]))], [0, 0, 0, 3, 9, 8, 7]);
  });

  it('cuts the same frames out of any split of the byte stream', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }), (bodies, cuts) => {
        const wire = Buffer.concat(bodies.map((b) => encodeFrame(b)));
        const decoder = new FrameDecoder(1024);
        const got: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < wire.length; i++) {
          const n = cuts[i % cuts.length]!;
          decoder.push(wire.subarray(at, at + n));
          at += n;
          got.push(...drain(decoder));
        }
        assert.deepEqual(got.map((b) => Buffer.from(b).toString('hex')), bodies.map((b) => Buffer.from(b).toString('hex')));
        assert.equal(decoder.bufferedBytes, 0);
      }),
    );
  });

  it('returns a view, not a copy, when a frame lies within one chunk', () => {
    const chunk = Buffer.concat([encodeFrame(new Uint8Array([1, 2])), encodeFrame(new Uint8Array([3]))]);
    const decoder = new FrameDecoder();
    decoder.push(chunk);
    const [first, second] = drain(decoder);
    assert.equal(first?.buffer, chunk.buffer);
    assert.equal(second?.buffer, chunk.buffer);
  });

  it('throws ERR_FRAME_TOO_LARGE from the header alone, before the body arrives', () => {
    const decoder = new FrameDecoder(100);
    decoder.push(new Uint8Array([0, 0, 0, 101]));
    assert.throws(() => decoder.next(), (e: unknown) => isLoomError(e, 'ERR_FRAME_TOO_LARGE'));
    const exact = new FrameDecoder(100);
    exact.push(new Uint8Array([0, 0, 0, 100]));
    assert.equal(exact.next(), null);
    assert.equal(exact.bufferedBytes, 0);
  });

  it('handles a zero-length frame', () => {
    const decoder = new FrameDecoder();
    decoder.push(new Uint8Array([0, 0, 0, 0]));
    assert.deepEqual(drain(decoder).map((f) => f.length), [0]);
  });

  it('reassembles a 4 MiB frame pushed in 64 KiB chunks in linear time', () => {
    const body = Buffer.alloc(4 * 1024 * 1024, 0xab);
    const wire = encodeFrame(body);
    const decoder = new FrameDecoder();
    const started = performance.now();
    let frames: Uint8Array[] = [];
    for (let at = 0; at < wire.length; at += 65536) {
      decoder.push(wire.subarray(at, at + 65536));
      frames = frames.concat(drain(decoder));
    }
    assert.equal(frames.length, 1);
    assert.ok(Buffer.from(frames[0]!).equals(body));
    // Quadratic concatenation would copy ~128 MiB here; linear is ~4 MiB. Generous bound for CI.
    assert.ok(performance.now() - started < 500, `took ${performance.now() - started} ms`);
  });
});
