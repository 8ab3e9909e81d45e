/**
 * TAP frames (10-byte virtio-net header + Ethernet + IPv4/IPv6 + TCP or UDP) built and read back
 * byte by byte for the segmentation, coalescing and fragmentation tests. Written independently of
 * src/ (its own checksum code), so the tests do not check the code against itself.
 */
import fc from 'fast-check';

export const VNET = 10;
export const ETH = 14;
export const IP_AT = VNET + ETH;
export const NEEDS_CSUM = 0x01;
export const DATA_VALID = 0x02;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_ECN = 0x80;
export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

/** TCP options as Linux sends them on data: NOP NOP timestamps (12 bytes). */
export const TIMESTAMP_OPTIONS = [1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
/** SYN-style options: MSS, SACK-permitted, timestamps, NOP, window scale (20 bytes). */
export const SYN_OPTIONS = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

export interface TcpFrameSpec {
  v6?: boolean;
  dstMac?: number[];
  srcMac?: number[];
  src?: number[];
  dst?: number[];
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  /** TCP option bytes, padded with zeros (EOL) to a multiple of 4. */
  options?: number[];
  payload: Uint8Array;
  ipId?: number;
  tos?: number;
  ttl?: number;
  flowLabel?: number;
  df?: boolean;
  /** IPv4 option bytes, padded with zeros to a multiple of 4. */
  ipOptions?: number[];
  /** 'partial': NEEDS_CSUM with the pseudo-header sum (what a kernel sends); 'full': checksum complete, no flags. */
  checksum?: 'partial' | 'full';
  /** GSO type and size; none when absent. */
  gso?: { size: number; ecn?: boolean };
  /** Extra vnet flags to OR in (e.g. DATA_VALID). */
  vnetFlags?: number;
}

export const MAC_A = [0x02, 0xaa, 0, 0, 0, 1];
export const MAC_B = [0x02, 0xbb, 0, 0, 0, 2];
export const IPV4_A = [10, 32, 0, 1];
export const IPV4_B = [10, 32, 0, 2];
export const IPV6_A = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
export const IPV6_B = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

function pad4(bytes: number[]): number[] {
  const out = [...bytes];
  while (out.length % 4 !== 0) out.push(0);
  return out;
}

/** Ones-complement sum of 16-bit words, folded (not complemented). */
export function onesSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += bytes[i]! * 256 + (i + 1 < end ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = Math.floor(sum / 65536) + (sum % 65536);
  return sum;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, Math.floor(v / 65536) % 65536);
  put16(b, at + 2, v % 65536);
}

export function get16(b: Uint8Array, at: number): number {
  return b[at]! * 256 + b[at + 1]!;
}

export function get32(b: Uint8Array, at: number): number {
  return get16(b, at) * 65536 + get16(b, at + 2);
}

export function le16(b: Uint8Array, at: number): number {
  return b[at]! + b[at + 1]! * 256;
}

/** A TAP frame carrying one TCP segment or TSO super-frame. */
export function tcpFrame(spec: TcpFrameSpec): Uint8Array {
  const v6 = spec.v6 ?? false;
  const ipOptions = pad4(v6 ? [] : (spec.ipOptions ?? []));
  const ipHeader = v6 ? 40 : 20 + ipOptions.length;
  const options = pad4(spec.options ?? []);
  const tcpHeader = 20 + options.length;
  const ipBytes = ipHeader + tcpHeader + spec.payload.length;
  const frame = new Uint8Array(IP_AT + ipBytes);
  frame.set(spec.dstMac ?? MAC_B, VNET);
  frame.set(spec.srcMac ?? MAC_A, VNET + 6);
  put16(frame, VNET + 12, v6 ? 0x86dd : 0x0800);
  const ip = IP_AT;
  const src = spec.src ?? (v6 ? IPV6_A : IPV4_A);
  const dst = spec.dst ?? (v6 ? IPV6_B : IPV4_B);
  if (v6) {
    const tc = spec.tos ?? 0;
    const label = spec.flowLabel ?? 0;
    put32(frame, ip, 0x60000000 + tc * 0x100000 + label);
    put16(frame, ip + 4, ipBytes - 40);
    frame[ip + 6] = 6;
    frame[ip + 7] = spec.ttl ?? 64;
    frame.set(src, ip + 8);
    frame.set(dst, ip + 24);
  } else {
    frame[ip] = 0x40 + ipHeader / 4;
    frame[ip + 1] = spec.tos ?? 0;
    put16(frame, ip + 2, ipBytes);
    put16(frame, ip + 4, spec.ipId ?? 0x1234);
    frame[ip + 6] = (spec.df ?? true) ? 0x40 : 0;
    frame[ip + 8] = spec.ttl ?? 64;
    frame[ip + 9] = 6;
    frame.set(src, ip + 12);
    frame.set(dst, ip + 16);
    frame.set(ipOptions, ip + 20);
    put16(frame, ip + 10, ~onesSum(frame, ip, ip + ipHeader) & 0xffff);
  }
  const tcp = ip + ipHeader;
  put16(frame, tcp, spec.srcPort ?? 40000);
  put16(frame, tcp + 2, spec.dstPort ?? 5201);
  put32(frame, tcp + 4, spec.seq ?? 1000);
  put32(frame, tcp + 8, spec.ack ?? 7777);
  frame[tcp + 12] = (tcpHeader / 4) << 4;
  frame[tcp + 13] = spec.flags ?? ACK;
  put16(frame, tcp + 14, spec.window ?? 502);
  frame.set(options, tcp + 20);
  frame.set(spec.payload, tcp + tcpHeader);
  const pseudo = pseudoSum(frame, tcpHeader + spec.payload.length);
  const checksum = spec.checksum ?? 'partial';
  if (checksum === 'partial') {
    put16(frame, tcp + 16, pseudo);
    frame[0] = NEEDS_CSUM;
    frame[6] = (ETH + ipHeader) & 0xff;
    frame[7] = (ETH + ipHeader) >> 8;
    frame[8] = 16;
  } else {
    put16(frame, tcp + 16, ~onesSum(frame, tcp, frame.length, pseudo) & 0xffff);
  }
  frame[0] = frame[0]! | (spec.vnetFlags ?? 0);
  if (spec.gso) {
    frame[1] = (v6 ? GSO_TCPV6 : GSO_TCPV4) | (spec.gso.ecn ? GSO_ECN : 0);
    frame[2] = (ETH + ipHeader + tcpHeader) & 0xff;
    frame[3] = (ETH + ipHeader + tcpHeader) >> 8;
    frame[4] = spec.gso.size & 0xff;
    frame[5] = spec.gso.size >> 8;
  }
  return frame;
}

/** The folded pseudo-header sum of the frame's addresses, protocol and L4 length (read from the frame). */
export function pseudoSum(frame: Uint8Array, l4Bytes: number): number {
  const v6 = get16(frame, VNET + 12) === 0x86dd;
  const ip = IP_AT;
  const proto = v6 ? frame[ip + 6]! : frame[ip + 9]!;
  const addresses = v6 ? onesSum(frame, ip + 8, ip + 40) : onesSum(frame, ip + 12, ip + 20);
  return onesSum(new Uint8Array([0, proto, l4Bytes >> 8, l4Bytes & 0xff]), 0, 4, addresses);
}

/** A UDP-over-IPv4 TAP frame (or another protocol's bytes after the IP header). */
export function ipv4Frame(spec: {
  payload: Uint8Array;
  protocol?: number;
  df?: boolean;
  mf?: boolean;
  fragmentOffset?: number;
  ipId?: number;
  ipOptions?: number[];
  /** UDP only: 'partial' (NEEDS_CSUM) or 'full'. */
  checksum?: 'partial' | 'full';
  srcPort?: number;
  dstPort?: number;
}): Uint8Array {
  const protocol = spec.protocol ?? 17;
  const ipOptions = pad4(spec.ipOptions ?? []);
  const ipHeader = 20 + ipOptions.length;
  const l4Header = protocol === 17 ? 8 : 0;
  const ipBytes = ipHeader + l4Header + spec.payload.length;
  const frame = new Uint8Array(IP_AT + ipBytes);
  frame.set(MAC_B, VNET);
  frame.set(MAC_A, VNET + 6);
  put16(frame, VNET + 12, 0x0800);
  const ip = IP_AT;
  frame[ip] = 0x40 + ipHeader / 4;
  put16(frame, ip + 2, ipBytes);
  put16(frame, ip + 4, spec.ipId ?? 0xbeef);
  put16(frame, ip + 6, (spec.df ? 0x4000 : 0) + (spec.mf ? 0x2000 : 0) + (spec.fragmentOffset ?? 0));
  frame[ip + 8] = 64;
  frame[ip + 9] = protocol;
  frame.set(IPV4_A, ip + 12);
  frame.set(IPV4_B, ip + 16);
  frame.set(ipOptions, ip + 20);
  put16(frame, ip + 10, ~onesSum(frame, ip, ip + ipHeader) & 0xffff);
  const l4 = ip + ipHeader;
  if (protocol === 17) {
    put16(frame, l4, spec.srcPort ?? 5353);
    put16(frame, l4 + 2, spec.dstPort ?? 4789);
    put16(frame, l4 + 4, 8 + spec.payload.length);
  }
  frame.set(spec.payload, l4 + l4Header);
  if (protocol === 17) {
    const pseudo = pseudoSum(frame, 8 + spec.payload.length);
    if ((spec.checksum ?? 'full') === 'partial') {
      put16(frame, l4 + 6, pseudo);
      frame[0] = NEEDS_CSUM;
      frame[6] = ETH + ipHeader;
      frame[8] = 6;
    } else {
      const c = ~onesSum(frame, l4, frame.length, pseudo) & 0xffff;
      put16(frame, l4 + 6, c === 0 ? 0xffff : c);
    }
  }
  return frame;
}

/**
 * The frame as the kernel would put it on the wire: a NEEDS_CSUM checksum completed (sum from
 * csum_start to the end of the IP packet, complemented) and the virtio-net header zeroed. A copy.
 */
export function completed(frame: Uint8Array): Uint8Array {
  const out = frame.slice();
  if ((frame[0]! & NEEDS_CSUM) !== 0) {
    const start = VNET + le16(frame, 6);
    const field = start + le16(frame, 8);
    const end = IP_AT + ipPacketBytes(frame);
    const sum = ~onesSum(out, start, end) & 0xffff;
    put16(out, field, sum);
  }
  out.fill(0, 0, VNET);
  return out;
}

export function ipPacketBytes(frame: Uint8Array): number {
  return get16(frame, VNET + 12) === 0x86dd ? 40 + get16(frame, IP_AT + 4) : get16(frame, IP_AT + 2);
}

export interface TcpView {
  v6: boolean;
  ipHeader: number;
  tcpHeader: number;
  payload: Uint8Array;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  srcPort: number;
  dstPort: number;
  options: Uint8Array;
  macs: Uint8Array;
  addresses: Uint8Array;
  ipId: number;
  /** The IP fields the coalescer compares: TOS/TTL/flags (v4) or the first word and hop limit (v6). */
  ipFixed: number[];
  vnetFlags: number;
  gsoType: number;
  gsoSize: number;
  hdrLen: number;
  csumStart: number;
  csumOffset: number;
}

/** Reads a well-formed TCP TAP frame (throws on anything else: for tests only). */
export function readTcp(frame: Uint8Array): TcpView {
  const v6 = get16(frame, VNET + 12) === 0x86dd;
  const ipHeader = v6 ? 40 : (frame[IP_AT]! & 15) * 4;
  const tcp = IP_AT + ipHeader;
  const tcpHeader = (frame[tcp + 12]! >> 4) * 4;
  const end = IP_AT + ipPacketBytes(frame);
  if (end > frame.length) throw new Error('truncated frame');
  return {
    v6,
    ipHeader,
    tcpHeader,
    payload: frame.slice(tcp + tcpHeader, end),
    seq: get32(frame, tcp + 4),
    ack: get32(frame, tcp + 8),
    flags: frame[tcp + 13]!,
    window: get16(frame, tcp + 14),
    srcPort: get16(frame, tcp),
    dstPort: get16(frame, tcp + 2),
    options: frame.slice(tcp + 20, tcp + tcpHeader),
    macs: frame.slice(VNET, VNET + 12),
    addresses: v6 ? frame.slice(IP_AT + 8, IP_AT + 40) : frame.slice(IP_AT + 12, IP_AT + 20),
    ipId: v6 ? 0 : get16(frame, IP_AT + 4),
    ipFixed: v6 ? [...frame.slice(IP_AT, IP_AT + 4), frame[IP_AT + 7]!] : [frame[IP_AT + 1]!, frame[IP_AT + 6]!, frame[IP_AT + 8]!],
    vnetFlags: frame[0]!,
    gsoType: frame[1]!,
    hdrLen: le16(frame, 2),
    gsoSize: le16(frame, 4),
    csumStart: le16(frame, 6),
    csumOffset: le16(frame, 8),
  };
}

/** Whether the frame's IPv4 header checksum (if IPv4) and full TCP checksum verify. */
export function checksumsValid(frame: Uint8Array): boolean {
  const v = readTcp(frame);
  if (!v.v6 && onesSum(frame, IP_AT, IP_AT + v.ipHeader) !== 0xffff) return false;
  const tcp = IP_AT + v.ipHeader;
  const end = IP_AT + ipPacketBytes(frame);
  return onesSum(frame, tcp, end, pseudoSum(frame, end - tcp)) === 0xffff;
}

/** Deterministic payload bytes: a counting pattern offset by `seed`. */
export function payloadOf(bytes: number, seed = 0): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Random valid TCP TAP frames: either version, TCP options, flags, GSO or plain, checksum styles;
 * IPv4 options unless `ipOptions` is false; payloads up to `maxPayloadBytes` (24,000).
 */
export function arbitraryTcpFrame(init: { flags?: number[]; ipOptions?: boolean; maxPayloadBytes?: number } = {}): fc.Arbitrary<Uint8Array> {
  const flags = init.flags ?? [ACK, ACK | PSH, ACK | FIN, ACK | CWR, ACK | ECE | PSH];
  const ipOptions = (init.ipOptions ?? true) ? [[], [0x94, 4, 0, 0], [1, 0x83, 7, 4, 0, 0, 0, 0]] : [[]];
  return fc
    .record({
      v6: fc.boolean(),
      options: fc.constantFrom([], TIMESTAMP_OPTIONS, SYN_OPTIONS, [1, 1, 1]),
      ipOptions: fc.constantFrom(...ipOptions),
      flags: fc.constantFrom(...flags),
      payloadBytes: fc.integer({ min: 0, max: init.maxPayloadBytes ?? 24_000 }),
      mss: fc.integer({ min: 1, max: 9000 }),
      gso: fc.boolean(),
      full: fc.boolean(),
      seq: fc.nat({ max: 2 ** 32 - 1 }),
      ipId: fc.nat({ max: 0xffff }),
      seed: fc.nat({ max: 255 }),
    })
    .map((r) => {
      const gso = r.gso && r.payloadBytes > 0;
      return tcpFrame({
        v6: r.v6,
        options: r.options,
        ipOptions: r.ipOptions,
        flags: r.flags,
        payload: payloadOf(r.payloadBytes, r.seed),
        seq: r.seq,
        ipId: r.ipId,
        checksum: gso || !r.full ? 'partial' : 'full',
        ...(gso ? { gso: { size: Math.max(r.mss, 8), ecn: (r.flags & CWR) !== 0 } } : {}),
      });
    });
}
