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
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks, size).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new LoomError('ERR_INVALID_ARGUMENT', 'request body is not valid JSON', { cause: err });
  }
}

function tooLarge(limit: number): LoomError {
  return new LoomError('ERR_FRAME_TOO_LARGE', `request body over ${limit} bytes`);
}
