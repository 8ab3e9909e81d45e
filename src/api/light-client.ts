/**
 * A typed client without zod, for the CLI's hot commands (`loom run`, `rm`, `ps`...): loading the
 * schema library and building every route table's schemas cost ~170 ms of each command (issue
 * 14). It has the full typed client's types (TypedClient, from the same route table, imported for
 * its type only) and needs at run time only each route's method and path (a zod-free table the
 * route table is built from, e.g. src/containers/api-paths.ts).
 *
 * An answer from a daemon of the same build (its `x-loom-build` header is this build's id, see
 * src/core/build-id.ts) is taken as it is: the daemon's handlers are type-checked against the
 * very schemas the full client would parse with. From any other build (a router started before
 * an upgrade) or an unbuilt tree, the route table is loaded and the answer checked as the full
 * client does (ERR_PROTOCOL when it does not match). Requests are checked by the daemon.
 */
import { BUILD_ID, UNBUILT } from '../core/build-id.js';
import type { RouteContracts, TypedClient } from './contract.js';
import { routeRequest } from './route-path.js';
import type { HttpTransport } from './transport.js';

/** What the light client needs of each route at run time. JSON routes only (no text, no stream). */
export type RoutePaths<T extends RouteContracts> = {
  readonly [K in keyof T]: T[K] extends { text: true } | { stream: true } ? never : { readonly method: T[K]['method']; readonly path: T[K]['path'] };
};

/**
 * The client of route table T over `transport`. `loadRoutes` loads the table itself (with its
 * schemas) for checking an answer from another build; `ownBuild` is for tests.
 */
export function lightClient<T extends RouteContracts>(transport: Pick<HttpTransport, 'address' | 'callJson'>, paths: RoutePaths<T>, loadRoutes: () => Promise<T>, ownBuild: string = BUILD_ID): TypedClient<T> {
  const client: Record<string, (request?: unknown) => Promise<unknown>> = {};
  for (const [name, route] of Object.entries(paths) as Array<[string, { method: string; path: string }]>) {
    client[name] = async (request?: unknown) => {
      const { path, body } = routeRequest(route, request);
      const answer = await transport.callJson(route.method, path, body);
      if (ownBuild !== UNBUILT && answer.build === ownBuild) return answer.body;
      const [{ checkAnswer }, routes] = await Promise.all([import('./contract.js'), loadRoutes()]);
      const contract = routes[name];
      if (contract === undefined) throw new Error(`light client: no route ${name} in its table`);
      return checkAnswer(contract, answer.body, transport.address);
    };
  }
  return client as TypedClient<T>;
}
