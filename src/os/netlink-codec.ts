/**
 * rtnetlink message encoding and decoding (pure, no sockets): the framing (nlmsghdr, attributes,
 * NLMSG_ERROR), and the vxlan local-bypass messages. Link, address and route messages for attach
 * are in rtnl-codec.ts, on these primitives.
 * Host byte order is little-endian on every platform Loom supports (x86_64, arm64).
 * Every parser bounds-checks lengths: malformed bytes raise ERR_PROTOCOL, never a RangeError.
 */
import { LoomError } from '../core/errors.js';

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

export const IFLA_IFNAME = 3;
export const IFLA_LINKINFO = 18;
export const IFLA_EXT_MASK = 29;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
/** After IFLA_VXLAN_VNIFILTER (30); kernel >= 6.6. */
export const IFLA_VXLAN_LOCALBYPASS = 31;

export const IFINFOMSG_LEN = 16;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One netlink attribute, padded to 4 bytes. */
export function encodeAttr(type: number, payload: Uint8Array): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  out.set(payload, 4);
  return out;
}

export function encodeNested(type: number, children: readonly Uint8Array[]): Buffer {
  return encodeAttr(type | NLA_F_NESTED, Buffer.concat(children));
}

export function encodeString(type: number, value: string): Buffer {
  return encodeAttr(type, Buffer.from(`${value}\0`, 'utf8'));
}

/** struct ifinfomsg { u8 family; u8 pad; u16 type; i32 index; u32 flags; u32 change; } */
export function encodeIfinfomsg(ifindex: number, flags = 0, change = 0, family = 0): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

/** nlmsghdr + body; pid 0 (the kernel fills in ours). */
export function encodeMessage(type: number, flags: number, seq: number, body: Uint8Array): Buffer {
  const hdr = Buffer.alloc(NLMSG_HDRLEN);
  hdr.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
  hdr.writeUInt16LE(type, 4);
  hdr.writeUInt16LE(flags, 6);
  hdr.writeUInt32LE(seq, 8);
  return Buffer.concat([hdr, body]);
}

/** RTM_NEWLINK (changelink) setting IFLA_VXLAN_LOCALBYPASS on an existing vxlan device. */
export function encodeSetVxlanLocalBypass(ifindex: number, enabled: boolean, seq: number): Buffer {
  const data = encodeNested(IFLA_INFO_DATA, [encodeAttr(IFLA_VXLAN_LOCALBYPASS, Uint8Array.of(enabled ? 1 : 0))]);
  const linkinfo = encodeNested(IFLA_LINKINFO, [encodeString(IFLA_INFO_KIND, 'vxlan'), data]);
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, Buffer.concat([encodeIfinfomsg(ifindex), linkinfo]));
}

/** RTM_GETLINK for one interface by index; the answer is one RTM_NEWLINK message. */
export function encodeGetLink(ifindex: number, seq: number): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST, seq, encodeIfinfomsg(ifindex));
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** A view into the received buffer (not a copy): valid until that buffer is reused. */
  payload: Buffer;
}

/** Splits a datagram into netlink messages. */
export function decodeMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new LoomError('ERR_PROTOCOL', 'netlink: message length out of bounds', { detail: { len, off, total: buf.length } });
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), payload: buf.subarray(off + NLMSG_HDRLEN, off + len) });
    off += align4(len);
  }
  if (off < buf.length) throw new LoomError('ERR_PROTOCOL', 'netlink: trailing bytes after last message');
  return out;
}

/** The errno of an NLMSG_ERROR payload as a positive number; 0 means ACK. */
export function decodeError(payload: Buffer): number {
  if (payload.length < 4) throw new LoomError('ERR_PROTOCOL', 'netlink: short NLMSG_ERROR');
  return -payload.readInt32LE(0);
}

/** Attributes by type (nested flag stripped); later duplicates win. Values are views. */
export function decodeAttrs(buf: Buffer): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) throw new LoomError('ERR_PROTOCOL', 'netlink: attribute length out of bounds', { detail: { len, off, total: buf.length } });
    attrs.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return attrs;
}

/**
 * From an RTM_NEWLINK payload: the vxlan local-bypass flag, or null when the kernel does not report
 * it (kernel < 6.6, or not a vxlan device).
 */
export function decodeVxlanLocalBypass(payload: Buffer): boolean | null {
  if (payload.length < IFINFOMSG_LEN) throw new LoomError('ERR_PROTOCOL', 'netlink: short ifinfomsg');
  const linkinfo = decodeAttrs(payload.subarray(IFINFOMSG_LEN)).get(IFLA_LINKINFO);
  if (!linkinfo) return null;
  const info = decodeAttrs(linkinfo);
  const kind = info.get(IFLA_INFO_KIND);
  if (!kind || kind.toString('utf8').replace(/\0+$/, '') !== 'vxlan') return null;
  const data = info.get(IFLA_INFO_DATA);
  if (!data) return null;
  const bypass = decodeAttrs(data).get(IFLA_VXLAN_LOCALBYPASS);
  if (!bypass || bypass.length < 1) return null;
  return bypass[0] !== 0;
}
