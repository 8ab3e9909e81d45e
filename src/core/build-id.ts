/**
 * The build of this copy of Loom: a digest of every compiled module, written over this file's
 * compiled copy by `npm run build` (scripts/build-id.mjs). The daemon names it on every JSON
 * answer (the `x-loom-build` header); the CLI's light client (src/api/light-client.ts) takes
 * an answer unchecked only from a daemon of its own build, and checks it with the route's schema
 * otherwise (a router started before an upgrade). UNBUILT (tsc alone) is never trusted.
 */
export const UNBUILT = 'unbuilt';
export const BUILD_ID: string = UNBUILT;
