/**
 * The containers' client for the CLI's hot commands (`loom run`, `rm`, `ps`, `attach`, `detach`,
 * `exec`): the same typed methods as LoomClient's `containers`, without loading zod (see
 * src/api/light-client.ts for when an answer is checked).
 */
import type { TypedClient } from '../api/contract.js';
import { lightClient } from '../api/light-client.js';
import { HttpTransport, type ApiClientInit } from '../api/transport.js';
import type { CONTAINER_ROUTES } from '../containers/api.js';
import { CONTAINER_PATHS } from '../containers/api-paths.js';

export function containersClient(init: ApiClientInit = {}): TypedClient<typeof CONTAINER_ROUTES> {
  return lightClient<typeof CONTAINER_ROUTES>(new HttpTransport(init), CONTAINER_PATHS, async () => (await import('../containers/api.js')).CONTAINER_ROUTES);
}
