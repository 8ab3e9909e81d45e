/**
 * The link door: the few link, address and route operations that plug a network namespace into
 * the bridge, on rtnetlink sockets made by netlink.ts (no `ip`, `nsenter`, `sysctl` or `bridge`
 * processes). `netlinkLinks` is the real one; `MemoryNetnsLinks` (netns-links-memory.ts) records
 * operations for unit tests, as RecordingRunner does for commands.
 *
 * A handle works on one namespace (its socket was made there) and must be closed. Every call is
 * synchronous and blocks the event loop for one kernel round trip (microseconds).
 */
import { closeNetns, ERRNO, netlinkErrno, openNetns, openRtnl, type RtnlSocket } from './netlink.js';
import { RTM_NEWLINK } from './netlink-codec.js';
import {
  decodeAddr4,
  decodeLink,
  decodeRoute4,
  encodeDelLink,
  encodeGetAddrs4,
  encodeGetLinkByIndex,
  encodeGetLinkByName,
  encodeGetRoutes4,
  encodeNewAddr4,
  encodeNewRoute4,
  encodeNewVeth,
  encodeSetArpNotify,
  encodeSetLink,
  isMainDefault,
  RTM_NEWADDR,
  RTM_NEWROUTE,
  type LinkChange,
  type LinkMessage,
  type Route4Request,
} from './rtnl-codec.js';

export type LinkState = LinkMessage;
export type RouteSpec = Route4Request;
export { BR_STATE_FORWARDING } from './rtnl-codec.js';

/** A network namespace: a process's (by host PID) or a netns file. Same shape as containers' NetnsTarget. */
export type NetnsRef = { pid: number } | { path: string };

export function netnsPath(ref: NetnsRef): string {
  return 'pid' in ref ? `/proc/${ref.pid}/ns/net` : ref.path;
}

export interface VethSpec {
  /** The end made in the handle's namespace, enslaved to `master` and brought up. */
  name: string;
  mtu: number;
  master: number;
  /** The other end, made directly in `netns` (down; the caller configures and raises it). */
  peer: { name: string; mtu: number; mac: string; netns: NetnsRef };
}

export interface NetnsLinkHandle {
  /** The link called `name`, or null when there is none. */
  link(name: string): LinkState | null;
  linkByIndex(index: number): LinkState | null;
  /** Creates the pair; EEXIST (ERR_OS_COMMAND) when `name` is taken. */
  createVeth(spec: VethSpec): void;
  /** Changes an existing link (by index or name). Idempotent. */
  setLink(link: number | string, change: LinkChange): void;
  /** net.ipv4.conf.<link>.arp_notify = 1. Idempotent. */
  setArpNotify(index: number): void;
  /** The IPv4 addresses on link `index`. */
  addresses4(index: number): Array<{ address: string; prefix: number }>;
  /** Adds an IPv4 address; false when it was already there. */
  addAddress4(index: number, address: string, prefix: number): boolean;
  /** `ip route replace` (idempotent) or, with replace false, `ip route add`: false when a route to dst exists. */
  addRoute4(route: RouteSpec, replace: boolean): boolean;
  /** The main table's IPv4 default routes. */
  defaultRoutes4(): Array<{ oif: number | null; gateway: string | null }>;
  /** Deletes link `name` (a veth end takes its peer along); false when there was none. */
  deleteLink(name: string): boolean;
  close(): void;
}

export interface NetnsLinks {
  /** A handle on `netns`, or on the router's own namespace for null. */
  open(netns: NetnsRef | null): NetnsLinkHandle;
}

function tolerate<T>(errno: number, fallback: T, op: () => T): T {
  try {
    return op();
  } catch (err) {
    if (netlinkErrno(err) === errno) return fallback;
    throw err;
  }
}

class NetlinkHandle implements NetnsLinkHandle {
  constructor(
    private readonly socket: RtnlSocket,
    private readonly where: string,
  ) {}

  link(name: string): LinkState | null {
    return tolerate(ERRNO.ENODEV, null, () => decodeLink(this.socket.get(`get link ${name} in ${this.where}`, (seq) => encodeGetLinkByName(name, seq), RTM_NEWLINK)));
  }

  linkByIndex(index: number): LinkState | null {
    return tolerate(ERRNO.ENODEV, null, () => decodeLink(this.socket.get(`get link #${index} in ${this.where}`, (seq) => encodeGetLinkByIndex(index, seq), RTM_NEWLINK)));
  }

  createVeth(spec: VethSpec): void {
    const fd = openNetns(netnsPath(spec.peer.netns));
    try {
      const peer = { name: spec.peer.name, mtu: spec.peer.mtu, mac: spec.peer.mac, netnsFd: fd };
      this.socket.ack(`create veth ${spec.name} (peer ${spec.peer.name})`, (seq) => encodeNewVeth({ name: spec.name, mtu: spec.mtu, master: spec.master, up: true, peer }, seq));
    } finally {
      closeNetns(fd);
    }
  }

  setLink(link: number | string, change: LinkChange): void {
    this.socket.ack(`set link ${link} in ${this.where}`, (seq) => encodeSetLink(link, change, seq));
  }

  setArpNotify(index: number): void {
    this.socket.ack(`set arp_notify on #${index} in ${this.where}`, (seq) => encodeSetArpNotify(index, 1, seq));
  }

  addresses4(index: number): Array<{ address: string; prefix: number }> {
    return this.socket
      .dump(`list addresses in ${this.where}`, (seq) => encodeGetAddrs4(seq), RTM_NEWADDR)
      .map(decodeAddr4)
      .filter((a) => a !== null && a.index === index)
      .map((a) => ({ address: a!.address, prefix: a!.prefix }));
  }

  addAddress4(index: number, address: string, prefix: number): boolean {
    return tolerate(ERRNO.EEXIST, false, () => {
      this.socket.ack(`add ${address}/${prefix} to #${index} in ${this.where}`, (seq) => encodeNewAddr4(index, address, prefix, seq));
      return true;
    });
  }

  addRoute4(route: RouteSpec, replace: boolean): boolean {
    return tolerate(ERRNO.EEXIST, false, () => {
      this.socket.ack(`route ${route.dst}/${route.prefix} in ${this.where}`, (seq) => encodeNewRoute4(route, replace, seq));
      return true;
    });
  }

  defaultRoutes4(): Array<{ oif: number | null; gateway: string | null }> {
    return this.socket
      .dump(`list routes in ${this.where}`, (seq) => encodeGetRoutes4(seq), RTM_NEWROUTE)
      .map(decodeRoute4)
      .filter((r) => r !== null && isMainDefault(r))
      .map((r) => ({ oif: r!.oif, gateway: r!.gateway }));
  }

  deleteLink(name: string): boolean {
    return tolerate(ERRNO.ENODEV, false, () => {
      this.socket.ack(`delete link ${name} in ${this.where}`, (seq) => encodeDelLink(name, seq));
      return true;
    });
  }

  close(): void {
    this.socket.close();
  }
}

/** The real door: rtnetlink sockets in the router's namespace or (via setns) in the target's. */
export const netlinkLinks: NetnsLinks = {
  open(netns) {
    const path = netns === null ? null : netnsPath(netns);
    return new NetlinkHandle(openRtnl(path), path === null ? 'the router namespace' : path.slice(0, 100));
  },
};
