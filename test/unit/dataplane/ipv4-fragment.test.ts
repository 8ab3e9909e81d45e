/**
 * Ipv4Fragmenter: fragments reassembled here (RFC 791, independently of src/) give back the
 * original packet, with a requested L4 checksum completed; header rules (MF, offsets, options,
 * checksums); refusals, truncations and hostile bytes (fast-check).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ipv4Fragmenter } from '../../../src/dataplane/relay/ipv4-fragment.js';
import { IP_AT, NEEDS_CSUM, VNET, completed, concat, get16, ipv4Frame, onesSum, payloadOf, pseudoSum, tcpFrame } from '../../helpers/frames.js';

interface Fragment {
  frame: Uint8Array;
  ipHeader: number;
  offset: number;
  mf: boolean;
  df: boolean;
  id: number;
  data: Uint8Array;
}

function fragment(frame: Uint8Array, maxIp: number): Fragment[] {
  const fragmenter = new Ipv4Fragmenter();
  const count = fragmenter.load(frame, maxIp);
  assert.ok(count >= 1, `fragmentable (got ${count})`);
  const out: Fragment[] = [];
  for (let i = 0; i < count; i++) {
    const buffer = new Uint8Array(fragmenter.segmentBytes(i) + 3);
    const bytes = fragmenter.write(i, buffer, 3);
    assert.equal(bytes, buffer.length - 3);
    const f = buffer.subarray(3);
    const ipHeader = (f[IP_AT]! & 15) * 4;
    const total = get16(f, IP_AT + 2);
    assert.equal(total, f.length - IP_AT, 'total length');
    assert.ok(total <= maxIp, 'fits the path');
    assert.equal(onesSum(f, IP_AT, IP_AT + ipHeader), 0xffff, 'header checksum');
    const flags = get16(f, IP_AT + 6);
    out.push({ frame: f, ipHeader, offset: (flags & 0x1fff) * 8, mf: (flags & 0x2000) !== 0, df: (flags & 0x4000) !== 0, id: get16(f, IP_AT + 4), data: f.slice(IP_AT + ipHeader) });
  }
  return out;
}

/** RFC 791 reassembly of fragments of one datagram, in any order; throws on holes or overlaps. */
function reassemble(fragments: Fragment[]): { header: Uint8Array; payload: Uint8Array; lastMf: boolean; firstOffset: number } {
  const sorted = [...fragments].sort((a, b) => a.offset - b.offset);
  const first = sorted[0]!;
  let expected = first.offset;
  for (const [i, f] of sorted.entries()) {
    assert.equal(f.offset, expected, 'no hole, no overlap');
    assert.equal(f.id, first.id);
    assert.equal(f.df, false);
    if (i < sorted.length - 1) {
      assert.equal(f.mf, true, 'MF on all but the last');
      assert.equal(f.data.length % 8, 0, 'data a multiple of 8 except in the last');
    }
    expected += f.data.length;
  }
  return { header: first.frame.slice(0, IP_AT + first.ipHeader), payload: concat(sorted.map((f) => f.data)), lastMf: sorted[sorted.length - 1]!.mf, firstOffset: first.offset };
}

/** Reassembles and compares with the original: same header fields, same payload (checksum completed), zero virtio-net headers. */
function roundTrip(frame: Uint8Array, maxIp: number): Fragment[] {
  const fragments = fragment(frame, maxIp);
  for (const f of fragments) assert.ok(f.frame.subarray(0, VNET).every((b) => b === 0), 'no offload on a fragment');
  const { header, payload } = reassemble(fragments);
  const wire = completed(frame);
  const ipHeader = (frame[IP_AT]! & 15) * 4;
  const original = wire.subarray(IP_AT + ipHeader, IP_AT + get16(frame, IP_AT + 2));
  assert.deepEqual(payload, original);
  // The first header is the original's but for total length, flags/offset and checksum.
  const mask = (h: Uint8Array): number[] => [...h.subarray(VNET)].filter((_, i) => ![16, 17, 20, 21, 24, 25].includes(i));
  assert.deepEqual(mask(header), mask(frame.subarray(0, IP_AT + ipHeader)));
  return fragments;
}

const UDP_CHECKSUM_AT = IP_AT + 20 + 6;

function udpChecksumValid(payloadWithHeader: Uint8Array, frame: Uint8Array): boolean {
  return onesSum(payloadWithHeader, 0, payloadWithHeader.length, pseudoSum(frame, payloadWithHeader.length)) === 0xffff;
}

describe('Ipv4Fragmenter', () => {
  it('cuts a 4 KB UDP datagram into 1480 + 1480 + 1048 data bytes that reassemble to it', () => {
    const frame = ipv4Frame({ payload: payloadOf(4000) });
    const fragments = roundTrip(frame, 1500);
    assert.deepEqual(
      fragments.map((f) => [f.offset, f.data.length, f.mf]),
      [
        [0, 1480, true],
        [1480, 1480, true],
        [2960, 1048, false],
      ],
    );
  });

  it('completes a NEEDS_CSUM checksum before fragmenting', () => {
    const frame = ipv4Frame({ payload: payloadOf(3000, 9), checksum: 'partial' });
    assert.equal(frame[0], NEEDS_CSUM);
    const fragments = roundTrip(frame, 1000);
    const { payload } = reassemble(fragments);
    assert.ok(udpChecksumValid(payload, fragments[0]!.frame));
  });

  it('sends a completed checksum of 0 as 0xffff', () => {
    const frame = ipv4Frame({ payload: payloadOf(2000), checksum: 'partial' });
    // Choose the last payload word so the sum over the UDP part folds to 0xffff (checksum 0).
    frame[frame.length - 2] = 0;
    frame[frame.length - 1] = 0;
    const sum = onesSum(frame, IP_AT + 20, frame.length);
    const word = 0xffff - sum;
    frame[frame.length - 2] = word >> 8;
    frame[frame.length - 1] = word & 0xff;
    assert.equal(onesSum(frame, IP_AT + 20, frame.length), 0xffff);
    const fragments = fragment(frame, 1000);
    assert.equal(get16(fragments[0]!.frame, UDP_CHECKSUM_AT), 0xffff);
    assert.ok(udpChecksumValid(reassemble(fragments).payload, fragments[0]!.frame));
  });

  it('fragments any protocol, TCP included when it cannot be segmented', () => {
    roundTrip(ipv4Frame({ protocol: 1, payload: payloadOf(5000) }), 576);
    roundTrip(tcpFrame({ df: false, flags: 0x02, payload: payloadOf(3000), checksum: 'full' }), 1280);
  });

  it('keeps every option in the first fragment and only copied ones after it (NOPs in place of the rest)', () => {
    // Record route (7, not copied), 11 bytes; a copied option (0x94 router alert), 4 bytes; EOL.
    const recordRoute = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    const frame = ipv4Frame({ payload: payloadOf(3000), ipOptions: [...recordRoute, 0x94, 4, 0, 0, 0] });
    const fragments = roundTrip(frame, 1000);
    assert.equal(fragments[0]!.ipHeader, 36);
    assert.deepEqual([...fragments[0]!.frame.subarray(IP_AT + 20, IP_AT + 36)], [...recordRoute, 0x94, 4, 0, 0, 0]);
    for (const later of fragments.slice(1)) {
      assert.equal(later.ipHeader, 36);
      assert.deepEqual([...later.frame.subarray(IP_AT + 20, IP_AT + 36)], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0x94, 4, 0, 0, 0]);
    }
  });

  it('cuts a fragment further: offsets continue from its own and the last piece keeps its MF', () => {
    for (const mf of [true, false]) {
      const frame = ipv4Frame({ protocol: 50, payload: payloadOf(2400), fragmentOffset: 100, mf });
      const fragments = fragment(frame, 1000);
      const result = reassemble(fragments);
      assert.equal(result.firstOffset, 800);
      assert.equal(result.lastMf, mf);
      assert.deepEqual(result.payload, frame.subarray(IP_AT + 20));
    }
  });

  it('returns 1 for a packet that fits, and write(0) copies it unchanged', () => {
    const frame = ipv4Frame({ payload: payloadOf(1000), checksum: 'partial' });
    const fragmenter = new Ipv4Fragmenter();
    assert.equal(fragmenter.load(frame, 1500), 1);
    const out = new Uint8Array(frame.length);
    assert.equal(fragmenter.write(0, out, 0), frame.length);
    assert.deepEqual(out, frame);
  });

  it('refuses what it must not or cannot fragment', () => {
    const big = { payload: payloadOf(3000) };
    const gso = tcpFrame({ df: false, payload: payloadOf(3000), gso: { size: 1000 } });
    const badChecksum = ipv4Frame(big);
    badChecksum[IP_AT + 11]! ^= 1;
    const badOption = ipv4Frame({ ...big, ipOptions: [7, 40, 0, 0] });
    const truncatedOption = ipv4Frame({ ...big, ipOptions: [1, 1, 1, 7] });
    const partialFragment = ipv4Frame({ ...big, checksum: 'partial', mf: true });
    const outsideCsum = ipv4Frame({ ...big, checksum: 'partial' });
    outsideCsum[6] = 20; // csum_start inside the IP header
    const pastOffset = ipv4Frame({ ...big, fragmentOffset: 8000 });
    const cases: Array<[string, Uint8Array, number]> = [
      ['DF set', ipv4Frame({ ...big, df: true }), 1500],
      ['a GSO frame', gso, 1500],
      ['IPv6', tcpFrame({ v6: true, payload: payloadOf(3000) }), 1500],
      ['a bad header checksum', badChecksum, 1500],
      ['an option longer than the header', badOption, 1500],
      ['an option cut by the header end', truncatedOption, 1500],
      ['NEEDS_CSUM on a fragment', partialFragment, 1500],
      ['csum_start in the IP header', outsideCsum, 1500],
      ['offsets past 65,535', pastOffset, 1500],
      ['room for 7 data bytes', ipv4Frame(big), 27],
      ['maxIpBytes 0', ipv4Frame(big), 0],
      ['maxIpBytes NaN', ipv4Frame(big), Number.NaN],
    ];
    for (const [name, frame, maxIp] of cases) assert.equal(new Ipv4Fragmenter().load(frame, maxIp), -1, name);
    assert.equal(new Ipv4Fragmenter().load(ipv4Frame(big), 28), Math.ceil(3008 / 8));
  });

  it('returns -1 for every truncation of a valid frame', () => {
    const fragmenter = new Ipv4Fragmenter();
    for (const frame of [ipv4Frame({ payload: payloadOf(1500) }), ipv4Frame({ payload: payloadOf(1500), checksum: 'partial', ipOptions: [0x94, 4, 0, 0] })]) {
      for (let length = 0; length < frame.length; length++) assert.equal(fragmenter.load(frame.subarray(0, length), 600), -1, `length ${length}`);
      assert.equal(fragmenter.load(frame, 600), 3);
    }
  });

  it('answers -1 to a fragment index it does not have or a buffer too small', () => {
    const fragmenter = new Ipv4Fragmenter();
    assert.equal(fragmenter.write(0, new Uint8Array(2000), 0), -1);
    assert.equal(fragmenter.load(ipv4Frame({ payload: payloadOf(3000) }), 1500), 3);
    assert.equal(fragmenter.segmentBytes(3), -1);
    assert.equal(fragmenter.write(0, new Uint8Array(100), 0), -1);
  });

  it('reassembles to the original for random sizes, paths, options and checksum styles (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 68, max: 9000 }),
        fc.constantFrom<number[]>([], [0x94, 4, 0, 0], [7, 7, 4, 0, 0, 0, 0, 1, 0x82, 4, 1, 2]),
        fc.constantFrom(17, 1, 6, 132),
        fc.boolean(),
        (bytes, maxIp, ipOptions, protocol, partial) => {
          const frame = ipv4Frame({ payload: payloadOf(bytes, maxIp), ipOptions, protocol, checksum: partial && protocol === 17 ? 'partial' : 'full' });
          const headerBytes = 20 + ipOptions.length;
          if (frame.length - IP_AT > maxIp && maxIp - headerBytes < 8) {
            assert.equal(new Ipv4Fragmenter().load(frame, maxIp), -1);
            return;
          }
          if (frame.length - IP_AT <= maxIp) {
            assert.equal(new Ipv4Fragmenter().load(frame, maxIp), 1);
            return;
          }
          roundTrip(frame, maxIp);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('never throws on random bytes or mutated frames (property)', () => {
    const fragmenter = new Ipv4Fragmenter();
    const out = new Uint8Array(70_000);
    const exercise = (frame: Uint8Array, maxIp: number): void => {
      const count = fragmenter.load(frame, maxIp);
      for (let i = 0; i < count; i++) assert.equal(fragmenter.write(i, out, 0), fragmenter.segmentBytes(i));
    };
    const valid = ipv4Frame({ payload: payloadOf(3000), checksum: 'partial', ipOptions: [7, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0] });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: -5, max: 70_000 }), (bytes, maxIp) => {
        exercise(bytes, maxIp);
        exercise(concat([valid.subarray(0, IP_AT + 1), bytes]), maxIp);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 3000 }), (mutations, maxIp) => {
        const mutated = valid.slice();
        for (const [at, value] of mutations) mutated[at % 60] = value;
        exercise(mutated, maxIp);
      }),
      { numRuns: 300 },
    );
  });
});
