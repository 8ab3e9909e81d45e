/**
 * A TAP device owned by this process: the user-space relay's port on the bridge.
 *
 * Opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and TSO/checksum offloads (TUNSETOFFLOAD), so
 * the kernel hands us TCP super-frames of up to the device's gso_max_size (one read, one AEAD
 * call, one datagram for ~45 segments) and takes such frames back on write. Every frame read or
 * written starts with the 10-byte virtio-net header (little-endian on this machine's x86_64; see
 * VNET_HEADER_BYTES in the relay's wire format).
 *
 * Reads: fd-watch.ts says when the (non-blocking) fd has frames; each wake then reads with
 * read(2) into one reused buffer until EAGAIN, at most READ_BUDGET frames (a busy device cannot
 * starve the event loop: the watch is level-triggered and calls again on the next turn). A TAP
 * read returns exactly one frame; each goes to `onFrame`, valid only until it returns (the caller
 * copies what it keeps). After the wake's last frame, `onBatchEnd` runs once: the relay flushes
 * what the frames queued (one sendmmsg per wake instead of one send per frame).
 * Writes: one synchronous write(2) per frame; the kernel never blocks a TAP write.
 *
 * The device exists while the fd is open (not persistent): when the process exits, the kernel
 * removes it and the bridge forgets the port, so a crashed router leaves nothing behind.
 */
import koffi from 'koffi';
import { constants as fsConstants, closeSync, openSync, writeSync } from 'node:fs';
import { LoomError } from '../core/errors.js';
import { watchReadable, type FdWatch, type FdWatchKind } from './fd-watch.js';
import { libc as libcLibrary, libcError } from './libc.js';

const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_TSO_ECN = 0x08;
const IFREQ_BYTES = 40;
/** Largest frame a read can return: 64 KiB super-frame + virtio-net header, with room to spare. */
const READ_BUFFER_BYTES = 65_536 + 1024;
/** Frames read per wake at most (then the event loop runs other work and the watch calls again). */
export const READ_BUDGET = 64;
const EINTR = 4;
const EAGAIN = 11;

interface TapLibc {
  ioctlPointer(fd: number, request: number, arg: Buffer): number;
  ioctlValue(fd: number, request: number, arg: number): number;
  read(fd: number, buffer: Buffer, length: number): number;
}

let libc: TapLibc | null = null;
function loadLibc(): TapLibc {
  if (libc) return libc;
  const lib = libcLibrary();
  libc = {
    ioctlPointer: lib.func('ioctl', 'int', ['int', 'unsigned long', 'void *']),
    ioctlValue: lib.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']),
    read: lib.func('long read(int, void *, size_t)'),
  };
  return libc;
}

export type FrameListener = (frame: Buffer) => void;

export interface TapOptions {
  /** Runs once after each wake's frames (after the last onFrame of the wake). */
  onBatchEnd?: () => void;
  /** How to watch the fd (fd-watch.ts); default: the best available. */
  watch?: FdWatchKind;
}

export class TapDevice {
  readonly name: string;
  private fd: number;
  private watch: FdWatch | null = null;
  private readonly c: TapLibc;
  private readonly onFrame: FrameListener;
  private readonly onBatchEnd: (() => void) | null;
  private readonly readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  /** Errno of the read error that stopped reading (the device went away), or 0. */
  private readError = 0;

  /**
   * Creates TAP device `name` (at most 15 bytes) in this process's network namespace with
   * offloads on, and starts reading. ERR_OS_COMMAND when /dev/net/tun or the ioctls fail (no
   * CAP_NET_ADMIN, a device of that name owned elsewhere).
   */
  static open(name: string, onFrame: FrameListener, options: TapOptions = {}): TapDevice {
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid TAP device name "${name.slice(0, 20)}"`);
    const c = loadLibc();
    let fd: number;
    try {
      // Non-blocking: a wake reads until EAGAIN.
      fd = openSync('/dev/net/tun', fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new LoomError('ERR_OS_COMMAND', `cannot open /dev/net/tun: ${(err as Error).message}`, { cause: err });
    }
    let device: TapDevice | null = null;
    try {
      const ifr = Buffer.alloc(IFREQ_BYTES);
      ifr.write(name, 0, 15, 'ascii');
      ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 16);
      if (c.ioctlPointer(fd, TUNSETIFF, ifr) < 0) throw libcError(`TUNSETIFF ${name}`);
      if (c.ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) < 0) throw libcError(`TUNSETOFFLOAD ${name}`);
      device = new TapDevice(c, name, fd, onFrame, options.onBatchEnd ?? null);
      device.watch = watchReadable(fd, device.readFrames, options.watch ? { prefer: options.watch } : {});
      return device;
    } catch (err) {
      if (device) device.close();
      else closeSync(fd);
      throw err;
    }
  }

  private constructor(c: TapLibc, name: string, fd: number, onFrame: FrameListener, onBatchEnd: (() => void) | null) {
    this.c = c;
    this.name = name;
    this.fd = fd;
    this.onFrame = onFrame;
    this.onBatchEnd = onBatchEnd;
  }

  /** Which fd-watch kind reads the device (null once closed or after a read error). */
  get watchKind(): FdWatchKind | null {
    return this.watch?.kind ?? null;
  }

  /** The wake handler: up to READ_BUDGET frames, then onBatchEnd. One bound function for the device's life. */
  private readonly readFrames = (): void => {
    const buffer = this.readBuffer;
    let frames = 0;
    while (frames < READ_BUDGET && this.fd >= 0) {
      const n = this.c.read(this.fd, buffer, READ_BUFFER_BYTES);
      if (n > 0) {
        frames++;
        this.onFrame(buffer.subarray(0, n));
        continue;
      }
      if (n < 0) {
        const errno = koffi.errno();
        if (errno === EINTR) continue;
        if (errno !== EAGAIN) this.stopReading(errno);
      }
      break;
    }
    if (frames > 0) this.onBatchEnd?.();
  };

  /**
   * A read error (the device was deleted under us): stop watching, or the level-triggered watch
   * would call again at once forever. The fd stays until close(); the owner notices on write.
   */
  private stopReading(errno: number): void {
    this.readError = errno;
    this.watch?.close();
    this.watch = null;
  }

  /** Errno of the read error that stopped reading, or 0 while reading (or closed normally). */
  get readErrno(): number {
    return this.readError;
  }

  /** Writes one frame (virtio-net header + Ethernet frame). False when the kernel refused it. */
  write(frame: Uint8Array): boolean {
    if (this.fd < 0) return false;
    try {
      return writeSync(this.fd, frame, 0, frame.length) === frame.length;
    } catch {
      return false;
    }
  }

  /** Stops reading and closes the fd: the kernel removes the device. Idempotent. */
  close(): void {
    this.watch?.close();
    this.watch = null;
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}
