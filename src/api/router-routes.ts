import { LoomError } from '../core/errors.js';
import type { RouterApi } from '../mesh/types.js';
import { parsePeerHostPort } from '../mesh/address.js';
import { createRouterMetrics } from './metrics.js';
import { ROUTER_ROUTES } from './router-api.js';
import type { ApiServer } from './server.js';
import { connectBodySchema, forgetBodySchema, parsePeerTarget, parseWith } from './validate.js';

export interface RouterRoutesOptions {
  /**
   * Called once, after the first `/stop` response has been written, to shut the daemon down.
   * Absent: `/stop` answers ERR_UNAVAILABLE (e.g. an embedded router that the API must not stop).
   */
  onStop?: () => void;
  /** Include Node's process metrics in /metrics (default true). */
  defaultMetrics?: boolean;
}

/** The mesh's endpoints (contract: ./router-api.ts): status, report section "router", connect/forget/stop, and /metrics (the router's and every registered source's). */
export function registerRouterRoutes(server: ApiServer, router: RouterApi, options: RouterRoutesOptions = {}): void {
  const metrics = createRouterMetrics(() => router.status(), { defaultMetrics: options.defaultMetrics ?? true });
  let stopping = false;
  // The router keeps targets as "host:port"; comparing in that spelling makes --replace exact.
  const canonical = (peers: string[]): string[] => {
    const port = router.status().port;
    return peers.map((p) => parsePeerHostPort(parsePeerTarget(p), port));
  };

  server.registerReportSection('router', () => router.status());
  server.registerMetrics('router', metrics);
  const { status, metrics: metricsRoute, connect, forget, stop } = ROUTER_ROUTES;
  server.route(status.method, status.path, () => ({ json: router.status() }));
  server.route(metricsRoute.method, metricsRoute.path, async () => ({ text: await server.renderMetrics(), contentType: metrics.contentType }));

  server.route(connect.method, connect.path, async (req) => {
    const body = parseWith(connectBodySchema, await req.body(), 'connect request');
    const peers = canonical(body.peers);
    if (body.replace) {
      const keep = new Set(peers);
      const drop = router.status().targets.filter((t) => !keep.has(t));
      if (drop.length > 0) router.forget(drop);
    }
    router.connect(peers);
    return { json: { targets: router.status().targets } };
  });

  server.route(forget.method, forget.path, async (req) => {
    const body = parseWith(forgetBodySchema, await req.body(), 'forget request');
    router.forget(canonical(body.peers));
    return { json: { targets: router.status().targets } };
  });

  server.route(stop.method, stop.path, () => {
    const onStop = options.onStop;
    if (!onStop) throw new LoomError('ERR_UNAVAILABLE', 'this router cannot be stopped through the API');
    if (stopping) return { status: 202, json: { stopping: true } };
    stopping = true;
    // After the reply is flushed: the client learns the stop was accepted before the socket goes away.
    return { status: 202, json: { stopping: true }, afterSend: onStop };
  });
}
