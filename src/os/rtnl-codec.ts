/**
 * rtnetlink link, address and route messages for plugging a namespace into the bridge (pure, no
 * sockets; framing in netlink-codec.ts). We keep our own codec: no npm netlink library is well kept,
 * and attach needs a dozen messages. Layouts follow <linux/rtnetlink.h>, <linux/if_link.h>,
 * <linux/if_addr.h>, <linux/veth.h> (constants checked against the headers of kernel 6.18).
 * Encoders validate their inputs (ERR_INVALID_ARGUMENT); decoders bound every length
 * (ERR_PROTOCOL) and return views or plain values, never keep the buffer.
 */
import { LoomError } from '../core/errors.js';
import { decodeAttrs, encodeAttr, encodeGetLink, encodeIfinfomsg, encodeMessage, encodeNested, encodeString, IFINFOMSG_LEN, IFLA_EXT_MASK, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO, NLM_F_ACK, NLM_F_REQUEST, RTM_GETLINK, RTM_NEWLINK } from './netlink-codec.js';

export const RTM_DELLINK = 17;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_GETROUTE = 26;

export const NLM_F_MULTI = 0x2;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_DUMP = 0x300;

export const AF_INET = 2;
export const IFF_UP = 0x1;

export const IFLA_ADDRESS = 1;
export const IFLA_MTU = 4;
export const IFLA_MASTER = 10;
export const IFLA_AF_SPEC = 26;
export const IFLA_NET_NS_FD = 28;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;
export const IFLA_BRPORT_STATE = 1;
export const VETH_INFO_PEER = 1;
export const IFLA_INET_CONF = 1;
/** enum IPV4_DEVCONF_* in <linux/ip.h> starts at FORWARDING = 1; ARP_NOTIFY is the 22nd. */
export const IPV4_DEVCONF_ARP_NOTIFY = 22;
/** RTEXT_FILTER_SKIP_STATS: link answers without the counters (smaller; kernel >= 4.20, ignored before). */
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
export const RTN_UNICAST = 1;
/** BR_STATE_FORWARDING in <linux/if_bridge.h>. */
export const BR_STATE_FORWARDING = 3;

const IFADDRMSG_LEN = 8;
const RTMSG_LEN = 12;
const IFNAMSIZ = 16;

// ----- values ------------------------------------------------------------------------------

/** Four bytes of a dotted IPv4 address. */
export function ipv4Bytes(text: string): Buffer {
  const parts = text.split('.');
  const bytes = parts.map(Number);
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p)) || bytes.some((b) => b > 255)) throw new LoomError('ERR_INVALID_ARGUMENT', `not an IPv4 address: ${text.slice(0, 40)}`);
  return Buffer.from(bytes);
}

function ipv4Text(bytes: Buffer): string {
  if (bytes.length !== 4) throw new LoomError('ERR_PROTOCOL', 'netlink: IPv4 address attribute is not 4 bytes');
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** Six bytes of aa:bb:cc:dd:ee:ff. */
export function macBytes(text: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) throw new LoomError('ERR_INVALID_ARGUMENT', `not a MAC address: ${text.slice(0, 40)}`);
  return Buffer.from(text.replace(/:/g, ''), 'hex');
}

function macText(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function ifname(type: number, name: string): Buffer {
  if (name.length === 0 || Buffer.byteLength(name) >= IFNAMSIZ || /[\s/:\0]/.test(name)) throw new LoomError('ERR_INVALID_ARGUMENT', `not an interface name: ${JSON.stringify(name.slice(0, 40))}`);
  return encodeString(type, name);
}

function u32(type: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return encodeAttr(type, b);
}

function readU32(attr: Buffer | undefined): number | null {
  return attr !== undefined && attr.length >= 4 ? attr.readUInt32LE(0) : null;
}

function cString(attr: Buffer | undefined): string {
  return attr === undefined ? '' : attr.toString('utf8').replace(/\0.*$/s, '');
}

// ----- links -------------------------------------------------------------------------------

/** RTM_GETLINK by name; the answer is one RTM_NEWLINK, or ENODEV. */
export function encodeGetLinkByName(name: string, seq: number): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST, seq, Buffer.concat([encodeIfinfomsg(0), ifname(IFLA_IFNAME, name), u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]));
}

/** RTM_GETLINK by index (see encodeGetLink; re-exported so callers need one codec). */
export const encodeGetLinkByIndex = encodeGetLink;

export interface LinkMessage {
  index: number;
  name: string;
  /** aa:bb:..; '' for a device without a link-layer address. */
  mac: string;
  up: boolean;
  mtu: number | null;
  /** Index of the bridge (or bond) this link is a port of. */
  master: number | null;
  /** STP state of a bridge port (IFLA_INFO_SLAVE_DATA / IFLA_BRPORT_STATE), null for a non-port. */
  bridgePortState: number | null;
}

/** An RTM_NEWLINK payload (ifinfomsg + attributes). */
export function decodeLink(payload: Buffer): LinkMessage {
  if (payload.length < IFINFOMSG_LEN) throw new LoomError('ERR_PROTOCOL', 'netlink: short ifinfomsg');
  const attrs = decodeAttrs(payload.subarray(IFINFOMSG_LEN));
  const address = attrs.get(IFLA_ADDRESS);
  let bridgePortState: number | null = null;
  const linkinfo = attrs.get(IFLA_LINKINFO);
  if (linkinfo) {
    const info = decodeAttrs(linkinfo);
    const slaveData = info.get(IFLA_INFO_SLAVE_DATA);
    if (cString(info.get(IFLA_INFO_SLAVE_KIND)) === 'bridge' && slaveData) {
      const state = decodeAttrs(slaveData).get(IFLA_BRPORT_STATE);
      if (state && state.length >= 1) bridgePortState = state[0]!;
    }
  }
  return {
    index: payload.readInt32LE(4),
    name: cString(attrs.get(IFLA_IFNAME)),
    mac: address ? macText(address) : '',
    up: (payload.readUInt32LE(8) & IFF_UP) !== 0,
    mtu: readU32(attrs.get(IFLA_MTU)),
    master: readU32(attrs.get(IFLA_MASTER)),
    bridgePortState,
  };
}

export interface VethRequest {
  /** The end created in the socket's namespace. */
  name: string;
  mtu: number;
  /** Bridge index to enslave this end to. */
  master?: number;
  /** Bring this end up in the same request. */
  up?: boolean;
  peer: {
    name: string;
    mtu: number;
    mac?: string;
    /** An open fd of the namespace the peer is created in (IFLA_NET_NS_FD); absent = the socket's. */
    netnsFd?: number;
  };
}

/** RTM_NEWLINK create+excl of a veth pair (EEXIST when the name is taken). */
export function encodeNewVeth(req: VethRequest, seq: number): Buffer {
  const peerAttrs = [ifname(IFLA_IFNAME, req.peer.name), u32(IFLA_MTU, req.peer.mtu)];
  if (req.peer.mac !== undefined) peerAttrs.push(encodeAttr(IFLA_ADDRESS, macBytes(req.peer.mac)));
  if (req.peer.netnsFd !== undefined) peerAttrs.push(u32(IFLA_NET_NS_FD, req.peer.netnsFd));
  // VETH_INFO_PEER holds an ifinfomsg followed by the peer's IFLA_* attributes.
  const peer = encodeAttr(VETH_INFO_PEER, Buffer.concat([encodeIfinfomsg(0), ...peerAttrs]));
  const linkinfo = encodeNested(IFLA_LINKINFO, [encodeString(IFLA_INFO_KIND, 'veth'), encodeNested(IFLA_INFO_DATA, [peer])]);
  const attrs = [ifname(IFLA_IFNAME, req.name), u32(IFLA_MTU, req.mtu)];
  if (req.master !== undefined) attrs.push(u32(IFLA_MASTER, req.master));
  const up = req.up === true ? IFF_UP : 0;
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, Buffer.concat([encodeIfinfomsg(0, up, up), ...attrs, linkinfo]));
}

export interface LinkChange {
  up?: boolean;
  mac?: string;
}

/** RTM_NEWLINK (changelink) on an existing link, by index or name: up/down, MAC. */
export function encodeSetLink(link: number | string, change: LinkChange, seq: number): Buffer {
  const flags = change.up === true ? IFF_UP : 0;
  const mask = change.up === undefined ? 0 : IFF_UP;
  const attrs: Buffer[] = [];
  if (typeof link === 'string') attrs.push(ifname(IFLA_IFNAME, link));
  if (change.mac !== undefined) attrs.push(encodeAttr(IFLA_ADDRESS, macBytes(change.mac)));
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, Buffer.concat([encodeIfinfomsg(typeof link === 'number' ? link : 0, flags, mask), ...attrs]));
}

/** net.ipv4.conf.<link>.arp_notify = value, via IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF. */
export function encodeSetArpNotify(index: number, value: number, seq: number): Buffer {
  const conf = encodeNested(IFLA_INET_CONF, [u32(IPV4_DEVCONF_ARP_NOTIFY, value)]);
  const spec = encodeNested(IFLA_AF_SPEC, [encodeNested(AF_INET, [conf])]);
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, Buffer.concat([encodeIfinfomsg(index), spec]));
}

/** RTM_DELLINK by name (ENODEV when there is none). Deleting one veth end deletes the pair. */
export function encodeDelLink(name: string, seq: number): Buffer {
  return encodeMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, Buffer.concat([encodeIfinfomsg(0), ifname(IFLA_IFNAME, name)]));
}

// ----- addresses ---------------------------------------------------------------------------

function ifaddrmsg(prefix: number, index: number): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(AF_INET, 0);
  b.writeUInt8(prefix, 1);
  b.writeUInt32LE(index, 4);
  return b;
}

function checkPrefix(prefix: number): void {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new LoomError('ERR_INVALID_ARGUMENT', `bad IPv4 prefix length ${prefix}`);
}

/** RTM_NEWADDR create+excl (EEXIST when present), as `ip addr add A/P dev X` (local = address). */
export function encodeNewAddr4(index: number, address: string, prefix: number, seq: number): Buffer {
  checkPrefix(prefix);
  const a = ipv4Bytes(address);
  return encodeMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, Buffer.concat([ifaddrmsg(prefix, index), encodeAttr(IFA_LOCAL, a), encodeAttr(IFA_ADDRESS, a)]));
}

/** RTM_GETADDR dump of every IPv4 address of the namespace (filter by index on the answers). */
export function encodeGetAddrs4(seq: number): Buffer {
  return encodeMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, ifaddrmsg(0, 0));
}

export interface AddrMessage {
  index: number;
  address: string;
  prefix: number;
}

/** An RTM_NEWADDR payload; null when not IPv4 or without a local address. */
export function decodeAddr4(payload: Buffer): AddrMessage | null {
  if (payload.length < IFADDRMSG_LEN) throw new LoomError('ERR_PROTOCOL', 'netlink: short ifaddrmsg');
  if (payload[0] !== AF_INET) return null;
  const attrs = decodeAttrs(payload.subarray(IFADDRMSG_LEN));
  const local = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  if (!local) return null;
  return { index: payload.readUInt32LE(4), address: ipv4Text(local), prefix: payload[1]! };
}

// ----- routes ------------------------------------------------------------------------------

export interface Route4Request {
  /** Destination network address ('0.0.0.0' with prefix 0 for the default route). */
  dst: string;
  prefix: number;
  oif: number;
  gateway?: string;
}

/**
 * RTM_NEWROUTE in the main table, as `ip route replace|add DST [via GW] dev X`: unicast, proto
 * boot, scope link without a gateway, universe with one. `replace`: NLM_F_REPLACE (idempotent);
 * otherwise NLM_F_EXCL (EEXIST when a route to DST is there).
 */
export function encodeNewRoute4(route: Route4Request, replace: boolean, seq: number): Buffer {
  checkPrefix(route.prefix);
  const rtm = Buffer.alloc(RTMSG_LEN);
  rtm.writeUInt8(AF_INET, 0);
  rtm.writeUInt8(route.prefix, 1);
  rtm.writeUInt8(RT_TABLE_MAIN, 4);
  rtm.writeUInt8(RTPROT_BOOT, 5);
  rtm.writeUInt8(route.gateway === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE, 6);
  rtm.writeUInt8(RTN_UNICAST, 7);
  const attrs: Buffer[] = [];
  if (route.prefix > 0) attrs.push(encodeAttr(RTA_DST, ipv4Bytes(route.dst)));
  if (route.gateway !== undefined) attrs.push(encodeAttr(RTA_GATEWAY, ipv4Bytes(route.gateway)));
  attrs.push(u32(RTA_OIF, route.oif));
  const flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL);
  return encodeMessage(RTM_NEWROUTE, flags, seq, Buffer.concat([rtm, ...attrs]));
}

/** RTM_GETROUTE dump of the IPv4 routes of every table (filter on the answers). */
export function encodeGetRoutes4(seq: number): Buffer {
  const rtm = Buffer.alloc(RTMSG_LEN);
  rtm.writeUInt8(AF_INET, 0);
  return encodeMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, rtm);
}

export interface RouteMessage {
  dst: string;
  prefix: number;
  table: number;
  type: number;
  oif: number | null;
  gateway: string | null;
}

/** An RTM_NEWROUTE payload; null when not IPv4. The table is RTA_TABLE when given (tables > 255). */
export function decodeRoute4(payload: Buffer): RouteMessage | null {
  if (payload.length < RTMSG_LEN) throw new LoomError('ERR_PROTOCOL', 'netlink: short rtmsg');
  if (payload[0] !== AF_INET) return null;
  const attrs = decodeAttrs(payload.subarray(RTMSG_LEN));
  const dst = attrs.get(RTA_DST);
  const gateway = attrs.get(RTA_GATEWAY);
  return {
    dst: dst ? ipv4Text(dst) : '0.0.0.0',
    prefix: payload[1]!,
    table: readU32(attrs.get(RTA_TABLE)) ?? payload[4]!,
    type: payload[7]!,
    oif: readU32(attrs.get(RTA_OIF)),
    gateway: gateway ? ipv4Text(gateway) : null,
  };
}

/** The IPv4 default routes of the main table, as `ip -4 route show default` lists them. */
export function isMainDefault(r: RouteMessage): boolean {
  return r.prefix === 0 && r.table === RT_TABLE_MAIN && r.type === RTN_UNICAST;
}
