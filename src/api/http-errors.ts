import type { ErrorCode } from '../core/errors.js';
import { LoomError, toLoomError } from '../core/errors.js';

/**
 * The one table from error code to HTTP status. A `Record` over every code, so adding a code to
 * core/errors.ts without deciding its status here fails to compile.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_INVALID_CONFIG: 400,
  ERR_PROTOCOL: 502,
  ERR_FRAME_TOO_LARGE: 413, // also: a request body over the API's limit
  ERR_VERSION_MISMATCH: 409,
  ERR_AUTH_FAILED: 403,
  ERR_HANDSHAKE_TIMEOUT: 504,
  ERR_HEARTBEAT_TIMEOUT: 504,
  ERR_CONNECTION_CLOSED: 502,
  ERR_DUPLICATE_CONNECTION: 409,
  ERR_SELF_CONNECTION: 400,
  ERR_RANGE_MISMATCH: 409,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_EXHAUSTED: 507,
  ERR_UNAVAILABLE: 503,
  ERR_TIMEOUT: 504,
  ERR_OS_COMMAND: 500,
  ERR_STORAGE: 507,
  ERR_INTERNAL: 500,
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/**
 * Status and body for anything a handler threw. Errors that are not LoomErrors are bugs: their
 * text may carry internals, so the client only sees a generic message (the daemon logs the rest).
 */
export function errorResponse(err: unknown): { status: number; body: ErrorBody; loomError: LoomError } {
  const loomError = err instanceof LoomError ? err : toLoomError(err);
  const message = err instanceof LoomError ? loomError.message : 'internal error (see the daemon log)';
  return { status: HTTP_STATUS_BY_CODE[loomError.code], body: { error: { code: loomError.code, message } }, loomError };
}
