/**
 * The plugin's way to the router: JSON over plain node:http (no zod, no undici at start-up) on the
 * router's local socket (abstract, in this network namespace; the router serves changes to root
 * only there, and the runtime runs plugins as root), the router's errors turned into CNI codes.
 * One request per call; the connection is not kept.
 */
import { request } from 'node:http';
import { CNI_ERRORS, CniError } from './spec.js';

const TIMEOUT_MS = 60_000;
const MAX_ANSWER = 1024 * 1024;

/** Router error codes (src/core/errors.ts) as CNI codes. */
const CODE_MAP: Readonly<Record<string, number>> = {
  ERR_NOT_FOUND: CNI_ERRORS.UNKNOWN_CONTAINER,
  ERR_INVALID_ARGUMENT: CNI_ERRORS.INVALID_CONFIG,
  ERR_INVALID_CONFIG: CNI_ERRORS.INVALID_CONFIG,
  ERR_UNAVAILABLE: CNI_ERRORS.TRY_AGAIN_LATER,
  ERR_TIMEOUT: CNI_ERRORS.TRY_AGAIN_LATER,
  ERR_EXHAUSTED: CNI_ERRORS.TRY_AGAIN_LATER,
  ERR_STORAGE: CNI_ERRORS.TRY_AGAIN_LATER,
};

/** Thrown when nothing answers at the router's socket: callers decide what that means (STATUS: 50). */
export class RouterUnreachable extends CniError {
  constructor(where: string, cause: string) {
    super(CNI_ERRORS.TRY_AGAIN_LATER, `Loom router not reachable at ${where}`, cause);
  }
}

export interface RouterTransport {
  call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown>;
}

/** The router at the abstract unix socket `socket` (its name, without the leading NUL). */
export function socketTransport(socket: string): RouterTransport {
  const where = `@${socket}`;
  return {
    call(method, path, body) {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = request(
          {
            socketPath: '\0' + socket,
            method,
            path,
            headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
            timeout: TIMEOUT_MS,
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (c: Buffer) => {
              size += c.length;
              if (size <= MAX_ANSWER) chunks.push(c);
            });
            res.on('end', () => {
              let json: unknown;
              try {
                json = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
              } catch {
                reject(new CniError(CNI_ERRORS.ROUTER_FAILED, `router answered ${method} ${path} with a body that is not JSON`));
                return;
              }
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) resolve(json);
              else reject(routerError(json, status));
            });
            res.on('error', (err) => reject(new RouterUnreachable(where, err.message)));
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
        req.on('error', (err) => reject(new RouterUnreachable(where, err.message)));
        req.end(payload);
      });
    },
  };
}

/** A router error body `{error: {code, message}}` as a CniError. */
export function routerError(body: unknown, status: number): CniError {
  const error = typeof body === 'object' && body !== null ? (body as { error?: { code?: unknown; message?: unknown } }).error : undefined;
  const code = typeof error?.code === 'string' ? error.code : '';
  const message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`;
  return new CniError(CODE_MAP[code] ?? CNI_ERRORS.ROUTER_FAILED, message, code === '' ? `HTTP ${status}` : code);
}
