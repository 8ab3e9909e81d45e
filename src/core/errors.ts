/**
 * One error class for all of Loom, told apart by a stable `code`.
 * `message` is what a user sees; `detail` is internal context for logs.
 * Tests assert on `code`, never on message text.
 */
export const ERROR_CODES = [
  'ERR_INVALID_ARGUMENT', // bad CLI argument, API body, config value
  'ERR_INVALID_CONFIG', // broken config file (CNI conf, state dir contents)
  'ERR_PROTOCOL', // malformed bytes from the network
  'ERR_FRAME_TOO_LARGE', // a frame over the negotiated limit
  'ERR_VERSION_MISMATCH', // no common protocol version with a peer
  'ERR_AUTH_FAILED', // password mismatch (or one side has none)
  'ERR_HANDSHAKE_TIMEOUT', // a peer did not finish the handshake in time
  'ERR_HEARTBEAT_TIMEOUT', // an established peer went silent
  'ERR_CONNECTION_CLOSED', // the other end closed or reset
  'ERR_DUPLICATE_CONNECTION', // a second connection to a peer we already have
  'ERR_SELF_CONNECTION', // dialled ourselves
  'ERR_RANGE_MISMATCH', // IPAM: peers disagree on the allocation range
  'ERR_FORBIDDEN', // the caller may not do this here (a mutating API call over TCP, a non-root peer on the local socket)
  'ERR_NOT_FOUND',
  'ERR_CONFLICT',
  'ERR_EXHAUSTED', // no address space left
  'ERR_UNAVAILABLE', // daemon not running, subsystem not ready
  'ERR_TIMEOUT',
  'ERR_OS_COMMAND', // an ip/nft/bridge call failed
  'ERR_STORAGE', // the state directory refused a write: disk full, read-only, I/O error
  'ERR_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface LoomErrorOptions {
  cause?: unknown;
  /** Internal context for logs; never shown as the user message. */
  detail?: Record<string, unknown>;
}

/** Marks every LoomError, whichever copy of this module made it (see LoomError's instanceof). */
const LOOM_ERROR = Symbol.for('loom.LoomError');

export class LoomError extends Error {
  override readonly name = 'LoomError';
  readonly code: ErrorCode;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: LoomErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options.detail;
    Object.defineProperty(this, LOOM_ERROR, { value: true });
  }

  /**
   * `err instanceof LoomError` holds for a LoomError made by any copy of this module: the CLI's
   * start-up bundle (scripts/build-cli.mjs) has its own copy, and the modules it loads later
   * throw theirs. Subclasses keep the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== LoomError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[LOOM_ERROR] === true;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isLoomError(err: unknown, code?: ErrorCode): err is LoomError {
  return err instanceof LoomError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a LoomError, keeping an existing code. */
export function toLoomError(err: unknown, fallback: ErrorCode = 'ERR_INTERNAL'): LoomError {
  if (err instanceof LoomError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LoomError(fallback, message, { cause: err });
}
