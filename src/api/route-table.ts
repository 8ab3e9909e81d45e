import { LoomError } from '../core/errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** What a handler sees. `body()` reads and parses the JSON body at most once. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  body(): Promise<unknown>;
}

/**
 * A JSON value (serialised by the server) or raw text with its content type (e.g. /metrics).
 * `afterSend` runs once the response has been handed to the OS (e.g. shut down after `/stop`).
 */
export type ApiResponse = ({ json: unknown } | { text: string; contentType: string }) & { status?: number; afterSend?: () => void };

export type RouteHandler = (req: ApiRequest) => Promise<ApiResponse> | ApiResponse;

/**
 * Exact method+path matching: the API is small and flat, so no patterns. Later subsystems
 * (IPAM, DNS, containers) add their routes here at start-up; a duplicate is a programming error.
 */
export class RouteTable {
  private readonly routes = new Map<string, Map<string, RouteHandler>>();

  add(method: HttpMethod, path: string, handler: RouteHandler): void {
    if (!path.startsWith('/')) throw new LoomError('ERR_INTERNAL', `route path must start with "/": ${path}`);
    let byMethod = this.routes.get(path);
    if (!byMethod) this.routes.set(path, (byMethod = new Map<string, RouteHandler>()));
    if (byMethod.has(method)) throw new LoomError('ERR_CONFLICT', `route ${method} ${path} registered twice`);
    byMethod.set(method, handler);
  }

  /** The handler, or ERR_NOT_FOUND naming the methods the path does accept. */
  resolve(method: string, path: string): RouteHandler {
    const byMethod = this.routes.get(path);
    if (!byMethod) throw new LoomError('ERR_NOT_FOUND', `no such endpoint: ${path.slice(0, 100)}`);
    const handler = byMethod.get(method);
    if (!handler) throw new LoomError('ERR_NOT_FOUND', `${path} does not accept ${method.slice(0, 10)} (use ${[...byMethod.keys()].join(', ')})`);
    return handler;
  }

  list(): Array<{ method: string; path: string }> {
    const out: Array<{ method: string; path: string }> = [];
    for (const [path, byMethod] of this.routes) for (const method of byMethod.keys()) out.push({ method, path });
    return out;
  }
}
