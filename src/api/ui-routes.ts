/**
 * Serves the event log and the live page (contract: ./events-api.ts). The page's files are
 * plain HTML, CSS and ES-module JavaScript shipped in the package's `ui/` folder (no build step,
 * nothing from the internet); they are read once, on first request, and served from memory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoomEvent } from '../core/events.js';
import { LoomError } from '../core/errors.js';
import { EVENT_ROUTES, eventQuerySchema } from './events-api.js';
import type { ApiServer } from './server.js';
import { SSE_CONTENT_TYPE, type SseHub } from './sse-hub.js';
import { parseWith } from './validate.js';

/** What the routes read the events from (the daemon's EventLog). */
export interface EventReader {
  list(options?: { afterSeq?: number; limit?: number }): LoomEvent[];
}

/** The page's files: name -> content type. Anything else under /ui/ is ERR_NOT_FOUND. */
const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'model.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * The page may load only its own files and open its own stream; no inline script, no frames.
 * (Inline styles are allowed for the SVG's computed positions.)
 */
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

/** The `ui/` folder of the package this module belongs to (dist/src/api -> ../../../ui, or src/api -> ../../ui under tsx). */
export function defaultUiDir(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (let depth = 0; depth < 5; depth++) {
    if (existsSync(join(dir, 'ui', 'index.html')) && existsSync(join(dir, 'package.json'))) return join(dir, 'ui');
    dir = dirname(dir);
  }
  return join(dirname(from), '..', '..', '..', 'ui');
}

export interface UiRoutesOptions {
  events: EventReader;
  hub: SseHub;
  /** Where the page's files are; default the package's `ui/`. */
  uiDir?: string;
}

export function registerUiRoutes(server: Pick<ApiServer, 'route'>, options: UiRoutesOptions): void {
  const uiDir = options.uiDir ?? defaultUiDir();
  const cache = new Map<string, string>();
  const asset = (name: string): { text: string; contentType: string; headers: Record<string, string> } => {
    const contentType = ASSETS[name];
    if (contentType === undefined) throw new LoomError('ERR_NOT_FOUND', `no such file of the page: ${name.slice(0, 60)}`);
    let text = cache.get(name);
    if (text === undefined) {
      try {
        text = readFileSync(join(uiDir, name), 'utf8');
      } catch (err) {
        throw new LoomError('ERR_NOT_FOUND', `the page's file ${name} is missing from ${uiDir} (a broken install?)`, { cause: err });
      }
      cache.set(name, text);
    }
    return { text, contentType, headers: PAGE_HEADERS };
  };

  const { list, page, asset: assetRoute, stream } = EVENT_ROUTES;
  server.route(list.method, list.path, (req) => {
    const raw: Record<string, unknown> = {};
    for (const key of ['after', 'limit'] as const) {
      const v = req.query.get(key);
      if (v !== null) raw[key] = /^\d{1,15}$/.test(v) ? Number(v) : v;
    }
    const q = parseWith(eventQuerySchema, raw, 'events query');
    return { json: { events: options.events.list({ ...(q.after === undefined ? {} : { afterSeq: q.after }), ...(q.limit === undefined ? {} : { limit: q.limit }) }) } };
  });
  server.route(page.method, page.path, () => asset('index.html'));
  server.route(assetRoute.method, assetRoute.path, (req) => asset(req.params['asset'] ?? ''));
  server.route(stream.method, stream.path, () => {
    if (!options.hub.hasRoom()) throw new LoomError('ERR_UNAVAILABLE', 'too many live page clients; close one and retry');
    return { contentType: SSE_CONTENT_TYPE, stream: (out) => void options.hub.connect(out) };
  });
}
