/**
 * Binary codec for ControlMessage, the body of every frame after the handshake (inside the
 * encryption when there is a password). Wire diagram in docs/PROTOCOL.md.
 *
 * Decoding is total: any byte string either yields a ControlMessage or throws LoomError
 * ERR_PROTOCOL. Decoded payloads are views of the input (no copy); the caller owns the input.
 */
import { LoomError } from '../core/errors.js';
import { peerNameFromBytes, peerNameToBytes, type PeerName } from '../core/ids.js';
import type { ControlMessage } from './types.js';

export const MESSAGE_TAG = {
  heartbeat: 1,
  gossip: 2,
  'gossip-unicast': 3,
  'gossip-broadcast': 4,
  goodbye: 5,
} as const satisfies Record<ControlMessage['type'], number>;

export const MAX_CHANNEL_NAME_BYTES = 64;
/**
 * Hops a unicast may still take when it leaves its source. Routes are shortest paths, so a
 * message that needs more is circling between routers whose views disagree (during churn).
 */
export const UNICAST_HOP_LIMIT = 64;

/**
 * gossip-unicast as it travels: `hopsLeft` (0..255, default UNICAST_HOP_LIMIT when absent) is
 * decremented by every relay; a relay drops a message that has none left.
 * (Proposed for the ControlMessage union in types.ts as an optional field.)
 */
export type GossipUnicastMessage = Extract<ControlMessage, { type: 'gossip-unicast' }> & { hopsLeft?: number };

export function hopsLeftOf(msg: GossipUnicastMessage): number {
  return msg.hopsLeft ?? UNICAST_HOP_LIMIT;
}
/** Goodbye reasons are for logs and status; longer ones are cut (on a character boundary). */
export const MAX_GOODBYE_REASON_CHARS = 256;
const PEER_NAME_BYTES = 6;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

function assertNever(x: never): never {
  throw new LoomError('ERR_INTERNAL', `unhandled message ${JSON.stringify(x)}`);
}

function channelBytes(channel: string): Buffer {
  const bytes = Buffer.from(channel, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_CHANNEL_NAME_BYTES) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `channel name must be 1..${MAX_CHANNEL_NAME_BYTES} UTF-8 bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** Encoded size of `msg` (what `encodeControlMessage` will allocate minus headroom). */
function layout(msg: ControlMessage): { size: number; channel?: Buffer; reason?: Buffer } {
  switch (msg.type) {
    case 'heartbeat':
      return { size: 1 };
    case 'gossip': {
      const channel = channelBytes(msg.channel);
      return { size: 2 + channel.length + msg.payload.length, channel };
    }
    case 'gossip-unicast': {
      const channel = channelBytes(msg.channel);
      return { size: 2 + channel.length + 2 * PEER_NAME_BYTES + 1 + msg.payload.length, channel };
    }
    case 'gossip-broadcast': {
      const channel = channelBytes(msg.channel);
      return { size: 2 + channel.length + PEER_NAME_BYTES + msg.payload.length, channel };
    }
    case 'goodbye': {
      const reason = Buffer.from(Array.from(msg.reason).slice(0, MAX_GOODBYE_REASON_CHARS).join(''), 'utf8');
      return { size: 1 + reason.length, reason };
    }
    default:
      return assertNever(msg);
  }
}

/**
 * Encodes `msg` after `headroom` unused bytes (room for a frame header), in one allocation.
 * Throws ERR_INVALID_ARGUMENT for a channel name out of bounds.
 */
export function encodeControlMessage(msg: ControlMessage, headroom = 0): Buffer {
  const { size, channel, reason } = layout(msg);
  const out = Buffer.allocUnsafe(headroom + size);
  let at = headroom;
  out[at++] = MESSAGE_TAG[msg.type];
  const putChannel = (): void => {
    out[at++] = channel!.length;
    channel!.copy(out, at);
    at += channel!.length;
  };
  const putPeer = (name: PeerName): void => {
    peerNameToBytes(name, out, at);
    at += PEER_NAME_BYTES;
  };
  switch (msg.type) {
    case 'heartbeat':
      break;
    case 'gossip':
      putChannel();
      out.set(msg.payload, at);
      break;
    case 'gossip-unicast':
      putChannel();
      putPeer(msg.src);
      putPeer(msg.dst);
      out[at++] = Math.max(0, Math.min(255, Math.trunc(hopsLeftOf(msg))));
      out.set(msg.payload, at);
      break;
    case 'gossip-broadcast':
      putChannel();
      putPeer(msg.src);
      out.set(msg.payload, at);
      break;
    case 'goodbye':
      reason!.copy(out, at);
      break;
    default:
      return assertNever(msg);
  }
  return out;
}

/** Reads fields from a body, throwing ERR_PROTOCOL on anything short or malformed. */
class BodyReader {
  private at = 0;
  constructor(
    private readonly body: Uint8Array,
    private readonly what: string,
  ) {}

  private need(n: number): void {
    if (this.body.length - this.at < n) throw new LoomError('ERR_PROTOCOL', `${this.what}: body too short`);
  }

  u8(): number {
    this.need(1);
    return this.body[this.at++]!;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const view = this.body.subarray(this.at, this.at + n);
    this.at += n;
    return view;
  }

  channel(): string {
    const length = this.u8();
    if (length === 0 || length > MAX_CHANNEL_NAME_BYTES) throw new LoomError('ERR_PROTOCOL', `${this.what}: channel name length ${length} out of bounds`);
    try {
      return strictUtf8.decode(this.bytes(length));
    } catch (err) {
      if (err instanceof LoomError) throw err;
      throw new LoomError('ERR_PROTOCOL', `${this.what}: channel name is not UTF-8`);
    }
  }

  peer(): PeerName {
    return peerNameFromBytes(this.bytes(PEER_NAME_BYTES));
  }

  rest(): Uint8Array {
    const view = this.body.subarray(this.at);
    this.at = this.body.length;
    return view;
  }

  end(): void {
    if (this.at !== this.body.length) throw new LoomError('ERR_PROTOCOL', `${this.what}: ${this.body.length - this.at} trailing bytes`);
  }
}

export function decodeControlMessage(body: Uint8Array): ControlMessage {
  if (body.length === 0) throw new LoomError('ERR_PROTOCOL', 'empty control message');
  const tag = body[0]!;
  const r = new BodyReader(body.subarray(1), `control message type ${tag}`);
  switch (tag) {
    case MESSAGE_TAG.heartbeat:
      r.end();
      return { type: 'heartbeat' };
    case MESSAGE_TAG.gossip:
      return { type: 'gossip', channel: r.channel(), payload: r.rest() };
    case MESSAGE_TAG['gossip-unicast']: {
      const msg: GossipUnicastMessage = { type: 'gossip-unicast', channel: r.channel(), src: r.peer(), dst: r.peer(), hopsLeft: r.u8(), payload: r.rest() };
      return msg;
    }
    case MESSAGE_TAG['gossip-broadcast']:
      return { type: 'gossip-broadcast', channel: r.channel(), src: r.peer(), payload: r.rest() };
    case MESSAGE_TAG.goodbye:
      return { type: 'goodbye', reason: lenientUtf8.decode(r.rest()) };
    default:
      throw new LoomError('ERR_PROTOCOL', `unknown control message type ${tag}`);
  }
}
