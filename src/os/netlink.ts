/**
 * A blocking rtnetlink client over koffi (Node has no AF_NETLINK sockets). Each call opens a
 * socket in the calling process's network namespace, sends one request and reads until its answer,
 * with SO_RCVTIMEO bounding the wait (1 s): the event loop blocks for at most that long, and in
 * practice for microseconds, as the kernel answers synchronously.
 * Used where iproute2 cannot help: IFLA_VXLAN_LOCALBYPASS (iproute2 < 6.5 has no `nolocalbypass`).
 */
import { libc as libcLibrary, libcError } from './libc.js';
import { LoomError } from '../core/errors.js';
import { decodeError, decodeMessages, decodeVxlanLocalBypass, encodeGetLink, encodeSetVxlanLocalBypass, NLMSG_DONE, NLMSG_ERROR, RTM_NEWLINK } from './netlink-codec.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const RECV_BUFFER = 65536;
const MAX_DATAGRAMS = 16;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  close(fd: number): number;
  if_nametoindex(name: string): number;
}

let libc: Libc | null = null;
function loadLibc(): Libc {
  if (libc) return libc;
  const lib = libcLibrary();
  libc = {
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, const void *, uint32_t)'),
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    send: lib.func('long send(int, const void *, size_t, int)'),
    recv: lib.func('long recv(int, _Out_ void *, size_t, int)'),
    close: lib.func('int close(int)'),
    if_nametoindex: lib.func('unsigned int if_nametoindex(const char *)'),
  };
  return libc;
}

function osError(what: string): LoomError {
  return libcError(`netlink: ${what}`);
}

/** The interface index of `name` in this process's netns; ERR_NOT_FOUND if there is none. */
export function interfaceIndex(name: string): number {
  const index = loadLibc().if_nametoindex(name);
  if (index === 0) throw new LoomError('ERR_NOT_FOUND', `no interface named ${name}`);
  return index;
}

let sequence = 1;

/** Sends `request` and returns the messages answering it (its seq), ending at ACK/DONE or the first data reply. */
function transact(build: (seq: number) => Buffer, expectData: boolean): Buffer | null {
  const c = loadLibc();
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw osError('socket');
  try {
    const timeout = Buffer.alloc(16);
    timeout.writeBigInt64LE(1n, 0);
    if (c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16) < 0) throw osError('setsockopt');
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0);
    if (c.bind(fd, addr, addr.length) < 0) throw osError('bind');
    const seq = sequence++;
    const request = build(seq);
    if (c.send(fd, request, request.length, 0) !== request.length) throw osError('send');
    const buf = Buffer.alloc(RECV_BUFFER);
    for (let i = 0; i < MAX_DATAGRAMS; i++) {
      const n = Number(c.recv(fd, buf, buf.length, 0));
      if (n < 0) throw osError('recv');
      for (const msg of decodeMessages(buf.subarray(0, n))) {
        if (msg.seq !== seq) continue;
        if (msg.type === NLMSG_ERROR) {
          const errno = decodeError(msg.payload);
          if (errno !== 0) throw new LoomError('ERR_OS_COMMAND', `netlink request failed (errno ${errno})`, { detail: { errno } });
          return null;
        }
        if (msg.type === NLMSG_DONE) return null;
        if (expectData && msg.type === RTM_NEWLINK) return Buffer.from(msg.payload);
      }
    }
    throw new LoomError('ERR_PROTOCOL', 'netlink: no answer to request');
  } finally {
    c.close(fd);
  }
}

/** Sets IFLA_VXLAN_LOCALBYPASS on vxlan device `name`. Idempotent. */
export function setVxlanLocalBypass(name: string, enabled: boolean): void {
  const index = interfaceIndex(name);
  transact((seq) => encodeSetVxlanLocalBypass(index, enabled, seq), false);
}

/** The local-bypass flag of vxlan device `name`, or null if the kernel does not report one. */
export function getVxlanLocalBypass(name: string): boolean | null {
  const index = interfaceIndex(name);
  const payload = transact((seq) => encodeGetLink(index, seq), true);
  return payload ? decodeVxlanLocalBypass(payload) : null;
}
