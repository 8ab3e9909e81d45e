/**
 * A TAP device owned by this process: the user-space relay's port on the bridge.
 *
 * Opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and TSO/checksum offloads (TUNSETOFFLOAD), so
 * the kernel hands us TCP super-frames of up to the device's gso_max_size (one read, one AEAD
 * call, one datagram for ~45 segments) and takes such frames back on write. Every frame read or
 * written starts with the 10-byte virtio-net header (little-endian on this machine's x86_64; see
 * VNET_HEADER_BYTES in the relay's wire format).
 *
 * Reads: the fd is handed to libuv as a pipe (net.Socket over a Pipe handle, which polls any fd),
 * with one reused read buffer; a TAP read returns exactly one frame, so each callback is one frame.
 * The buffer passed to `onFrame` is valid only until it returns (the caller copies what it keeps).
 * Writes: one synchronous write(2) per frame; the kernel never blocks a TAP write.
 *
 * The device exists while the fd is open (not persistent): when the process exits, the kernel
 * removes it and the bridge forgets the port, so a crashed router leaves nothing behind.
 */
import { libc as libcLibrary, libcError } from './libc.js';
import { closeSync, openSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { LoomError } from '../core/errors.js';

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

interface TapLibc {
  ioctlPointer(fd: number, request: number, arg: Buffer): number;
  ioctlValue(fd: number, request: number, arg: number): number;
}

let libc: TapLibc | null = null;
function loadLibc(): TapLibc {
  if (libc) return libc;
  const lib = libcLibrary();
  libc = {
    ioctlPointer: lib.func('ioctl', 'int', ['int', 'unsigned long', 'void *']),
    ioctlValue: lib.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']),
  } as TapLibc;
  return libc;
}

/** libuv's Pipe handle (internal binding): the one handle type that adopts an arbitrary fd. */
interface PipeHandle {
  open(fd: number): number;
}
interface PipeBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

function pipeBinding(): PipeBinding {
  // process.binding is deprecated for userland but stable in Node 20; no public API polls a char device.
  return (process as unknown as { binding(name: string): PipeBinding }).binding('pipe_wrap');
}

export type FrameListener = (frame: Buffer) => void;

export class TapDevice {
  readonly name: string;
  private fd: number;
  private socket: Socket | null = null;
  private readonly onFrame: FrameListener;
  private readonly readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);

  /**
   * Creates TAP device `name` (at most 15 bytes) in this process's network namespace with
   * offloads on, and starts reading. ERR_OS_COMMAND when /dev/net/tun or the ioctls fail (no
   * CAP_NET_ADMIN, a device of that name owned elsewhere).
   */
  static open(name: string, onFrame: FrameListener): TapDevice {
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid TAP device name "${name.slice(0, 20)}"`);
    const c = loadLibc();
    let fd: number;
    try {
      fd = openSync('/dev/net/tun', 'r+');
    } catch (err) {
      throw new LoomError('ERR_OS_COMMAND', `cannot open /dev/net/tun: ${(err as Error).message}`, { cause: err });
    }
    try {
      const ifr = Buffer.alloc(IFREQ_BYTES);
      ifr.write(name, 0, 15, 'ascii');
      ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 16);
      if (c.ioctlPointer(fd, TUNSETIFF, ifr) < 0) throw libcError(`TUNSETIFF ${name}`);
      if (c.ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) < 0) throw libcError(`TUNSETOFFLOAD ${name}`);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const device = new TapDevice(name, fd, onFrame);
    device.startReading();
    return device;
  }

  private constructor(name: string, fd: number, onFrame: FrameListener) {
    this.name = name;
    this.fd = fd;
    this.onFrame = onFrame;
  }

  private startReading(): void {
    const { Pipe, constants } = pipeBinding();
    const pipe = new Pipe(constants.SOCKET);
    const err = pipe.open(this.fd);
    if (err !== 0) {
      closeSync(this.fd);
      this.fd = -1;
      throw new LoomError('ERR_OS_COMMAND', `cannot poll TAP ${this.name} (libuv error ${err})`);
    }
    const buffer = this.readBuffer;
    const onFrame = this.onFrame;
    const socket = new Socket({
      handle: pipe,
      readable: true,
      writable: false,
      onread: {
        buffer,
        callback: (bytes: number): boolean => {
          onFrame(buffer.subarray(0, bytes));
          return true;
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    // A read error (the device was deleted under us) ends the socket; the owner notices on write.
    socket.on('error', () => undefined);
    this.socket = socket;
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
    if (this.socket) {
      // Destroying the socket closes its handle, and with it the fd.
      this.socket.destroy();
      this.socket = null;
      this.fd = -1;
    } else if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}
