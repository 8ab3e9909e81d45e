import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { stampDate } from './http-date-header.js';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { LoomError } from '../core/errors.js';
import { BUILD_ID } from '../core/build-id.js';
import type { Logger } from '../core/logger.js';
import { readJsonBody, MAX_BODY_BYTES } from './body.js';
import { errorResponse, HTTP_STATUS_BY_CODE } from './http-errors.js';
import { isReadOnlyMethod, RouteTable, type ApiRequest, type ApiResponse, type HttpMethod, type RouteHandler } from './route-table.js';
import { ROUTER_ROUTES } from './router-api.js';
import { BUILD_HEADER } from './transport.js';
import { parseApiSocketName } from './validate.js';
import { LOOM_VERSION } from './version.js';

/** The uid of whoever connected to the local socket; throws when it cannot be known (refused then). */
export type PeerUid = (socket: Socket) => number;

export interface ApiServerComponents {
  logger: Logger;
  /**
   * How the local socket learns its peer's uid. Default: SO_PEERCRED (src/os/peer-credentials.ts,
   * loaded with the socket listener only). Tests replace it to play an unprivileged user.
   */
  peerUid?: PeerUid;
}

export interface ApiServerInit {
  /**
   * Address of the read-only TCP listener (GET only: status, report, metrics, lists); default
   * 127.0.0.1 (it has no authentication, so never a public address by default).
   */
  host?: string;
  /** Port to bind; 0 picks a free one (tests). Default 6784. */
  port?: number;
  /**
   * Name of the abstract unix socket (Linux; no leading NUL, no file) that serves the whole API to
   * root only. An abstract name belongs to the network namespace: containers and other hosts
   * cannot reach it. Default null: no socket (the daemon passes its --api-socket, default
   * DEFAULT_API_SOCKET; unit tests pass a name of their own, since they share the root namespace).
   */
  socket?: string | null;
  /**
   * The uids the local socket serves; default root and the daemon's own uid (the same, for a
   * router run as root; a router run by a user serves that user, who owns it anyway).
   */
  allowedUids?: readonly number[];
  /** Request body limit in bytes; default 1 MiB. */
  maxBodyBytes?: number;
}

/** Where the API listens: the read-only TCP address and the local socket's abstract name (null = none). */
export interface ApiListenAddress {
  host: string;
  port: number;
  socket: string | null;
}

/** What the TCP listener says to a mutating call. */
export const TCP_READ_ONLY_MESSAGE = "the router's TCP API is read-only (GET): changes are only accepted on the router's local socket; run loom as root on this host";

export type ReportSection = () => unknown;

/** A part of `/metrics`: Prometheus text exposition, sampled when called. */
export interface MetricsSource {
  render(): Promise<string>;
}

/**
 * The daemon's local HTTP API. Subsystems add endpoints with `route` and parts of `/report` with
 * `registerReportSection` before or after `listen`. `/report` and `/healthz` are built in.
 *
 * Two listeners, one route table:
 * - the local socket (abstract unix socket `socket`): every route, for root (and the daemon's own
 *   uid) only. The peer's uid is read on accept (SO_PEERCRED); anyone else gets a 403 ERR_FORBIDDEN answer and the connection
 *   is closed without their request being parsed (warned once per uid).
 * - TCP `host:port`: the read-only methods only (READ_ONLY_METHODS: GET); anything else is 403
 *   ERR_FORBIDDEN before route matching, so a new mutating route is never served over TCP.
 */
const STORAGE_LOG_INTERVAL_MS = 60_000;

export class ApiServer {
  private readonly routes = new RouteTable();
  private readonly sections = new Map<string, ReportSection>();
  private readonly metricsSources = new Map<string, MetricsSource>();
  private readonly logger: Logger;
  private readonly host: string;
  private readonly port: number;
  private readonly maxBodyBytes: number;
  private readonly socketName: string | null;
  private readonly allowedUids: ReadonlySet<number>;
  private peerUid: PeerUid | null;
  /** Uids already warned about (once each: a loop of refused calls must not flood the log). */
  private readonly refusedUids = new Set<number>();
  /** When an ERR_STORAGE was last logged at error level, and how many failed the same way since. */
  private storageLoggedAt = Number.NEGATIVE_INFINITY;
  private storageSuppressed = 0;
  private storageLoggedReason = '';
  private server: Server | null = null;
  private localServer: Server | null = null;
  private localListener: NetServer | null = null;
  /**
   * Open connections of the local socket. Its HTTP server never listens, so Node does not track
   * them for `closeAllConnections`: `close` destroys these itself instead of waiting for them.
   */
  private readonly localSockets = new Set<Socket>();

  constructor(components: ApiServerComponents, init: ApiServerInit = {}) {
    this.logger = components.logger;
    this.peerUid = components.peerUid ?? null;
    this.host = init.host ?? '127.0.0.1';
    this.port = init.port ?? 6784;
    this.socketName = init.socket ?? null;
    if (this.socketName !== null) parseApiSocketName(this.socketName, 'API socket name');
    this.allowedUids = new Set(init.allowedUids ?? [0, process.getuid?.() ?? 0]);
    this.maxBodyBytes = init.maxBodyBytes ?? MAX_BODY_BYTES;
    const { healthz, report } = ROUTER_ROUTES;
    this.routes.add(healthz.method, healthz.path, () => ({ json: { ok: true } }));
    this.routes.add(report.method, report.path, () => ({ json: this.report() }));
  }

  route(method: HttpMethod, path: string, handler: RouteHandler): void {
    this.routes.add(method, path, handler);
  }

  /** Every method and path registered so far (for the check that each has a contract the client covers). */
  registeredRoutes(): Array<{ method: string; path: string }> {
    return this.routes.list();
  }

  /** Adds `name: section()` to every `/report`. Names are unique; `version` is reserved. */
  registerReportSection(name: string, section: ReportSection): void {
    if (name === 'version' || this.sections.has(name)) throw new LoomError('ERR_CONFLICT', `report section "${name}" already registered`);
    this.sections.set(name, section);
  }

  /**
   * Adds a subsystem's metrics to `/metrics` (served by the router routes). Names are unique;
   * metric names must not repeat across sources (prefix them: loom_dns_...).
   */
  registerMetrics(name: string, source: MetricsSource): void {
    if (this.metricsSources.has(name)) throw new LoomError('ERR_CONFLICT', `metrics "${name}" already registered`);
    this.metricsSources.set(name, source);
  }

  /** Every registered source's exposition, in registration order, one after another. */
  async renderMetrics(): Promise<string> {
    const parts: string[] = [];
    for (const source of this.metricsSources.values()) {
      const text = await source.render();
      if (text.length > 0) parts.push(text.endsWith('\n') ? text : text + '\n');
    }
    return parts.join('');
  }

  report(): Record<string, unknown> {
    const out: Record<string, unknown> = { version: LOOM_VERSION };
    for (const [name, section] of this.sections) out[name] = section();
    return out;
  }

  /**
   * Binds the local socket (when named), then the TCP listener, and resolves with both addresses.
   * Rejects with ERR_UNAVAILABLE if an address is taken (nothing stays bound then).
   */
  async listen(): Promise<ApiListenAddress> {
    if (this.server || this.localListener) throw new LoomError('ERR_CONFLICT', 'API server already listening');
    // The socket first: whoever waits for the TCP API to answer (loom launch) may then use either.
    if (this.socketName !== null) await this.listenLocal(this.socketName);
    const server = createServer((req, res) => void this.handle(req, res, 'tcp'));
    server.keepAliveTimeout = 1000;
    try {
      await listenOn(server, `${this.host}:${this.port}`, (s, done) => s.listen(this.port, this.host, done));
    } catch (err) {
      await this.close();
      throw err;
    }
    this.server = server;
    const addr = server.address() as AddressInfo;
    return { host: addr.address, port: addr.port, socket: this.socketName };
  }

  /** Stops accepting on both listeners and drops open connections. Idempotent. */
  async close(): Promise<void> {
    const server = this.server;
    const listener = this.localListener;
    this.server = null;
    this.localServer = null;
    this.localListener = null;
    const closing: Array<Promise<void>> = [];
    if (server) closing.push(new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    if (listener) closing.push(new Promise<void>((resolve) => listener.close(() => resolve())));
    for (const socket of this.localSockets) socket.destroy();
    await Promise.all(closing);
  }

  /**
   * The abstract socket: a net server that checks each peer's uid, then hands the connection to an
   * HTTP server that never listens itself (`emit('connection')`, as Node documents for this).
   */
  private async listenLocal(name: string): Promise<void> {
    const peerUid = this.peerUid ?? (this.peerUid = await defaultPeerUid());
    const http = createServer((req, res) => void this.handle(req, res, 'local'));
    http.keepAliveTimeout = 1000;
    const listener = createNetServer((socket) => {
      this.localSockets.add(socket);
      socket.once('close', () => this.localSockets.delete(socket));
      const uid = uidOf(peerUid, socket);
      if (uid !== null && this.allowedUids.has(uid)) {
        http.emit('connection', socket);
        return;
      }
      this.refuse(socket, uid);
    });
    await listenOn(listener, `@${name}`, (s, done) => s.listen('\0' + name, done));
    this.localServer = http;
    this.localListener = listener;
  }

  /** A peer that is not allowed: one 403 answer, its request never parsed nor routed, then the connection is closed. */
  private refuse(socket: Socket, uid: number | null): void {
    const key = uid ?? -1;
    if (!this.refusedUids.has(key)) {
      this.refusedUids.add(key);
      this.logger.warn({ uid, socket: this.socketName }, 'refused a local API connection: only root may use the router API socket');
    }
    const payload = JSON.stringify({ error: { code: 'ERR_FORBIDDEN', message: "only root may use the router's API socket" } }) + '\n';
    // Read and drop what they send (closing with unread bytes would reset the connection before
    // they read the answer); they get 2 s to hang up.
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.setTimeout(2000, () => socket.destroy());
    socket.end(`HTTP/1.1 ${HTTP_STATUS_BY_CODE.ERR_FORBIDDEN} Forbidden\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse, via: 'tcp' | 'local'): Promise<void> {
    stampDate(res);
    const url = new URL(req.url ?? '/', 'http://loom.invalid');
    const method = req.method ?? 'GET';
    let parsed: Promise<unknown> | null = null;
    let response: ApiResponse;
    try {
      if (via === 'tcp' && !isReadOnlyMethod(method)) {
        // The body is never read: close the connection after the answer.
        res.setHeader('Connection', 'close');
        throw new LoomError('ERR_FORBIDDEN', TCP_READ_ONLY_MESSAGE);
      }
      const { handler, params } = this.routes.match(method, url.pathname);
      const request: ApiRequest = {
        method,
        path: url.pathname,
        query: url.searchParams,
        params,
        body: () => (parsed ??= readJsonBody(req, this.maxBodyBytes)),
      };
      response = await handler(request);
    } catch (err) {
      const { status, body, loomError } = errorResponse(err);
      if (loomError.code === 'ERR_STORAGE') this.logStorageFailure(loomError, url.pathname);
      else if (status >= 500) this.logger.error({ err, code: loomError.code, path: url.pathname }, 'API request failed');
      else this.logger.debug({ code: loomError.code, path: url.pathname }, loomError.message);
      // An unread or partly read body would otherwise keep the socket half-open.
      if (status === 413) res.setHeader('Connection', 'close');
      response = { status, json: body };
    }
    this.send(res, response);
  }

  /**
   * A refused write in the state directory (disk full, read-only) fails every request that must
   * write until someone frees space: said at error level once a minute per reason (full,
   * read-only...), with how many requests failed the same way in between, not once per request.
   */
  private logStorageFailure(err: LoomError, path: string): void {
    const now = performance.now();
    const errno = err.detail?.['errno'];
    const reason = typeof errno === 'string' ? errno : '';
    if (reason === this.storageLoggedReason && now - this.storageLoggedAt < STORAGE_LOG_INTERVAL_MS) {
      this.storageSuppressed++;
      this.logger.debug({ code: err.code, path }, err.message);
      return;
    }
    this.logger.error({ code: err.code, path, failedSinceLast: this.storageSuppressed, detail: err.detail }, `the state directory refuses writes: ${err.message}; requests that must write fail with ERR_STORAGE until space is freed (the router keeps serving what it has)`);
    this.storageLoggedAt = now;
    this.storageLoggedReason = reason;
    this.storageSuppressed = 0;
  }

  private send(res: ServerResponse, response: ApiResponse): void {
    const status = response.status ?? 200;
    const afterSend = response.afterSend;
    if (afterSend) res.once('finish', () => setImmediate(afterSend));
    if ('json' in response) {
      const payload = JSON.stringify(response.json) + '\n';
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(payload), [BUILD_HEADER]: BUILD_ID });
      res.end(payload);
    } else if ('text' in response) {
      res.writeHead(status, { ...response.headers, 'Content-Type': response.contentType, 'Content-Length': Buffer.byteLength(response.text) });
      res.end(response.text);
    } else {
      // A stream has no length and must not be buffered by a proxy or cached by a browser.
      res.writeHead(status, { 'Content-Type': response.contentType, 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
      res.flushHeaders();
      response.stream({
        write: (chunk) => void res.write(chunk),
        end: () => void res.end(),
        onClose: (listener) => void res.once('close', listener),
        buffered: () => res.writableLength,
      });
    }
  }
}

function listenOn<S extends Server | NetServer>(server: S, where: string, bind: (s: S, done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new LoomError('ERR_UNAVAILABLE', `cannot listen on ${where}: ${err.code ?? err.message}`, { cause: err })));
    bind(server, () => resolve());
  });
}

/** SO_PEERCRED, loaded only when a socket listener starts (koffi stays out of processes that never serve one). */
async function defaultPeerUid(): Promise<PeerUid> {
  const { peerCredentials } = await import('../os/peer-credentials.js');
  return (socket) => peerCredentials(socket).uid;
}

/** The peer's uid, or null when it cannot be read (refused: fail closed). */
function uidOf(peerUid: PeerUid, socket: Socket): number | null {
  try {
    return peerUid(socket);
  } catch {
    return null;
  }
}
