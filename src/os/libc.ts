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

// ---------------------------------------------------------------------------------------------
// The calls shared by the batched socket users (udp-batch.ts, udp-endpoint.ts, fd-watch.ts). The
// struct layouts they fill live in udp-batch.ts, which must stay importable without koffi.

/** The calls every batched socket user needs, declared once on the shared handle. */
export interface MmsgCalls {
  recvmmsg(fd: number, vec: Buffer, vlen: number, flags: number, timeout: null): number;
  sendmmsg(fd: number, vec: Buffer, vlen: number, flags: number): number;
  /** memset(p, 0, 0) returns p: the only way to learn where a Buffer's (or ArrayBuffer view's) bytes are. */
  addressOf(bytes: Uint8Array, c: number, n: number): number | bigint;
  /**
   * dup(2) with close-on-exec (fcntl F_DUPFD_CLOEXEC): a plain dup() is inherited by every child
   * the daemon starts (its containers), which then keep our UDP port bound and our TAP device
   * alive after the router is gone, and a restarted router cannot bind.
   */
  dupCloexec(fd: number): number;
  close(fd: number): number;
}

const F_DUPFD_CLOEXEC = 1030;

let mmsg: MmsgCalls | null = null;

/** recvmmsg/sendmmsg and friends; throws what koffi throws when libc cannot be loaded. */
export function mmsgCalls(): MmsgCalls {
  if (mmsg) return mmsg;
  const lib = libc();
  mmsg = {
    recvmmsg: lib.func('int recvmmsg(int, void *, unsigned int, int, void *)'),
    sendmmsg: lib.func('int sendmmsg(int, void *, unsigned int, int)'),
    addressOf: lib.func('uintptr_t memset(void *, int, size_t)'),
    dupCloexec: ((fcntl: (fd: number, cmd: number, arg: number) => number) => (fd: number) => fcntl(fd, F_DUPFD_CLOEXEC, 0))(
      lib.func('int fcntl(int, int, int)'),
    ),
    close: lib.func('int close(int)'),
  };
  return mmsg;
}

/**
 * Where `bytes` start in memory, for struct fields the kernel reads. Only for memory that cannot
 * move: a Buffer from Buffer.alloc/allocUnsafeSlow, or any view whose `.buffer` was read (V8
 * moves an on-heap typed array's bytes off the heap for good when its ArrayBuffer is exposed).
 */
export function bufferAddress(bytes: Uint8Array): number {
  const address = Number(mmsgCalls().addressOf(bytes, 0, 0));
  if (!Number.isSafeInteger(address) || address === 0) throw new RangeError(`unusable buffer address ${address}`);
  return address;
}

/**
 * Carves the regions the kernel reads or writes by address out of one Buffer of its own (never
 * from the pool, so its bytes never move). The views keep that Buffer alive: the owner must keep
 * every view, or the kernel would write into freed memory. `at[k]` is view k's address.
 */
export function carve(sizes: readonly number[]): { views: Buffer[]; at: number[] } {
  const memory = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
  const base = bufferAddress(memory);
  // Pointers and size_t fields need 8-byte alignment (malloc gives 16; every size is a multiple of 8).
  if (base % 8 !== 0) throw new RangeError(`unaligned buffer address ${base}`);
  const views: Buffer[] = [];
  const at: number[] = [];
  let offset = 0;
  for (const size of sizes) {
    views.push(memory.subarray(offset, offset + size));
    at.push(base + offset);
    offset += size;
  }
  return { views, at };
}
