/**
 * What TcpSegmenter and Ipv4Fragmenter share: a frame planned by `load` into `count` pieces, each
 * the frame's headers (`frame[0..payloadStart)`, virtio-net header included) plus up to `perPiece`
 * payload bytes, the last piece shorter; a single piece is the frame unchanged. Subclasses plan in
 * `load` and write one piece's headers and payload in `writePiece`. Never throws.
 */
export abstract class FrameSplitter {
  protected frame: Uint8Array = new Uint8Array(0);
  protected count = 0;
  /** Index in `frame` of the first payload byte, and one past the IP packet's last byte. */
  protected payloadStart = 0;
  protected ipEnd = 0;
  protected perPiece = 0;

  /** Plans the split of `frame` into IP packets of at most `maxIpBytes`; the piece count, or -1. */
  abstract load(frame: Uint8Array, maxIpBytes: number): number;

  /** Bytes of piece i of the last load, virtio-net header included; -1 when there is no such piece. */
  segmentBytes(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) return -1;
    if (this.count === 1) return this.ipEnd;
    const start = this.payloadStart + i * this.perPiece;
    return this.payloadStart + Math.min(this.perPiece, this.ipEnd - start);
  }

  /**
   * Writes piece i at out[offset..offset+segmentBytes(i)) and returns its length; -1 (nothing
   * written) when there is no such piece or it does not fit in `out`.
   */
  write(i: number, out: Uint8Array, offset: number): number {
    const bytes = this.segmentBytes(i);
    if (bytes < 0 || !Number.isInteger(offset) || offset < 0 || offset + bytes > out.length) return -1;
    if (this.count === 1) {
      const frame = this.frame;
      out.set(bytes === frame.length ? frame : frame.subarray(0, bytes), offset);
      return bytes;
    }
    this.writePiece(i, out, offset, this.payloadStart + i * this.perPiece, bytes);
    return bytes;
  }

  /** Writes piece i (`bytes` long, its payload from frame[start..]) at out[offset..]; bounds are checked. */
  protected abstract writePiece(i: number, out: Uint8Array, offset: number, start: number, bytes: number): void;
}
