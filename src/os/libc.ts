/**
 * The C library through koffi, for the few kernel interfaces Node has no API for (rtnetlink, TAP
 * ioctls, recvmmsg/sendmmsg). Loaded once per process; each user declares the functions it needs
 * on the shared handle, once.
 */
import koffi from 'koffi';
import { LoomError } from '../core/errors.js';

let lib: koffi.IKoffiLib | null = null;

/** libc.so.6, loaded on first use. Throws what koffi throws when it cannot be loaded. */
export function libc(): koffi.IKoffiLib {
  lib ??= koffi.load('libc.so.6');
  return lib;
}

/** ERR_OS_COMMAND for a failed libc call, with the errno it left (read at once, before any other call). */
export function libcError(what: string): LoomError {
  const errno = koffi.errno();
  return new LoomError('ERR_OS_COMMAND', `${what} failed (errno ${errno})`, { detail: { errno } });
}
