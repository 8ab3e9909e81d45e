/**
 * The few Kubernetes API calls Loom makes, over node:http/https (no client library: the
 * official @kubernetes/client-node 2.x needs Node 22's types and pulls in ~20 packages for what
 * is here a list, a watch and three ConfigMap verbs).
 *
 * Contracts:
 * - `request` resolves with any HTTP status (the caller decides what 404/409/410 mean) and the
 *   parsed JSON body (null when the body is empty or not JSON); it rejects only when no answer
 *   came (connection refused, reset, timeout) with ERR_UNAVAILABLE.
 * - `watch` streams one JSON object per line to `onEvent` until the server ends the response
 *   (resolves), the connection breaks (rejects ERR_CONNECTION_CLOSED) or `signal` aborts
 *   (resolves). A non-200 answer rejects with a `KubeStatusError` carrying the status (410 Gone
 *   is how a server says the resourceVersion is too old).
 * - Every body and every watch line is bounded (MAX_BODY_BYTES); the token file is read on each
 *   request, because projected service-account tokens rotate.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { LoomError } from '../core/errors.js';

export const MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface KubeResponse {
  status: number;
  body: unknown;
}

/** The server answered a watch with something other than 200. */
export class KubeStatusError extends LoomError {
  readonly status: number;
  constructor(status: number, body: unknown) {
    super(status === 410 ? 'ERR_CONFLICT' : 'ERR_UNAVAILABLE', `Kubernetes API answered ${status}: ${statusMessage(body)}`, { detail: { status } });
    this.status = status;
  }
}

export interface KubeClientInit {
  /** "http(s)://host:port" (launch-options.ts `parseApiUrl`). */
  apiUrl: string;
  tokenFile?: string | undefined;
  caFile?: string | undefined;
  /**
   * Without caFile: a PEM file whose certificates are trusted beside Node's bundled ones (the
   * user's NODE_EXTRA_CA_CERTS, which a background-launched daemon's Node did not load). A file
   * that cannot be read is skipped, as Node skips it.
   */
  extraCaFile?: string | undefined;
  /** For one request (not a watch, whose length the server bounds with timeoutSeconds). */
  requestTimeoutMs?: number;
  /**
   * A watch that has sent nothing (no event, no bookmark) for this long is taken as dead and
   * rejected with ERR_TIMEOUT, so a half-open connection cannot hold the watcher forever.
   * Default 10 minutes: longer than the watches we ask for (300 s) plus the server's slack.
   */
  watchIdleTimeoutMs?: number;
}

/** Node's bundled CAs and the PEM certificates of `file`; undefined (Node's defaults) when there is no file or it cannot be read. */
export function withBundledCas(file: string | undefined): string[] | undefined {
  if (file === undefined) return undefined;
  let extra: string;
  try {
    extra = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return [...tls.rootCertificates, extra];
}

export interface KubeApi {
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<KubeResponse>;
  watch(path: string, onEvent: (event: unknown) => void, signal: AbortSignal): Promise<void>;
}

export class KubeClient implements KubeApi {
  private readonly url: URL;
  private readonly tokenFile: string | undefined;
  private readonly ca: Buffer | string[] | undefined;
  private readonly requestTimeoutMs: number;
  private readonly watchIdleTimeoutMs: number;
  private readonly agent: http.Agent;
  /** Requests and watches in flight, destroyed by `close`. */
  private readonly inFlight = new Set<http.ClientRequest>();
  private closed = false;

  constructor(init: KubeClientInit) {
    this.url = new URL(init.apiUrl);
    this.tokenFile = init.tokenFile;
    this.ca = init.caFile === undefined ? withBundledCas(init.extraCaFile) : readFileSync(init.caFile);
    this.requestTimeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.watchIdleTimeoutMs = init.watchIdleTimeoutMs ?? 10 * 60_000;
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...(this.ca ? { ca: this.ca } : {}) }) : new http.Agent({ keepAlive: true });
  }

  /** Ends every request and watch in flight (they reject with ERR_UNAVAILABLE) and closes kept-alive sockets. Idempotent. */
  close(): void {
    this.closed = true;
    for (const req of this.inFlight) req.destroy(new LoomError('ERR_UNAVAILABLE', 'Kubernetes client closed'));
    this.inFlight.clear();
    this.agent.destroy();
  }

  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<KubeResponse> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = this.send(method, path, payload, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(new LoomError('ERR_PROTOCOL', `Kubernetes API answer over ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks).toString('utf8')) }));
        res.on('error', (err) => reject(unavailable(method, path, err)));
      });
      req.setTimeout(this.requestTimeoutMs, () => req.destroy(new LoomError('ERR_TIMEOUT', `Kubernetes API did not answer ${method} ${path} within ${this.requestTimeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof LoomError ? err : unavailable(method, path, err)));
      req.end(payload);
    });
  }

  watch(path: string, onEvent: (event: unknown) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return resolve();
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (err === undefined || signal.aborted) resolve();
        else reject(err);
      };
      const onAbort = (): void => {
        req.destroy();
        finish();
      };
      const req = this.send('GET', path, undefined, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
          res.on('end', () => finish(new KubeStatusError(res.statusCode ?? 0, parseJson(Buffer.concat(chunks).toString('utf8')))));
          res.on('error', () => finish(new KubeStatusError(res.statusCode ?? 0, null)));
          return;
        }
        const lines = new LineSplitter(MAX_BODY_BYTES);
        res.on('data', (chunk: Buffer) => {
          try {
            for (const line of lines.push(chunk)) {
              const event = parseJson(line);
              if (event === null) throw new LoomError('ERR_PROTOCOL', 'watch event is not JSON');
              onEvent(event);
            }
          } catch (err) {
            req.destroy();
            finish(err instanceof Error ? err : new LoomError('ERR_INTERNAL', String(err)));
          }
        });
        // A response cut short (server or proxy gone) is 'aborted'/'error'; a watch the server
        // closes at timeoutSeconds ends cleanly.
        res.on('aborted', () => finish(new LoomError('ERR_CONNECTION_CLOSED', 'watch connection dropped')));
        res.on('error', () => finish(new LoomError('ERR_CONNECTION_CLOSED', 'watch connection dropped')));
        res.on('end', () => finish(res.complete ? undefined : new LoomError('ERR_CONNECTION_CLOSED', 'watch connection dropped')));
      });
      signal.addEventListener('abort', onAbort);
      req.setTimeout(this.watchIdleTimeoutMs, () => req.destroy(new LoomError('ERR_TIMEOUT', `watch ${path} silent for ${this.watchIdleTimeoutMs} ms`)));
      req.on('error', (err) => finish(err instanceof LoomError ? err : new LoomError('ERR_CONNECTION_CLOSED', `watch ${path}: ${err.message}`, { cause: err })));
      req.end();
    });
  }

  private send(method: string, path: string, payload: Buffer | undefined, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest {
    if (this.closed) throw new LoomError('ERR_UNAVAILABLE', 'Kubernetes client closed');
    const token = this.token();
    const headers: http.OutgoingHttpHeaders = {
      accept: 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length }),
    };
    const options: https.RequestOptions = { method, hostname: this.url.hostname.replace(/^\[|\]$/g, ''), port: this.url.port, path, headers, agent: this.agent };
    const req = this.url.protocol === 'https:' ? https.request(options, onResponse) : http.request(options, onResponse);
    this.inFlight.add(req);
    req.once('close', () => this.inFlight.delete(req));
    return req;
  }

  private token(): string | undefined {
    if (this.tokenFile === undefined) return undefined;
    try {
      const token = readFileSync(this.tokenFile, 'utf8').trim();
      return token.length > 0 ? token : undefined;
    } catch (err) {
      throw new LoomError('ERR_UNAVAILABLE', `cannot read the Kubernetes token file ${this.tokenFile}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Splits a byte stream into lines (UTF-8, "\n"), refusing a line longer than `max` bytes. */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): string[] {
    const out: string[] = [];
    let from = 0;
    for (let nl = chunk.indexOf(0x0a, from); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
      const piece = chunk.subarray(from, nl);
      const line = this.pending.length === 0 ? piece : Buffer.concat([...this.pending, piece]);
      this.pending = [];
      this.pendingBytes = 0;
      if (line.length > this.max) throw new LoomError('ERR_PROTOCOL', `watch line over ${this.max} bytes`);
      const text = line.toString('utf8').trim();
      if (text.length > 0) out.push(text);
      from = nl + 1;
    }
    if (from < chunk.length) {
      this.pendingBytes += chunk.length - from;
      if (this.pendingBytes > this.max) throw new LoomError('ERR_PROTOCOL', `watch line over ${this.max} bytes`);
      this.pending.push(chunk.subarray(from));
    }
    return out;
  }
}

function parseJson(text: string): unknown {
  if (text.length === 0) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function unavailable(method: string, path: string, err: Error): LoomError {
  return new LoomError('ERR_UNAVAILABLE', `Kubernetes API ${method} ${path}: ${err.message}`, { cause: err });
}

/** The `message` of a Kubernetes Status body, if any. */
export function statusMessage(body: unknown): string {
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') return body.message.slice(0, 200);
  return 'no message';
}
