import type { IncomingMessage } from 'node:http';
import { LoomError } from '../core/errors.js';

/** Largest request body the API accepts. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads a JSON request body into `unknown`, refusing more than `limit` bytes before buffering
 * them (Content-Length is checked first, then the running count). An empty body is `undefined`.
 * Throws ERR_FRAME_TOO_LARGE (413) or ERR_INVALID_ARGUMENT (400, bad JSON).
 */
export async function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const body = await readBody(req, limit);
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new LoomError('ERR_INVALID_ARGUMENT', 'request body is not valid JSON', { cause: err });
  }
}

/**
 * The raw body, by 'data'/'end' events rather than an async iterator: on the allocation path
 * (thousands of requests a second) the iterator's per-chunk promises were a visible cost.
 * Stops reading (and rejects) as soon as the running count passes `limit`.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new LoomError('ERR_CONNECTION_CLOSED', 'request body not received', { cause: err }));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function tooLarge(limit: number): LoomError {
  return new LoomError('ERR_FRAME_TOO_LARGE', `request body over ${limit} bytes`);
}
