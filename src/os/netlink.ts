/**
 * A blocking rtnetlink client over koffi (Node has no AF_NETLINK sockets). We extend our own: no
 * npm netlink library is well kept. A `RtnlSocket` sends one request at a time and reads until its
 * answer, SO_RCVTIMEO bounding each wait (1 s): the event loop blocks for at most that long, in
 * practice for microseconds, as the kernel answers rtnetlink requests synchronously.
 *
 * Namespaces: a netlink socket stays bound to the network namespace it was created in, so
 * `openRtnl(path)` enters the target namespace on the calling (main) thread with setns(2), creates
 * the socket and returns at once (see `inNetns`); every request then runs from our own namespace.
 * Only the calling thread switches (libuv's pool threads keep theirs), and nothing but socket(2)
 * runs while it is switched.
 *
 * Errors: ERR_OS_COMMAND naming the errno (`EEXIST (errno 17)`), with `detail.errno`; see
 * `netlinkErrno`.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { libc as libcLibrary, libcError } from './libc.js';
import { isLoomError, LoomError } from '../core/errors.js';
import { decodeError, decodeMessages, decodeVxlanLocalBypass, encodeGetLink, encodeSetVxlanLocalBypass, NLMSG_DONE, NLMSG_ERROR, RTM_NEWLINK } from './netlink-codec.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const CLONE_NEWNET = 0x40000000;
const RECV_BUFFER = 65536;
/** A request's answer fits one datagram; a dump (routes, addresses of one namespace) a few. */
const MAX_DATAGRAMS = 16;
const MAX_DUMP_DATAGRAMS = 4096;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  close(fd: number): number;
  if_nametoindex(name: string): number;
  setns(fd: number, nstype: number): number;
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
    setns: lib.func('int setns(int, int)'),
  };
  return libc;
}

function osError(what: string): LoomError {
  return libcError(`netlink: ${what}`);
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** "EEXIST" for 17; "errno N" for one Node does not name. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** The errno of a failed netlink request (a LoomError from this module), else null. */
export function netlinkErrno(err: unknown): number | null {
  if (!isLoomError(err, 'ERR_OS_COMMAND')) return null;
  const errno = err.detail?.['netlinkErrno'];
  return typeof errno === 'number' ? errno : null;
}

export const ERRNO = { ENOENT: 2, ESRCH: 3, EEXIST: 17, ENODEV: 19 } as const;

/** The interface index of `name` in this process's netns; ERR_NOT_FOUND if there is none. */
export function interfaceIndex(name: string): number {
  const index = loadLibc().if_nametoindex(name);
  if (index === 0) throw new LoomError('ERR_NOT_FOUND', `no interface named ${name}`);
  return index;
}

let sequence = 1;

/** One NETLINK_ROUTE socket (owned: close() it). Requests are answered in order; one at a time. */
export class RtnlSocket {
  private readonly buf = Buffer.alloc(RECV_BUFFER);
  private closed = false;

  private constructor(private readonly fd: number) {}

  /** A socket in the calling thread's current namespace. */
  static openHere(): RtnlSocket {
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
    } catch (err) {
      c.close(fd);
      throw err;
    }
    return new RtnlSocket(fd);
  }

  /** Sends a request built with NLM_F_ACK and waits for the ACK; a kernel error throws (see netlinkErrno). */
  ack(what: string, build: (seq: number) => Buffer): void {
    this.exchange(what, build, () => false, MAX_DATAGRAMS);
  }

  /** A request answered by one message of `type` (a copy of its payload). */
  get(what: string, build: (seq: number) => Buffer, type: number): Buffer {
    let answer: Buffer | null = null;
    this.exchange(
      what,
      build,
      (msgType, payload) => {
        if (msgType !== type) return false;
        answer = Buffer.from(payload);
        return true;
      },
      MAX_DATAGRAMS,
    );
    if (answer === null) throw new LoomError('ERR_PROTOCOL', `netlink: ${what}: no answer`);
    return answer;
  }

  /** A dump request (NLM_F_DUMP): the payloads of every message of `type` up to NLMSG_DONE (copies). */
  dump(what: string, build: (seq: number) => Buffer, type: number): Buffer[] {
    const out: Buffer[] = [];
    this.exchange(
      what,
      build,
      (msgType, payload) => {
        if (msgType === type) out.push(Buffer.from(payload));
        return false;
      },
      MAX_DUMP_DATAGRAMS,
    );
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    loadLibc().close(this.fd);
  }

  /**
   * Sends one request and reads the messages of its seq until an NLMSG_ERROR (ACK or error),
   * NLMSG_DONE, or `onData` returning true. Messages of other seqs (late answers) are skipped.
   */
  private exchange(what: string, build: (seq: number) => Buffer, onData: (type: number, payload: Buffer) => boolean, maxDatagrams: number): void {
    if (this.closed) throw new LoomError('ERR_INTERNAL', 'netlink: socket is closed');
    const c = loadLibc();
    const seq = sequence++;
    if (sequence > 0x7fffffff) sequence = 1;
    const request = build(seq);
    if (Number(c.send(this.fd, request, request.length, 0)) !== request.length) throw osError(`${what}: send`);
    for (let i = 0; i < maxDatagrams; i++) {
      const n = Number(c.recv(this.fd, this.buf, this.buf.length, 0));
      if (n < 0) throw osError(`${what}: recv`);
      for (const msg of decodeMessages(this.buf.subarray(0, n))) {
        if (msg.seq !== seq) continue;
        if (msg.type === NLMSG_ERROR) {
          const errno = decodeError(msg.payload);
          if (errno === 0) return;
          throw new LoomError('ERR_OS_COMMAND', `netlink: ${what}: ${errnoName(errno)} (errno ${errno})`, { detail: { netlinkErrno: errno, errno } });
        }
        if (msg.type === NLMSG_DONE) return;
        if (onData(msg.type, msg.payload)) return;
      }
    }
    throw new LoomError('ERR_PROTOCOL', `netlink: ${what}: no end to the answer`);
  }
}

let homeNetnsFd: number | null = null;

/** Our own namespace, opened once (CLOEXEC, as Node opens files), before any switch. */
function homeNetns(): number {
  homeNetnsFd ??= openSync('/proc/thread-self/ns/net', 'r');
  return homeNetnsFd;
}

/**
 * Runs `make` (synchronous, no I/O but socket calls) with the calling thread in the namespace of
 * `targetFd`, and switches back before returning. If switching back fails the process is in the
 * wrong namespace for everything it opens from then on (listeners, sockets, files under /proc/net):
 * that is not an error to recover from, so the process aborts with a message (after one retry).
 */
function inNetns<T>(targetFd: number, make: () => T): T {
  const c = loadLibc();
  const home = homeNetns();
  if (c.setns(targetFd, CLONE_NEWNET) !== 0) throw osError('setns into the target namespace');
  try {
    return make();
  } finally {
    if (c.setns(home, CLONE_NEWNET) !== 0 && c.setns(home, CLONE_NEWNET) !== 0) {
      writeSync(2, `loom: FATAL: cannot switch back to the router's network namespace after a netlink socket was opened in another (${libcError('setns').message}); aborting\n`);
      process.abort();
    }
  }
}

/** A namespace file, opened for setns or IFLA_NET_NS_FD. The caller closes it (closeNetns). */
export function openNetns(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LoomError(code === 'ENOENT' ? 'ERR_NOT_FOUND' : 'ERR_OS_COMMAND', `cannot open network namespace ${path.slice(0, 100)}: ${code ?? String(err)}`, { cause: err });
  }
}

export function closeNetns(fd: number): void {
  closeSync(fd);
}

/** A socket in the namespace at `path` (/proc/PID/ns/net, /run/netns/X), or in ours for null. */
export function openRtnl(path: string | null): RtnlSocket {
  if (path === null) return RtnlSocket.openHere();
  homeNetns();
  const fd = openNetns(path);
  try {
    return inNetns(fd, () => RtnlSocket.openHere());
  } finally {
    closeSync(fd);
  }
}

/** Sets IFLA_VXLAN_LOCALBYPASS on vxlan device `name`. Idempotent. */
export function setVxlanLocalBypass(name: string, enabled: boolean): void {
  const index = interfaceIndex(name);
  const socket = RtnlSocket.openHere();
  try {
    socket.ack('set vxlan localbypass', (seq) => encodeSetVxlanLocalBypass(index, enabled, seq));
  } finally {
    socket.close();
  }
}

/** The local-bypass flag of vxlan device `name`, or null if the kernel does not report one. */
export function getVxlanLocalBypass(name: string): boolean | null {
  const index = interfaceIndex(name);
  const socket = RtnlSocket.openHere();
  try {
    return decodeVxlanLocalBypass(socket.get('get link', (seq) => encodeGetLink(index, seq), RTM_NEWLINK));
  } finally {
    socket.close();
  }
}
