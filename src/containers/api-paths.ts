/**
 * Method and path of every containers route, free of any schema: the route table (./api.ts) is
 * built from these, and the CLI's light client (src/client/containers.ts) calls them without
 * loading zod.
 */
export const CONTAINER_PATHS = {
  list: { method: 'GET', path: '/containers' },
  run: { method: 'POST', path: '/containers' },
  attach: { method: 'POST', path: '/containers/attach' },
  detach: { method: 'POST', path: '/containers/detach' },
  remove: { method: 'DELETE', path: '/containers/:id' },
} as const;
