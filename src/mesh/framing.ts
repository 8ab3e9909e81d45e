/**
 * Length-prefixed frames on an ordered byte stream: a 4-byte big-endian body length, then the body.
 * Wire diagram in docs/PROTOCOL.md.
 */
import { LoomError } from '../core/errors.js';

export const FRAME_HEADER_BYTES = 4;
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * A frame for a body of `bodyLength` bytes with its header already written; the caller fills the
 * body in place (from offset FRAME_HEADER_BYTES), so a frame costs one allocation.
 */
export function allocateFrame(bodyLength: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyLength);
  frame.writeUInt32BE(bodyLength, 0);
  return frame;
}

/** Copies `body` into a new frame. For hot paths prefer writing the body into `allocateFrame`. */
export function encodeFrame(body: Uint8Array): Buffer {
  const frame = allocateFrame(body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Cuts frames out of the chunks a stream delivers.
 *
 * Cost contract: chunks are queued, never concatenated; a frame that lies inside one chunk is
 * returned as a view of that chunk (no copy), otherwise it is copied once into a buffer sized from
 * its header. A header announcing more than `maxFrameBytes` throws ERR_FRAME_TOO_LARGE as soon as
 * the 4 header bytes are in, before any of the body is buffered.
 *
 * Ownership: returned frames may alias the pushed chunks, so pushers must not reuse chunk memory
 * (ByteStream chunks are handed over, so this holds).
 */
export class FrameDecoder {
  /** Changeable between frames (the handshake uses a small limit, established connections a large one). */
  maxFrameBytes: number;
  /** Unconsumed chunks are chunks[first..]; consumed ones are dropped in bulk, not shifted one by one. */
  private chunks: Uint8Array[] = [];
  private first = 0;
  /** Read offset into chunks[first]. */
  private head = 0;
  private buffered = 0;
  /** Body length of the frame being assembled, once its header is read; -1 before. */
  private pendingBody = -1;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame body, or null if more bytes are needed. Throws LoomError on a bad header. */
  next(): Uint8Array | null {
    if (this.pendingBody < 0) {
      if (this.buffered < FRAME_HEADER_BYTES) return null;
      const length = this.readUInt32();
      if (length > this.maxFrameBytes) {
        throw new LoomError('ERR_FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`, {
          detail: { length, limit: this.maxFrameBytes },
        });
      }
      this.pendingBody = length;
    }
    if (this.buffered < this.pendingBody) return null;
    const body = this.take(this.pendingBody);
    this.pendingBody = -1;
    return body;
  }

  private readUInt32(): number {
    const header = this.take(FRAME_HEADER_BYTES);
    return ((header[0]! << 24) | (header[1]! << 16) | (header[2]! << 8) | header[3]!) >>> 0;
  }

  /** Removes `n` buffered bytes (n <= buffered): a view when they sit in one chunk, else one copy. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const current = this.chunks[this.first];
    if (n === 0) return new Uint8Array(0);
    if (current && current.length - this.head >= n) {
      const view = current.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === current.length) this.dropFirst();
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.first]!;
      const available = chunk.length - this.head;
      const count = Math.min(available, n - filled);
      out.set(chunk.subarray(this.head, this.head + count), filled);
      filled += count;
      this.head += count;
      if (this.head === chunk.length) this.dropFirst();
    }
    return out;
  }

  private dropFirst(): void {
    this.chunks[this.first] = EMPTY;
    this.first++;
    this.head = 0;
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 1024) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}
