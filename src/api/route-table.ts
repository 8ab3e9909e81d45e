import { LoomError } from '../core/errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * The methods the router's TCP listener serves (status, report, metrics, lists, lookups). The
 * contract of every route: a GET changes nothing. Any other method changes state and is served
 * only on the local socket, so a route added with POST, PUT or DELETE is refused over TCP without
 * anyone listing it (src/api/server.ts).
 */
export const READ_ONLY_METHODS: ReadonlySet<string> = new Set<HttpMethod>(['GET']);

/** Whether a request with this method may be served on the read-only (TCP) listener. */
export function isReadOnlyMethod(method: string): boolean {
  return READ_ONLY_METHODS.has(method);
}

/** What a handler sees. `body()` reads and parses the JSON body at most once. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The values of the route's `:name` segments, decoded (empty for an exact path). */
  readonly params: Readonly<Record<string, string>>;
  body(): Promise<unknown>;
}

/** A handler and the path parameters it was matched with. */
export interface RouteMatch {
  readonly handler: RouteHandler;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * The open body of a streamed answer (server-sent events): the server has sent the headers; the
 * handler's `stream` writes chunks until it calls `end` or the client goes away (`onClose`, also
 * called when the server closes). `buffered` is what the OS has not taken yet (a slow reader).
 */
export interface ResponseStream {
  write(chunk: string): void;
  end(): void;
  onClose(listener: () => void): void;
  buffered(): number;
}

/**
 * A JSON value (serialised by the server), raw text with its content type (e.g. /metrics), or a
 * stream (`stream` is called once with the open body, e.g. `text/event-stream`).
 * `afterSend` runs once the response has been handed to the OS (e.g. shut down after `/stop`).
 */
export type ApiResponse = ({ json: unknown } | { text: string; contentType: string; headers?: Readonly<Record<string, string>> } | { stream: (out: ResponseStream) => void; contentType: string }) & {
  status?: number;
  afterSend?: () => void;
};

export type RouteHandler = (req: ApiRequest) => Promise<ApiResponse> | ApiResponse;

const PARAM_RE = /^:([A-Za-z][A-Za-z0-9]*)$/;

/**
 * Method+path matching. Paths are exact ("/containers/attach") or have whole-segment parameters
 * ("/containers/:id", one non-empty segment each). An exact path wins over a pattern for its
 * method, so DELETE /containers/attach still reaches /containers/:id. Subsystems add their
 * routes at start-up; a duplicate is a programming error.
 */
export class RouteTable {
  private readonly routes = new Map<string, Map<string, RouteHandler>>();
  /** Paths with parameters, split into segments (a parameter as ":name"). */
  private readonly patterns: Array<{ path: string; segments: string[] }> = [];

  add(method: HttpMethod, path: string, handler: RouteHandler): void {
    if (!path.startsWith('/')) throw new LoomError('ERR_INTERNAL', `route path must start with "/": ${path}`);
    const segments = path.split('/').slice(1);
    if (segments.some((s) => s.startsWith(':') && !PARAM_RE.test(s))) throw new LoomError('ERR_INTERNAL', `bad route parameter in ${path}`);
    let byMethod = this.routes.get(path);
    if (!byMethod) {
      this.routes.set(path, (byMethod = new Map<string, RouteHandler>()));
      if (segments.some((s) => s.startsWith(':'))) this.patterns.push({ path, segments });
    }
    if (byMethod.has(method)) throw new LoomError('ERR_CONFLICT', `route ${method} ${path} registered twice`);
    byMethod.set(method, handler);
  }

  /** The handler and its parameters, or ERR_NOT_FOUND naming the methods the path does accept. */
  match(method: string, path: string): RouteMatch {
    const exact = this.routes.get(path);
    const handler = exact?.get(method);
    if (handler) return { handler, params: {} };
    const accepted = new Set(exact?.keys());
    for (const pattern of this.patterns) {
      const params = matchSegments(pattern.segments, path);
      if (!params) continue;
      const byMethod = this.routes.get(pattern.path)!;
      const h = byMethod.get(method);
      if (h) return { handler: h, params };
      for (const m of byMethod.keys()) accepted.add(m);
    }
    if (accepted.size === 0) throw new LoomError('ERR_NOT_FOUND', `no such endpoint: ${path.slice(0, 100)}`);
    throw new LoomError('ERR_NOT_FOUND', `${path.slice(0, 100)} does not accept ${method.slice(0, 10)} (use ${[...accepted].join(', ')})`);
  }

  /** The handler alone (see `match`). */
  resolve(method: string, path: string): RouteHandler {
    return this.match(method, path).handler;
  }

  list(): Array<{ method: string; path: string }> {
    const out: Array<{ method: string; path: string }> = [];
    for (const [path, byMethod] of this.routes) for (const method of byMethod.keys()) out.push({ method, path });
    return out;
  }
}

/** The parameters when `path` (percent-encoded, as in the URL) has the pattern's shape; null otherwise. */
function matchSegments(pattern: readonly string[], path: string): Record<string, string> | null {
  const parts = path.split('/').slice(1);
  if (parts.length !== pattern.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const want = pattern[i]!;
    const got = parts[i]!;
    if (!want.startsWith(':')) {
      if (want !== got) return null;
      continue;
    }
    if (got.length === 0) return null;
    try {
      params[want.slice(1)] = decodeURIComponent(got);
    } catch {
      throw new LoomError('ERR_INVALID_ARGUMENT', `bad percent-encoding in ${path.slice(0, 100)}`);
    }
  }
  return params;
}
