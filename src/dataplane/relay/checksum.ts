/**
 * The internet checksum (RFC 1071) in the pieces the packet code needs: an unfolded running sum
 * that callers can extend (pseudo-header, then header, then payload), folding, and the complement
 * that goes in a checksum field.
 *
 * Sums are plain JS numbers, unfolded: words added without carrying, exact up to 2^53, so far
 * beyond any IP packet (65,535 bytes add at most 2^46). Pure and never throws; allocates only a
 * DataView when a long range comes from another ArrayBuffer than the last one.
 */

/** Ranges at least this long are summed 32 bits at a time through a DataView. */
const WIDE_SUM_BYTES = 64;
/** One DataView over the last buffer summed: frames of a batch share their receive buffer. */
let viewedBuffer: ArrayBufferLike | null = null;
let view: DataView | null = null;

/**
 * `sum` plus the big-endian 16-bit words of bytes[offset..offset+length), an odd last byte padded
 * with zero. Unfolded. Words are counted from `offset`: a range that starts at an odd offset within
 * a packet must not be joined to a sum of the bytes before it. Long ranges add 32-bit words (the
 * same sum modulo 0xffff, so the same once folded), about twice as fast as byte pairs.
 */
export function sumWords(bytes: Uint8Array, offset: number, length: number, sum: number): number {
  const end = offset + length;
  let i = offset;
  if (length >= WIDE_SUM_BYTES && offset >= 0 && end <= bytes.length) {
    if (bytes.buffer !== viewedBuffer || view === null) {
      viewedBuffer = bytes.buffer;
      view = new DataView(bytes.buffer);
    }
    const words = view;
    const base = bytes.byteOffset;
    for (; i + 15 < end; i += 16) {
      sum += words.getUint32(base + i) + words.getUint32(base + i + 4) + words.getUint32(base + i + 8) + words.getUint32(base + i + 12);
    }
  }
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

/** An unfolded sum folded to 16 bits with end-around carries (not complemented). */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * RFC 1071 checksum of bytes[offset..offset+length): the value to store in a zeroed checksum
 * field, or 0 when the range, checksum field included, verifies.
 */
export function internetChecksum(bytes: Uint8Array, offset: number, length: number): number {
  return ~foldSum(sumWords(bytes, offset, length, 0)) & 0xffff;
}

/**
 * Unfolded sum of the TCP/UDP pseudo-header: the source and destination addresses, which sit next
 * to each other at bytes[addressOffset..addressOffset+2*addressBytes) in both IPv4 (4-byte
 * addresses at 12) and IPv6 (16-byte addresses at 8), then the protocol and the L4 length.
 *
 * Folded, this is what Linux leaves in the checksum field of a CHECKSUM_PARTIAL packet (and what a
 * virtio-net header with NEEDS_CSUM expects there): the device adds the L4 header and payload and
 * stores the complement.
 */
export function pseudoHeaderSum(bytes: Uint8Array, addressOffset: number, addressBytes: number, protocol: number, l4Length: number): number {
  return sumWords(bytes, addressOffset, 2 * addressBytes, protocol + (l4Length & 0xffff) + Math.floor(l4Length / 0x10000));
}

/**
 * Writes an IPv4 header's total length and then its header checksum (over `headerBytes` from
 * `ip`): the last step of every header the relay rewrites (segments, fragments, coalesced frames).
 */
export function finishIpv4Header(bytes: Uint8Array, ip: number, headerBytes: number, totalLength: number): void {
  bytes[ip + 2] = totalLength >>> 8;
  bytes[ip + 3] = totalLength & 0xff;
  bytes[ip + 10] = 0;
  bytes[ip + 11] = 0;
  const check = internetChecksum(bytes, ip, headerBytes);
  bytes[ip + 10] = check >>> 8;
  bytes[ip + 11] = check & 0xff;
}
