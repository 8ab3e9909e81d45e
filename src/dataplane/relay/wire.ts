/**
 * The relay's wire format (RelayPacket), drawn in docs/DATAPLANE.md. All integers big-endian.
 *
 *   0 version | 1 type | 2 flags | 3 ttl | 4..10 source | 10..16 destination | 16..22 hop | 22..30 counter
 *   then the body, then a 16-byte tag when sealed. Body by type: data = one VXLAN datagram;
 *   data batch = records `u16 length | VXLAN datagram`, at least one, filling the body exactly;
 *   probe / probe reply = 8 bytes; frame = one TAP frame (10-byte virtio-net header + Ethernet
 *   frame, up to a 64 KB TSO super-frame); frame batch = records `u16 length | TAP frame`.
 *
 * `source`/`destination` are the peers at the two ends; `hop` is the neighbour that sent this
 * datagram, whose session key seals it (each hop re-seals). `counter` is per (hop, direction),
 * never repeats under one key and is the AEAD nonce. The whole header is the AEAD's AAD.
 */
import { LoomError } from '../../core/errors.js';
import { peerNameFromBytes, type PeerName } from '../../core/ids.js';

export const RELAY_VERSION = 1;
export const RELAY_HEADER_BYTES = 30;
export const RELAY_TAG_BYTES = 16;
export const VXLAN_HEADER_BYTES = 8;
export const ETHERNET_HEADER_BYTES = 14;
/** A probe body: u32 probe id, u32 flags (then, in a probe, zero padding up to the size probed). */
export const PROBE_BODY_BYTES = 8;
/** Hops a packet may take before it is dropped (protects against routing loops while routes settle). */
export const DEFAULT_TTL = 16;
/** Counters stay below 2^53 so they are exact JS numbers; nobody sends 2^53 packets on one key. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export const OFFSET = { version: 0, type: 1, flags: 2, ttl: 3, source: 4, destination: 10, hop: 16, counterHi: 22, counterLo: 26 } as const;

export const PacketType = { data: 1, probe: 2, probeReply: 3, dataBatch: 4, frame: 5, frameBatch: 6 } as const;
export type PacketTypeName = keyof typeof PacketType;
export const FLAG_SEALED = 0x01;
/** Each frame of a data batch is preceded by its length, u16. */
export const BATCH_LENGTH_BYTES = 2;
/** The smallest VXLAN datagram the relay carries: VXLAN header + Ethernet header. */
export const MIN_FRAME_BYTES = VXLAN_HEADER_BYTES + ETHERNET_HEADER_BYTES;
/**
 * Largest batch body a relay sends or accepts (a protocol bound, so relays configured differently
 * still understand each other). Over the underlay MTU the kernel fragments the datagram.
 */
export const MAX_BATCH_BYTES = 32_768;
/** The largest UDP payload over IPv4: no relay datagram is bigger. */
export const MAX_DATAGRAM_BYTES = 65_507;
/** The largest body of a sealed relay datagram (a TAP super-frame with its virtio-net header). */
export const MAX_BODY_BYTES = MAX_DATAGRAM_BYTES - RELAY_HEADER_BYTES - RELAY_TAG_BYTES;
/**
 * The virtio-net header in front of every TAP frame (struct virtio_net_hdr, little-endian):
 * flags u8 | gso_type u8 | hdr_len u16 | gso_size u16 | csum_start u16 | csum_offset u16.
 */
export const VNET_HEADER_BYTES = 10;
/** The smallest TAP frame the relay carries: virtio-net header + Ethernet header. */
export const MIN_TAP_FRAME_BYTES = VNET_HEADER_BYTES + ETHERNET_HEADER_BYTES;
export const VNET_F_NEEDS_CSUM = 0x01;
export const VNET_F_DATA_VALID = 0x02;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_ECN = 0x80;

/** Why the relay dropped a datagram. Every drop is counted under exactly one reason. */
export const DROP_REASONS = [
  'malformed', // short, unknown version/type, reserved bits set, counter out of range
  'oversized', // over maxPayloadBytes (from the kernel or from a neighbour)
  'unknown-peer', // the hop field names no neighbour of ours
  'non-peer-address', // sent from an address that belongs to no neighbour
  'forged-source', // from one neighbour's address while claiming another hop, or claiming to come from us
  'policy-mismatch', // sealed data while we run plain, or plain data while we encrypt
  'auth-failed', // tag does not verify: corrupted in transit or not sealed with the hop's session key
  'replayed', // counter already seen
  'too-old', // counter left of the replay window
  'no-route', // no next hop for the destination
  'ttl-expired',
  'send-failed', // the socket reported an error on send
  'bad-offload', // a TAP frame whose virtio-net header the kernel would refuse (flags, GSO type, offsets)
  'device-refused', // the local TAP device did not take a frame (or none is attached)
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** A 48-bit peer name (or MAC) as a number: a Map key without allocating a string per packet. */
export function peerKeyFromBytes(buf: Uint8Array, offset: number): number {
  return buf[offset]! * 2 ** 40 + buf[offset + 1]! * 2 ** 32 + ((buf[offset + 2]! << 24) >>> 0) + (buf[offset + 3]! << 16) + (buf[offset + 4]! << 8) + buf[offset + 5]!;
}

export function peerKeyOf(name: PeerName): number {
  return macKeyOf(name);
}

/** "aa:bb:cc:dd:ee:ff" (a MAC, or a peer name) as the number peerKeyFromBytes reads from its bytes. */
export function macKeyOf(mac: string): number {
  return parseInt(mac.replaceAll(':', ''), 16);
}

export interface RelayHeader {
  type: PacketTypeName;
  sealed: boolean;
  ttl: number;
  source: PeerName;
  destination: PeerName;
  hop: PeerName;
  counter: number;
}

/**
 * Checks the fixed header; returns the drop reason or null. Non-throwing, for the hot path.
 * Does not check the tag or the body's meaning.
 */
export function checkHeader(buf: Uint8Array, length: number): DropReason | null {
  if (length < RELAY_HEADER_BYTES) return 'malformed';
  if (buf[OFFSET.version] !== RELAY_VERSION) return 'malformed';
  const type = buf[OFFSET.type]!;
  if (type < PacketType.data || type > PacketType.frameBatch) return 'malformed';
  const flags = buf[OFFSET.flags]!;
  if ((flags & ~FLAG_SEALED) !== 0) return 'malformed';
  if (buf[OFFSET.counterHi]! > 0 || buf[OFFSET.counterHi + 1]! > 0x1f) return 'malformed';
  const sealed = (flags & FLAG_SEALED) !== 0;
  const body = length - RELAY_HEADER_BYTES - (sealed ? RELAY_TAG_BYTES : 0);
  if (body < 0) return 'malformed';
  if (type === PacketType.data) return body < VXLAN_HEADER_BYTES ? 'malformed' : null;
  if (type === PacketType.dataBatch) return body < BATCH_LENGTH_BYTES + VXLAN_HEADER_BYTES ? 'malformed' : null;
  if (type === PacketType.frame) return body < MIN_TAP_FRAME_BYTES ? 'malformed' : null;
  if (type === PacketType.frameBatch) return body < BATCH_LENGTH_BYTES + MIN_TAP_FRAME_BYTES ? 'malformed' : null;
  // A probe is padded to the size it tests (path MTU discovery); its answer is never padded.
  if (type === PacketType.probe) return body < PROBE_BODY_BYTES ? 'malformed' : null;
  return body !== PROBE_BODY_BYTES ? 'malformed' : null;
}

/** Whether a packet type carries containers' frames (one, or a batch). */
export function isDataType(type: number): boolean {
  return type === PacketType.data || type === PacketType.dataBatch || type === PacketType.frame || type === PacketType.frameBatch;
}

/** Whether a data type carries TAP frames (virtio-net header + Ethernet) rather than VXLAN datagrams. */
export function isTapType(type: number): boolean {
  return type === PacketType.frame || type === PacketType.frameBatch;
}

/**
 * Checks the virtio-net header of the TAP frame `buf[start..start+length)` as tun_get_user would:
 * known flags, a GSO type of none/TCPv4/TCPv6 (ECN bit allowed) with a non-zero gso_size, a
 * checksum request inside the frame. A GSO frame must be IPv4/IPv6 over Ethernet. Non-throwing;
 * the kernel checks again, this keeps a peer's garbage from reaching it at all.
 */
export function vnetHeaderOk(buf: Uint8Array, start: number, length: number): boolean {
  if (length < MIN_TAP_FRAME_BYTES) return false;
  const flags = buf[start]!;
  if ((flags & ~(VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0) return false;
  const gso = buf[start + 1]! & ~VNET_GSO_ECN;
  const frameBytes = length - VNET_HEADER_BYTES;
  if (flags & VNET_F_NEEDS_CSUM) {
    const csumStart = buf[start + 6]! | (buf[start + 7]! << 8);
    const csumOffset = buf[start + 8]! | (buf[start + 9]! << 8);
    if (csumStart < ETHERNET_HEADER_BYTES || csumStart + csumOffset + 2 > frameBytes) return false;
  }
  if (gso === VNET_GSO_NONE) return (buf[start + 1]! & VNET_GSO_ECN) === 0;
  if (gso !== VNET_GSO_TCPV4 && gso !== VNET_GSO_TCPV6) return false;
  const gsoSize = buf[start + 4]! | (buf[start + 5]! << 8);
  if (gsoSize === 0 || (flags & VNET_F_NEEDS_CSUM) === 0) return false;
  const etherType = (buf[start + VNET_HEADER_BYTES + 12]! << 8) | buf[start + VNET_HEADER_BYTES + 13]!;
  return gso === VNET_GSO_TCPV4 ? etherType === 0x0800 : etherType === 0x86dd;
}

/**
 * Counts the frames of a batch body `buf[start..end)`; -1 when the records do not fill it exactly
 * or a frame is shorter than MIN_FRAME_BYTES or longer than `maxFrameBytes`. Non-throwing, for the
 * hot path; it runs on authenticated bytes only, but a buggy or hostile peer is still bounded.
 */
export function countBatchFrames(buf: Uint8Array, start: number, end: number, maxFrameBytes: number, minFrameBytes = MIN_FRAME_BYTES): number {
  let at = start;
  let frames = 0;
  while (at < end) {
    if (at + BATCH_LENGTH_BYTES > end) return -1;
    const length = (buf[at]! << 8) | buf[at + 1]!;
    at += BATCH_LENGTH_BYTES;
    if (length < minFrameBytes || length > maxFrameBytes || at + length > end) return -1;
    at += length;
    frames++;
  }
  return frames > 0 ? frames : -1;
}

export function readCounter(buf: Buffer): number {
  return buf.readUInt32BE(OFFSET.counterHi) * 2 ** 32 + buf.readUInt32BE(OFFSET.counterLo);
}

/** Writes a header into `out[at..at+RELAY_HEADER_BYTES)`. `source`/`destination`/`hop` are 6-byte names. */
export function writeHeader(
  out: Buffer,
  type: number,
  sealed: boolean,
  ttl: number,
  source: Uint8Array,
  destination: Uint8Array,
  hop: Uint8Array,
  counter: number,
  at = 0,
): void {
  out[at + OFFSET.version] = RELAY_VERSION;
  out[at + OFFSET.type] = type;
  out[at + OFFSET.flags] = sealed ? FLAG_SEALED : 0;
  out[at + OFFSET.ttl] = ttl;
  out.set(source, at + OFFSET.source);
  out.set(destination, at + OFFSET.destination);
  out.set(hop, at + OFFSET.hop);
  out.writeUInt32BE(Math.floor(counter / 2 ** 32), at + OFFSET.counterHi);
  out.writeUInt32BE(counter >>> 0, at + OFFSET.counterLo);
}

const TYPE_NAMES: Record<number, PacketTypeName> = {
  [PacketType.data]: 'data',
  [PacketType.probe]: 'probe',
  [PacketType.probeReply]: 'probeReply',
  [PacketType.dataBatch]: 'dataBatch',
  [PacketType.frame]: 'frame',
  [PacketType.frameBatch]: 'frameBatch',
};

/** Parses a header from untrusted bytes; throws ERR_PROTOCOL. For tools and tests, not the hot path. */
export function decodeHeader(buf: Uint8Array): RelayHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const reason = checkHeader(b, b.length);
  if (reason) throw new LoomError('ERR_PROTOCOL', `bad relay packet: ${reason}`, { detail: { reason, length: b.length } });
  const type = TYPE_NAMES[b[OFFSET.type]!]!;
  return {
    type,
    sealed: (b[OFFSET.flags]! & FLAG_SEALED) !== 0,
    ttl: b[OFFSET.ttl]!,
    source: peerNameFromBytes(b.subarray(OFFSET.source, OFFSET.source + 6)),
    destination: peerNameFromBytes(b.subarray(OFFSET.destination, OFFSET.destination + 6)),
    hop: peerNameFromBytes(b.subarray(OFFSET.hop, OFFSET.hop + 6)),
    counter: readCounter(b),
  };
}

/**
 * Container MTU when frames may go through the relay: the VXLAN datagram plus our header and tag
 * must fit one underlay UDP datagram (1500 - 20 IP - 8 UDP - 30 header - 16 tag - 8 VXLAN - 14
 * Ethernet = 1404 sealed, 1420 plain). Larger frames still arrive, as IP fragments on the underlay.
 */
export function relayContainerMtu(underlayMtu: number, sealed: boolean): number {
  return underlayMtu - 20 - 8 - RELAY_HEADER_BYTES - (sealed ? RELAY_TAG_BYTES : 0) - VXLAN_HEADER_BYTES - ETHERNET_HEADER_BYTES;
}
