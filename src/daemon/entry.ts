/**
 * What `loom launch --foreground` runs: the option parser, the daemon's lifecycle, its logger and
 * the production router factory, in one module. `npm run build` bundles this module and
 * everything it loads (zod, pino, prom-client, the mesh, the subsystems; not the native addons)
 * into dist/src/daemon/loomd.cjs (scripts/build-cli.mjs), and the CLI bundle that bin/loom runs
 * imports that file instead of this one: a router process reads one minified file instead of
 * ~400 ES modules, which holds less of V8's heap (module sources and records) for its lifetime.
 * Run unbundled (`node dist/src/cli/main.js`, the unit tests), it is an ordinary module.
 */
export { parseLaunchOptions } from './options.js';
export { startDaemon, runUntilStopped } from './foreground.js';
export { createDaemonLogger } from './log.js';
export { createRouter } from './router-factory.js';
export { tuneProcessMemory } from './process-memory.js';
export { startQuietGc } from './process-gc.js';
export { parseQuietGcSetting } from './quiet-gc.js';
export { trimAfterStartup } from './startup-trim.js';
/** malloc_trim(0) through the bundle's own koffi (test/unit/cli/bundle.test.ts checks that koffi's native module loads from the bundle). */
export { trimMalloc } from '../os/malloc.js';
