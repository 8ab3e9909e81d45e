/**
 * The HTTP transport of the daemon's local API, free of any schema library: JSON (or text, or an
 * event stream) in and out over the router's abstract unix socket or its read-only TCP address.
 * Every failure is a LoomError: the daemon's own code when it answered with one, ERR_UNAVAILABLE
 * when nothing listens, ERR_TIMEOUT, or ERR_PROTOCOL for an answer that is not ours. The typed
 * clients stand on it: the full one (src/client, zod schemas checking every answer) and the light
 * one of the CLI's hot commands (./light-client.ts).
 */
import { request, type ClientRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { ERROR_CODES, LoomError, type ErrorCode } from '../core/errors.js';
import { DEFAULT_API_SOCKET, parseApiSocketName } from '../core/endpoints.js';
import { parseHostPort } from '../core/host-port.js';
import { SseParser, type SseMessage } from './sse-parser.js';

const NOT_RUNNING = 'is the router running? (loom launch)';

/** The header that names the daemon's build on every JSON answer (src/core/build-id.ts). */
export const BUILD_HEADER = 'x-loom-build';

export interface ApiClientInit {
  /**
   * "host:port" of the router's read-only TCP API. Given without `socket`, every call goes there:
   * reads are answered, changes are refused (ERR_FORBIDDEN) by the router.
   */
  address?: string;
  /**
   * Abstract name of the router's local socket (the whole API, for root). Default, when no
   * `address` is given either: DEFAULT_API_SOCKET, the router of this network namespace. When
   * given, every call goes there (and `address` is not used).
   */
  socket?: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
}

/** Where a client sends its calls: the local socket (everything) or a TCP address (reads only). */
export type ApiEndpoint = { kind: 'socket'; name: string } | { kind: 'tcp'; host: string; port: number };

/** The endpoint an ApiClientInit picks (see its fields); validates the address. */
export function apiEndpoint(init: Pick<ApiClientInit, 'address' | 'socket'>): ApiEndpoint {
  if (init.socket !== undefined) {
    return { kind: 'socket', name: parseApiSocketName(init.socket) };
  }
  if (init.address === undefined) return { kind: 'socket', name: DEFAULT_API_SOCKET };
  const { host, port } = parseHostPort(init.address, 'API address');
  return { kind: 'tcp', host, port: port ?? 6784 };
}

/** A JSON answer and the build of the daemon that sent it (undefined when it named none). */
export interface JsonAnswer {
  body: unknown;
  build: string | undefined;
}

export class HttpTransport {
  /** What errors name: "host:port", or "@name" for the local socket. */
  readonly address: string;
  readonly endpoint: ApiEndpoint;
  private readonly timeoutMs: number;

  constructor(init: ApiClientInit = {}) {
    this.endpoint = apiEndpoint(init);
    this.address = this.endpoint.kind === 'socket' ? `@${this.endpoint.name}` : init.address!;
    this.timeoutMs = init.timeoutMs ?? 10_000;
  }

  /** For later subsystems' endpoints: JSON in, JSON out, errors as above. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.callJson(method, path, body)).body as T;
  }

  /** `call`, and the build the daemon named (the light client trusts only its own build's answers). */
  async callJson(method: string, path: string, body?: unknown): Promise<JsonAnswer> {
    const { status, text, build } = await this.raw(method, path, body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new LoomError('ERR_PROTOCOL', `daemon at ${this.address} answered ${status} with a body that is not JSON`, { cause: err });
    }
    if (status >= 400) throw errorFromBody(parsed, status);
    return { body: parsed, build };
  }

  /** A text answer (e.g. /metrics, POST /cni/exec); errors as `call`. */
  async callText(method: string, path: string, body?: unknown): Promise<string> {
    const { status, text } = await this.raw(method, path, body);
    if (status < 400) return text;
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not our error body: errorFromBody reports the status
    }
    throw errorFromBody(parsed, status);
  }

  /**
   * Opens a GET event stream (server-sent events) and calls `onMessage` for each message until
   * `close` is called or the daemon ends it (`done` resolves then; rejects on a failure to open,
   * an error answer or a stream that is not ours). No timeout once the headers have come.
   */
  openStream(path: string, onMessage: (message: SseMessage) => void): { close(): void; done: Promise<void> } {
    let req: ClientRequest | null = null;
    let closed = false;
    // Once the stream is open, its end by either side (even a reset) is the end of the stream, not a failure.
    let streaming = false;
    const done = new Promise<void>((resolve, reject) => {
      req = request(
        {
          ...this.connection(),
          method: 'GET',
          path,
          timeout: this.timeoutMs,
          headers: { Accept: 'text/event-stream' },
        },
        (res) => {
          res.setEncoding('utf8');
          if ((res.statusCode ?? 0) >= 400 || !String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
            const chunks: string[] = [];
            res.on('data', (c: string) => chunks.push(c));
            res.on('end', () => {
              let parsed: unknown = null;
              try {
                parsed = JSON.parse(chunks.join(''));
              } catch {
                // not our error body
              }
              reject((res.statusCode ?? 0) >= 400 ? errorFromBody(parsed, res.statusCode ?? 0) : new LoomError('ERR_PROTOCOL', `daemon at ${this.address} answered ${path} with something other than an event stream`));
            });
            return;
          }
          req?.setTimeout(0);
          streaming = true;
          const parser = new SseParser(onMessage);
          res.on('data', (c: string) => {
            try {
              parser.push(c);
            } catch (err) {
              // Not our stream (or a message past the limit): fail, and hang up.
              reject(err instanceof LoomError ? err : new LoomError('ERR_PROTOCOL', `bad event stream from ${this.address}`, { cause: err }));
              req?.destroy();
            }
          });
          res.on('end', () => resolve());
          res.on('close', () => resolve());
          res.on('error', () => resolve());
        },
      );
      req.on('timeout', () => req?.destroy(new LoomError('ERR_TIMEOUT', `daemon at ${this.address} did not answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => (closed || streaming ? resolve() : reject(transportError(err, this.address))));
      req.end();
    });
    return {
      close: () => {
        closed = true;
        req?.destroy();
      },
      done,
    };
  }

  /** The JSON data of a stream's first message (typed clients of `stream: true` routes). */
  async firstStreamMessage(path: string): Promise<unknown> {
    let first: SseMessage | null = null;
    const stream = this.openStream(path, (m) => {
      if (first !== null) return;
      first = m;
      stream.close();
    });
    await stream.done;
    const message = first as SseMessage | null;
    if (message === null) throw new LoomError('ERR_PROTOCOL', `daemon at ${this.address} ended ${path} before its first message`);
    try {
      return JSON.parse(message.data);
    } catch (err) {
      throw new LoomError('ERR_PROTOCOL', `daemon at ${this.address} sent a message on ${path} that is not JSON`, { cause: err });
    }
  }

  /**
   * How a request reaches the router: a connection of its own, made here, with no Agent. An Agent
   * (also `agent: false`, which makes a new one) works out a TLS server name for every request with
   * `net.isIP`, whose first call compiles the IPv6 pattern: ~5 ms of every CLI call (profiled).
   * One request per connection either way (no keep-alive): the CLI makes one or two.
   */
  private connection(): { createConnection: () => Socket } {
    const endpoint = this.endpoint;
    // The idle timeout as an Agent would set it (net's `timeout`): the request's 'timeout' event comes from the socket's.
    const timeout = this.timeoutMs;
    return { createConnection: () => (endpoint.kind === 'socket' ? connect({ path: '\0' + endpoint.name, timeout }) : connect({ host: endpoint.host, port: endpoint.port, timeout })) };
  }

  private raw(method: string, path: string, body?: unknown): Promise<{ status: number; text: string; build: string | undefined }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          ...this.connection(),
          method,
          path,
          timeout: this.timeoutMs,
          headers: {
            Accept: 'application/json',
            ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const build = res.headers[BUILD_HEADER];
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), build: typeof build === 'string' ? build : undefined });
          });
          res.on('error', (err) => reject(transportError(err, this.address)));
        },
      );
      req.on('timeout', () => req.destroy(new LoomError('ERR_TIMEOUT', `daemon at ${this.address} did not answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(transportError(err, this.address)));
      req.end(payload);
    });
  }
}

function transportError(err: unknown, address: string): LoomError {
  if (err instanceof LoomError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EADDRNOTAVAIL' || code === 'ECONNRESET')
    return new LoomError('ERR_UNAVAILABLE', `cannot reach the router API at ${address}: ${NOT_RUNNING}`, { cause: err });
  return new LoomError('ERR_UNAVAILABLE', `cannot reach the router API at ${address} (${code ?? String(err)}): ${NOT_RUNNING}`, { cause: err });
}

function errorFromBody(body: unknown, status: number): LoomError {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = ERROR_CODES.includes(error?.code as ErrorCode) ? (error!.code as ErrorCode) : 'ERR_INTERNAL';
  const message = typeof error?.message === 'string' ? error.message : `daemon answered HTTP ${status}`;
  return new LoomError(code, message, { detail: { httpStatus: status } });
}
