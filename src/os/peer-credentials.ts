/**
 * Who is at the other end of a connected unix socket: SO_PEERCRED (socket(7)), the credentials the
 * kernel recorded when the peer called connect(2). Node has no API for it, so getsockopt(2) goes
 * through koffi on the accepted socket's fd. The router's local API socket uses it to serve root
 * only (an abstract socket has no file permissions to do that).
 */
import { endianness } from 'node:os';
import type { Socket } from 'node:net';
import { LoomError } from '../core/errors.js';
import { libc, libcError } from './libc.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit fields in host byte order. */
export const UCRED_BYTES = 12;

/** Decodes a struct ucred (host byte order). Pure, for tests. */
export function decodeUcred(bytes: Uint8Array, littleEndian: boolean = endianness() === 'LE'): PeerCredentials {
  if (bytes.length < UCRED_BYTES) throw new RangeError(`struct ucred needs ${UCRED_BYTES} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, UCRED_BYTES);
  return { pid: view.getInt32(0, littleEndian), uid: view.getUint32(4, littleEndian), gid: view.getUint32(8, littleEndian) };
}

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: Buffer) => number;
let getsockopt: GetSockOpt | null = null;

/**
 * The fd under an accepted (or connected) net.Socket, or null when Node keeps it elsewhere (a
 * socket not yet connected, or a Node whose stream handle has no `fd`).
 */
export function streamSocketFd(socket: Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}

/**
 * The peer's credentials of a connected AF_UNIX stream socket. Throws ERR_OS_COMMAND when the fd
 * cannot be found or getsockopt fails (callers refuse the connection then: fail closed).
 */
export function peerCredentials(socket: Socket): PeerCredentials {
  const fd = streamSocketFd(socket);
  if (fd === null) throw new LoomError('ERR_OS_COMMAND', 'SO_PEERCRED: no fd under the socket');
  getsockopt ??= libc().func('int getsockopt(int, int, int, void *, void *)') as GetSockOpt;
  const value = Buffer.alloc(UCRED_BYTES);
  const length = Buffer.alloc(4);
  new DataView(length.buffer, length.byteOffset, 4).setUint32(0, UCRED_BYTES, endianness() === 'LE');
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, value, length) !== 0) throw libcError('getsockopt(SO_PEERCRED)');
  return decodeUcred(value);
}
