/**
 * How a route's request travels: fields named by the path's `:name` segments go into the path,
 * the rest in the body (POST, DELETE) or the query (GET). Shared by the typed clients
 * (./contract.ts and ./light-client.ts); free of any schema library.
 */
import { LoomError } from '../core/errors.js';

/**
 * Puts the request's fields named by the path's `:name` segments into the path (percent-encoded)
 * and returns the other fields (undefined when none are left).
 */
function fillPath(path: string, request: unknown): { path: string; rest: unknown } {
  if (!path.includes('/:')) return { path, rest: request };
  const rest: Record<string, unknown> = { ...(request as Record<string, unknown> | undefined) };
  const filled = path.replace(/\/:([A-Za-z][A-Za-z0-9]*)/g, (_, name: string) => {
    const value = rest[name];
    if (typeof value !== 'string' && typeof value !== 'number') throw new LoomError('ERR_INVALID_ARGUMENT', `${path} needs "${name}"`);
    delete rest[name];
    return `/${encodeURIComponent(String(value))}`;
  });
  return { path: filled, rest: Object.keys(rest).length === 0 ? undefined : rest };
}

function withQuery(path: string, request: unknown): string {
  if (request === undefined || request === null) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(request as Record<string, unknown>)) if (value !== undefined) params.set(key, typeof value === 'string' ? value : JSON.stringify(value));
  const query = params.toString();
  return query === '' ? path : `${path}?${query}`;
}

/** The path (with the query, for GET) and the body (none for GET) of one call of `route`. */
export function routeRequest(route: { readonly method: string; readonly path: string }, request: unknown): { path: string; body: unknown } {
  const { path, rest } = fillPath(route.path, request);
  return route.method === 'GET' ? { path: withQuery(path, rest), body: undefined } : { path, body: rest };
}
