import { LoomError } from './errors.js';

/**
 * Where the router's API is by default. Plain constants, free of any parser, so that the CLI can
 * print them in `loom --help` without loading the API's schemas.
 */

/** The full API's abstract socket name in each network namespace (the CLI finds it with no configuration). */
export const DEFAULT_API_SOCKET = 'loom/api';

/** The read-only TCP API (status, report, metrics, lists). */
export const DEFAULT_HTTP_ADDR = '127.0.0.1:6784';

/** The mesh's TCP port (control and gossip); the data ports are derived from it. */
export const DEFAULT_PORT = 6783;

/** Longest abstract socket name: sun_path is 108 bytes, one of them the leading NUL. */
export const MAX_API_SOCKET_BYTES = 107;

/**
 * The name of an abstract unix socket (Linux), without its leading NUL: 1-107 bytes, no NUL.
 * Throws ERR_INVALID_ARGUMENT naming `what`.
 */
export function parseApiSocketName(value: unknown, what = 'API socket name'): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0') || Buffer.byteLength(value) > MAX_API_SOCKET_BYTES) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what} "${String(value).slice(0, 60)}": 1-${MAX_API_SOCKET_BYTES} bytes, no NUL`);
  }
  return value;
}
