import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { readJsonBody, MAX_BODY_BYTES } from './body.js';
import { errorResponse } from './http-errors.js';
import { RouteTable, type ApiRequest, type ApiResponse, type HttpMethod, type RouteHandler } from './route-table.js';
import { ROUTER_ROUTES } from './router-api.js';
import { LOOM_VERSION } from './version.js';

export interface ApiServerComponents {
  logger: Logger;
}

export interface ApiServerInit {
  /** Address to bind; default 127.0.0.1 (the API has no authentication, so never a public address by default). */
  host?: string;
  /** Port to bind; 0 picks a free one (tests). Default 6784. */
  port?: number;
  /** Request body limit in bytes; default 1 MiB. */
  maxBodyBytes?: number;
}

export type ReportSection = () => unknown;

/** A part of `/metrics`: Prometheus text exposition, sampled when called. */
export interface MetricsSource {
  render(): Promise<string>;
}

/**
 * The daemon's local HTTP API. Subsystems add endpoints with `route` and parts of `/report` with
 * `registerReportSection` before or after `listen`. `/report` and `/healthz` are built in.
 */
export class ApiServer {
  private readonly routes = new RouteTable();
  private readonly sections = new Map<string, ReportSection>();
  private readonly metricsSources = new Map<string, MetricsSource>();
  private readonly logger: Logger;
  private readonly host: string;
  private readonly port: number;
  private readonly maxBodyBytes: number;
  private server: Server | null = null;

  constructor(components: ApiServerComponents, init: ApiServerInit = {}) {
    this.logger = components.logger;
    this.host = init.host ?? '127.0.0.1';
    this.port = init.port ?? 6784;
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

  /** Binds and resolves with the bound address. Rejects with ERR_UNAVAILABLE if the address is taken. */
  async listen(): Promise<{ host: string; port: number }> {
    if (this.server) throw new LoomError('ERR_CONFLICT', 'API server already listening');
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new LoomError('ERR_UNAVAILABLE', `cannot listen on ${this.host}:${this.port}: ${err.code ?? err.message}`, { cause: err })),
      );
      server.listen(this.port, this.host, () => resolve());
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  /** Stops accepting and drops open connections. Idempotent. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://loom.invalid');
    const method = req.method ?? 'GET';
    let parsed: Promise<unknown> | null = null;
    let response: ApiResponse;
    try {
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
      if (status >= 500) this.logger.error({ err, code: loomError.code, path: url.pathname }, 'API request failed');
      else this.logger.debug({ code: loomError.code, path: url.pathname }, loomError.message);
      // An unread or partly read body would otherwise keep the socket half-open.
      if (status === 413) res.setHeader('Connection', 'close');
      response = { status, json: body };
    }
    this.send(res, response);
  }

  private send(res: ServerResponse, response: ApiResponse): void {
    const status = response.status ?? 200;
    const afterSend = response.afterSend;
    if (afterSend) res.once('finish', () => setImmediate(afterSend));
    if ('json' in response) {
      const payload = JSON.stringify(response.json) + '\n';
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(payload) });
      res.end(payload);
    } else {
      res.writeHead(status, { 'Content-Type': response.contentType, 'Content-Length': Buffer.byteLength(response.text) });
      res.end(response.text);
    }
  }
}
