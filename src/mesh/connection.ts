/**
 * One mesh connection over a ByteStream: handshake (hello, keys, confirm), then ControlMessages
 * in frames, sealed when there is a password, with heartbeats. Wire format in docs/PROTOCOL.md.
 *
 * Lifecycle: hello -> confirm -> established -> closed. `establishConnection` settles once:
 * resolved on entering `established`, rejected (and the stream closed) on any failure before.
 */
import { LoomError, toLoomError } from '../core/errors.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { AEAD_TAG_BYTES, FrameOpener, FrameSealer, generateEphemeralKeyPair, type EphemeralKeyPair } from './crypto.js';
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from './framing.js';
import {
  CONFIRM_PLAINTEXT,
  MAX_HELLO_BYTES,
  checkFlags,
  createHello,
  decodeHello,
  deriveSessionKeys,
  encodeHello,
  negotiateVersion,
  nicknameBytes,
  type Hello,
} from './handshake.js';
import { decodeControlMessage, encodeControlMessage } from './protocol.js';
import type { ByteStream, ControlMessage, PeerIdentity, ProtocolConnection, SessionKeys } from './types.js';

export const PROTOCOL_MIN_VERSION = 1;
export const PROTOCOL_MAX_VERSION = 1;

export interface ConnectionOptions {
  outbound: boolean;
  local: PeerIdentity;
  /** Our TCP listen port, sent in the hello (the peer's ProtocolConnection.remoteListenPort). */
  listenPort: number;
  /** Shared secret; undefined = frames are not encrypted. Both sides must agree. */
  password?: string | undefined;
  clock: Clock;
  logger: Logger;
  /** Default 5000: a half or slow handshake is closed with ERR_HANDSHAKE_TIMEOUT. */
  handshakeTimeoutMs?: number | undefined;
  /** Default 1000: a heartbeat is sent when nothing else was sent for this long. */
  heartbeatIntervalMs?: number | undefined;
  /**
   * Default 5000: this long without receiving anything closes with ERR_HEARTBEAT_TIMEOUT.
   * Checked every heartbeatIntervalMs, so detection takes up to timeout + interval.
   */
  heartbeatTimeoutMs?: number | undefined;
  /** Default 16 MiB: a frame announcing a bigger body closes with ERR_FRAME_TOO_LARGE. */
  maxFrameBytes?: number | undefined;
  minVersion?: number | undefined;
  maxVersion?: number | undefined;
}

/**
 * Runs the handshake on `stream` and resolves with the established connection.
 * Rejects with LoomError ERR_VERSION_MISMATCH, ERR_AUTH_FAILED, ERR_HANDSHAKE_TIMEOUT,
 * ERR_PROTOCOL, ERR_FRAME_TOO_LARGE, ERR_CONNECTION_CLOSED, ERR_SELF_CONNECTION or
 * ERR_INVALID_ARGUMENT (bad options); the stream is always closed on failure.
 */
export function establishConnection(stream: ByteStream, options: ConnectionOptions): Promise<ProtocolConnection> {
  return new Promise((resolve, reject) => {
    new MeshConnection(stream, options, resolve, reject);
  });
}

type State = 'hello' | 'confirm' | 'established' | 'closed';

function validateOptions(o: ConnectionOptions): void {
  const minVersion = o.minVersion ?? PROTOCOL_MIN_VERSION;
  const maxVersion = o.maxVersion ?? PROTOCOL_MAX_VERSION;
  const isByte = (v: number): boolean => Number.isInteger(v) && v >= 1 && v <= 255;
  if (!isByte(minVersion) || !isByte(maxVersion) || minVersion > maxVersion) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid protocol version range ${minVersion}..${maxVersion}`);
  }
  if (!Number.isInteger(o.listenPort) || o.listenPort < 0 || o.listenPort > 65535) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid listen port ${o.listenPort}`);
  }
  nicknameBytes(o.local.nickname);
  for (const [name, value] of [
    ['handshakeTimeoutMs', o.handshakeTimeoutMs],
    ['heartbeatIntervalMs', o.heartbeatIntervalMs],
    ['heartbeatTimeoutMs', o.heartbeatTimeoutMs],
    ['maxFrameBytes', o.maxFrameBytes],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new LoomError('ERR_INVALID_ARGUMENT', `${name} must be a positive number`);
  }
}

class MeshConnection implements ProtocolConnection {
  readonly outbound: boolean;
  readonly remoteAddress: string;
  remote!: PeerIdentity;
  remoteListenPort = 0;
  protocolVersion = 0;
  readonly encrypted: boolean;
  sessionKeys!: SessionKeys;

  private state: State = 'hello';
  private readonly decoder = new FrameDecoder(MAX_HELLO_BYTES);
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly maxFrameBytes: number;
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeatTimeoutMs: number;
  private hello: Hello | null = null;
  private keyPair: EphemeralKeyPair | null = null;
  private helloEncoded: Buffer | null = null;
  private sealer: FrameSealer | null = null;
  private opener: FrameOpener | null = null;
  private handshakeTimer: TimerHandle | null = null;
  private heartbeatTimer: TimerHandle | null = null;
  private lastReceivedAt = 0;
  private lastSentAt = 0;

  private messageListener: ((msg: ControlMessage) => void) | null = null;
  /** Messages that arrived before onMessage was set (e.g. right behind the confirm frame). */
  private readonly earlyMessages: ControlMessage[] = [];
  private drainListener: (() => void) | null = null;
  private closeListener: ((err: LoomError | null) => void) | null = null;
  private closeError: LoomError | null = null;

  constructor(
    private readonly stream: ByteStream,
    private readonly options: ConnectionOptions,
    private readonly resolve: (conn: ProtocolConnection) => void,
    private readonly reject: (err: LoomError) => void,
  ) {
    this.outbound = options.outbound;
    this.remoteAddress = stream.remoteAddress;
    this.encrypted = options.password !== undefined;
    this.clock = options.clock;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 1000;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 5000;
    this.logger = options.logger.child({ component: 'connection', remote: stream.remoteAddress, outbound: options.outbound });

    stream.onData((chunk) => this.onData(chunk));
    stream.onDrain(() => this.drainListener?.());
    stream.onClose((err) => this.onStreamClose(err));

    try {
      validateOptions(options);
      const keyPair = generateEphemeralKeyPair();
      this.hello = createHello({
        identity: options.local,
        minVersion: options.minVersion ?? PROTOCOL_MIN_VERSION,
        maxVersion: options.maxVersion ?? PROTOCOL_MAX_VERSION,
        passwordSet: this.encrypted,
        listenPort: options.listenPort,
        keyPair,
      });
      this.keyPair = keyPair;
      this.helloEncoded = encodeHello(this.hello);
    } catch (err) {
      this.fail(toLoomError(err, 'ERR_INVALID_ARGUMENT'));
      return;
    }
    this.handshakeTimer = this.clock.setTimeout(() => {
      this.fail(new LoomError('ERR_HANDSHAKE_TIMEOUT', `handshake with ${this.remoteAddress} did not finish within ${options.handshakeTimeoutMs ?? 5000} ms`));
    }, options.handshakeTimeoutMs ?? 5000);
    this.stream.write(encodeFrame(this.helloEncoded));
  }

  // ---- ProtocolConnection ----------------------------------------------------------------

  send(msg: ControlMessage): boolean {
    if (this.state !== 'established') return false;
    let frame: Buffer;
    try {
      frame = this.encodeMessage(msg);
    } catch (err) {
      const e = toLoomError(err);
      if (e.code === 'ERR_INVALID_ARGUMENT' || e.code === 'ERR_FRAME_TOO_LARGE') throw e;
      this.fail(e);
      return false;
    }
    this.lastSentAt = this.clock.now();
    return this.stream.write(frame);
  }

  onMessage(listener: (msg: ControlMessage) => void): void {
    this.messageListener = listener;
    if (this.earlyMessages.length > 0) {
      queueMicrotask(() => {
        for (const msg of this.earlyMessages.splice(0)) if (this.state !== 'closed') this.deliver(msg);
      });
    }
  }

  onDrain(listener: () => void): void {
    this.drainListener = listener;
  }

  onClose(listener: (err: LoomError | null) => void): void {
    this.closeListener = listener;
    if (this.state === 'closed') queueMicrotask(() => listener(this.closeError));
  }

  close(reason?: string, err?: LoomError): void {
    if (this.state === 'closed') return;
    if (reason !== undefined && this.state === 'established') {
      try {
        this.stream.write(this.encodeMessage({ type: 'goodbye', reason }));
      } catch {
        // A goodbye that cannot be sealed (counter exhausted) is skipped; the close still happens.
      }
    }
    this.finish(err ?? null, false);
  }

  // ---- receiving ---------------------------------------------------------------------------

  /** A method, not a field read, because listeners called from the loop may close us. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private onData(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    this.lastReceivedAt = this.clock.now();
    try {
      this.decoder.push(chunk);
      while (!this.isClosed()) {
        const frame = this.decoder.next();
        if (frame === null) break;
        this.onFrame(frame);
      }
    } catch (err) {
      let e = toLoomError(err, 'ERR_PROTOCOL');
      if (this.state === 'hello' && e.code === 'ERR_FRAME_TOO_LARGE') {
        e = new LoomError('ERR_PROTOCOL', `not a Loom peer: first frame announces ${String(e.detail?.['length'])} bytes`);
      }
      this.fail(e);
    }
  }

  private onFrame(frame: Uint8Array): void {
    switch (this.state) {
      case 'hello':
        return this.onHello(frame);
      case 'confirm':
        return this.onConfirm(frame);
      case 'established':
        return this.onMessageFrame(frame);
      case 'closed':
        return;
    }
  }

  private onHello(frame: Uint8Array): void {
    const ours = this.hello!;
    const theirs = decodeHello(frame);
    const version = negotiateVersion(ours, theirs);
    checkFlags(ours.flags, theirs.flags);
    this.sessionKeys = deriveSessionKeys({
      ours,
      oursEncoded: this.helloEncoded!,
      theirs,
      theirsEncoded: frame,
      keyPair: this.keyPair!,
      password: this.options.password,
    });
    this.keyPair = null;
    this.remote = theirs.identity;
    this.remoteListenPort = theirs.listenPort;
    this.protocolVersion = version;
    this.sealer = new FrameSealer(this.sessionKeys.send);
    this.opener = new FrameOpener(this.sessionKeys.receive);
    // The confirm is sealed even without a password: it proves both sides derived the same keys.
    const confirm = this.sealer.seal(CONFIRM_PLAINTEXT, FRAME_HEADER_BYTES);
    confirm.writeUInt32BE(confirm.length - FRAME_HEADER_BYTES, 0);
    this.stream.write(confirm);
    this.decoder.maxFrameBytes = this.maxFrameBytes + (this.encrypted ? AEAD_TAG_BYTES : 0);
    this.state = 'confirm';
  }

  private onConfirm(frame: Uint8Array): void {
    let plaintext: Buffer;
    try {
      plaintext = this.opener!.open(frame);
    } catch (err) {
      const e = toLoomError(err, 'ERR_AUTH_FAILED');
      if (e.code !== 'ERR_AUTH_FAILED') throw e;
      throw new LoomError('ERR_AUTH_FAILED', 'password mismatch', { cause: err });
    }
    if (!plaintext.equals(CONFIRM_PLAINTEXT)) throw new LoomError('ERR_PROTOCOL', 'unexpected confirm frame');
    this.handshakeTimer?.cancel();
    this.handshakeTimer = null;
    this.state = 'established';
    this.lastReceivedAt = this.clock.now();
    this.lastSentAt = this.clock.now();
    this.heartbeatTimer = this.clock.setInterval(() => this.onHeartbeatTick(), this.heartbeatIntervalMs);
    this.logger.debug({ peer: this.remote.name, nickname: this.remote.nickname, version: this.protocolVersion, encrypted: this.encrypted }, 'connection established');
    this.resolve(this);
  }

  private onMessageFrame(frame: Uint8Array): void {
    let body: Uint8Array = frame;
    if (this.encrypted) {
      try {
        body = this.opener!.open(frame);
      } catch (err) {
        throw new LoomError('ERR_PROTOCOL', 'frame failed authentication', { cause: err });
      }
    }
    const msg = decodeControlMessage(body);
    switch (msg.type) {
      case 'heartbeat':
        return;
      case 'goodbye':
        this.finish(new LoomError('ERR_CONNECTION_CLOSED', `peer closed the connection: ${msg.reason}`, { detail: { reason: msg.reason } }), false);
        return;
      default:
        if (this.messageListener) this.deliver(msg);
        else this.earlyMessages.push(msg);
    }
  }

  /** A throwing listener is a bug on our side, not the peer's: log it, keep the connection. */
  private deliver(msg: ControlMessage): void {
    try {
      this.messageListener?.(msg);
    } catch (err) {
      this.logger.error({ err: err instanceof Error ? err.message : String(err), type: msg.type }, 'message listener threw');
    }
  }

  private onStreamClose(err: LoomError | null): void {
    if (this.state === 'closed') return;
    const during = this.state === 'established' ? '' : ' during the handshake';
    const cause = err ? `: ${err.message}` : '';
    this.fail(new LoomError('ERR_CONNECTION_CLOSED', `connection closed by ${this.remoteAddress}${during}${cause}`, { cause: err ?? undefined }));
  }

  private onHeartbeatTick(): void {
    if (this.state !== 'established') return;
    const now = this.clock.now();
    if (now - this.lastReceivedAt >= this.heartbeatTimeoutMs) {
      this.fail(new LoomError('ERR_HEARTBEAT_TIMEOUT', `no data from ${this.remoteAddress} for ${now - this.lastReceivedAt} ms`));
      return;
    }
    if (now - this.lastSentAt >= this.heartbeatIntervalMs) this.send({ type: 'heartbeat' });
  }

  // ---- sending and closing -----------------------------------------------------------------

  private encodeMessage(msg: ControlMessage): Buffer {
    if (!this.encrypted) {
      const frame = encodeControlMessage(msg, FRAME_HEADER_BYTES);
      this.checkOutgoingSize(frame.length - FRAME_HEADER_BYTES);
      frame.writeUInt32BE(frame.length - FRAME_HEADER_BYTES, 0);
      return frame;
    }
    const body = encodeControlMessage(msg);
    this.checkOutgoingSize(body.length);
    const frame = this.sealer!.seal(body, FRAME_HEADER_BYTES);
    frame.writeUInt32BE(frame.length - FRAME_HEADER_BYTES, 0);
    return frame;
  }

  /** The peer would drop us for a frame over its limit; assume its limit equals ours. */
  private checkOutgoingSize(bodyBytes: number): void {
    if (bodyBytes > this.maxFrameBytes) {
      throw new LoomError('ERR_FRAME_TOO_LARGE', `message of ${bodyBytes} bytes exceeds the frame limit of ${this.maxFrameBytes}`);
    }
  }

  /** Any failure: before establishment rejects the promise, after it closes the connection. */
  private fail(err: LoomError): void {
    if (this.state === 'closed') return;
    if (this.state !== 'established') {
      this.logger.debug({ code: err.code, err: err.message }, 'handshake failed');
      // Graceful close: our hello/confirm must still reach the peer so that it fails the same way.
      this.finish(err, false);
      this.reject(err);
      return;
    }
    // Debug only: the router logs the state change once, with the peer's name (router.ts).
    this.logger.debug({ code: err.code, err: err.message }, 'connection failed');
    this.finish(err, true);
  }

  private finish(err: LoomError | null, abortive: boolean): void {
    this.state = 'closed';
    this.closeError = err;
    this.handshakeTimer?.cancel();
    this.heartbeatTimer?.cancel();
    this.handshakeTimer = this.heartbeatTimer = null;
    this.earlyMessages.length = 0;
    this.stream.close(abortive && err ? err : undefined);
    this.closeListener?.(err);
  }
}
