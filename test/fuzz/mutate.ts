/**
 * Input generators for the fuzz targets: raw random bytes, and valid encodings (made by the real
 * encoders) with a few edits applied, so that cases get past the first length and magic checks and
 * reach the deeper branches of a parser. Every generator has a byte bound.
 */
import fc from 'fast-check';

/** Values a length or count field likes to be wrong with. */
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** One edit of a byte string; positions are taken modulo the current length. */
type Edit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; bytes: Uint8Array }
  | { kind: 'number'; at: number; value: number; width: 1 | 2 | 4; littleEndian: boolean };

const position = fc.nat({ max: 0xffff });

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), at: position, value: fc.nat({ max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: position, count: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: position }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('number' as const),
      at: position,
      value: fc.constantFrom(...INTERESTING),
      width: fc.constantFrom(1 as const, 2 as const, 4 as const),
      littleEndian: fc.boolean(),
    }),
  },
);

function applyEdit(bytes: Uint8Array, edit: Edit): Uint8Array {
  const n = bytes.length;
  switch (edit.kind) {
    case 'flip': {
      if (n === 0) return bytes;
      const out = Uint8Array.from(bytes);
      out[edit.at % n]! ^= 1 << edit.bit;
      return out;
    }
    case 'set': {
      if (n === 0) return bytes;
      const out = Uint8Array.from(bytes);
      out[edit.at % n] = edit.value;
      return out;
    }
    case 'insert': {
      const at = edit.at % (n + 1);
      return concat(bytes.subarray(0, at), edit.bytes, bytes.subarray(at));
    }
    case 'delete': {
      if (n === 0) return bytes;
      const at = edit.at % n;
      return concat(bytes.subarray(0, at), bytes.subarray(at + edit.count));
    }
    case 'truncate':
      return bytes.subarray(0, edit.at % (n + 1));
    case 'extend':
      return concat(bytes, edit.bytes);
    case 'number': {
      if (n < edit.width) return bytes;
      const out = Buffer.from(bytes);
      const at = edit.at % (n - edit.width + 1);
      const v = edit.value & (edit.width === 4 ? 0xffffffff : (1 << (8 * edit.width)) - 1);
      if (edit.width === 1) out.writeUInt8(v & 0xff, at);
      else if (edit.width === 2 && edit.littleEndian) out.writeUInt16LE(v, at);
      else if (edit.width === 2) out.writeUInt16BE(v, at);
      else if (edit.littleEndian) out.writeUInt32LE(v >>> 0, at);
      else out.writeUInt32BE(v >>> 0, at);
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    }
    default: {
      const never: never = edit;
      return never;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A sample with 0..maxEdits edits applied, cut to maxBytes. */
export function mutationsOf(samples: readonly Uint8Array[], maxBytes: number, maxEdits = 6): fc.Arbitrary<Uint8Array> {
  if (samples.length === 0) throw new Error('mutationsOf needs at least one sample');
  return fc.tuple(fc.constantFrom(...samples), fc.array(editArb, { maxLength: maxEdits })).map(([sample, edits]) => {
    let bytes: Uint8Array = sample;
    for (const edit of edits) bytes = applyEdit(bytes, edit);
    return bytes.length > maxBytes ? bytes.subarray(0, maxBytes) : bytes;
  });
}

/** Raw random bytes and mutated samples, half and half. */
export function hostileBytes(samples: readonly Uint8Array[], maxBytes: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(fc.uint8Array({ maxLength: maxBytes }), mutationsOf(samples, maxBytes));
}

/** Hostile bytes as a Buffer (the type most decoders take). */
export function hostileBuffer(samples: readonly Uint8Array[], maxBytes: number): fc.Arbitrary<Buffer> {
  return hostileBytes(samples, maxBytes).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Text: random strings (any code point), and mutated sample texts decoded as UTF-8 (which adds U+FFFD). */
export function hostileText(samples: readonly string[], maxChars: number): fc.Arbitrary<string> {
  const bytes = samples.map((s) => Buffer.from(s, 'utf8'));
  return fc.oneof(
    fc.string({ maxLength: maxChars, unit: 'binary' }),
    fc.string({ maxLength: maxChars }),
    mutationsOf(bytes, maxChars * 2).map((b) => Buffer.from(b).toString('utf8').slice(0, maxChars)),
  );
}

/** Strings a field of a config or request likes to hold, valid and nearly valid. */
export const PLAUSIBLE_STRINGS = [
  '',
  ' ',
  'web',
  'loom',
  'eth0',
  'a'.repeat(64),
  'e'.repeat(65),
  'abc123',
  '10.32.0.1',
  '10.32.0.0/12',
  '10.32.1.0/24',
  '10.32.0.5/12',
  '0.0.0.0/0',
  '256.1.1.1',
  '10.32.0.1/33',
  '::1',
  '127.0.0.1:6784',
  '[::1]:6783',
  'host:99999',
  '02:00:00:00:00:01',
  'ff:ff:ff:ff:ff:ff',
  '/run/netns/x',
  '../../etc/passwd',
  '1.0.0',
  '0.4.0',
  '9.9.9',
  'web.loom.local',
  'x'.repeat(300),
  '\u0000',
  'é',
  '-1',
  '1e400',
];

/** JSON-ish values biased towards what validators look at. */
export function plausibleValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom<unknown>(...PLAUSIBLE_STRINGS) },
    { weight: 2, arbitrary: fc.constantFrom<unknown>(0, 1, -1, 0.5, 65535, 65536, 2 ** 32, Number.MAX_SAFE_INTEGER, true, false, null, [], {}) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom<unknown>(...PLAUSIBLE_STRINGS), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
}

/** An object with some of `keys` (and sometimes a stranger) set to plausible values. */
export function objectWithKeys(keys: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  const keyArb = keys.length > 0 ? fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }) : fc.string({ maxLength: 8 });
  return fc.array(fc.tuple(keyArb, plausibleValue()), { maxLength: keys.length + 2 }).map((pairs) => {
    const out: Record<string, unknown> = {};
    // defineProperty: a key "__proto__" becomes an own property, as JSON.parse makes it.
    for (const [k, v] of pairs) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    return out;
  });
}
