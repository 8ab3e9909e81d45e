/**
 * The contract every part of the daemon beyond the router follows (DNS now; data plane, IPAM,
 * containers later): built from the daemon's components, then started and stopped once.
 *
 * Lifecycle, as run by startDaemon:
 *   1. every factory runs, in list order, BEFORE the router starts: this is where a subsystem
 *      opens its gossip channel (so the full state sent to each new neighbour already includes
 *      it) and registers its API routes, `/report` section and metrics;
 *   2. the router starts;
 *   3. `start()` runs in list order, each awaited; then the API begins to listen, so an API that
 *      answers means every subsystem is up;
 *   4. on shutdown the API closes, then `stop()` runs in reverse list order, then the router stops.
 * A failing `start()` stops the subsystems already started (reverse order) and fails the daemon.
 */
import type { ApiServer } from '../api/server.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RouterApi } from '../mesh/types.js';
import type { LaunchConfig } from './options.js';
import type { StateDir } from './state-dir.js';

export interface Subsystem {
  /** Unique among the daemon's subsystems; also its report section and logger component. */
  readonly name: string;
  start(): Promise<void>;
  /** Idempotent; never throws for a subsystem that was not started. */
  stop(): Promise<void>;
}

/** Subsystems built so far (earlier in the list), for one that needs another (data plane -> DNS). */
export interface SubsystemRegistry {
  get(name: string): Subsystem | undefined;
}

export interface SubsystemComponents {
  /** Constructed, not yet started, when factories run. */
  router: RouterApi;
  /** Not yet listening when factories run. */
  api: ApiServer;
  /** Already bound to `component: <subsystem name>`. */
  logger: Logger;
  clock: Clock;
  stateDir: StateDir;
  config: LaunchConfig;
  subsystems: SubsystemRegistry;
}

/** Builds a subsystem, or returns null when the config turns it off (e.g. --no-dns). */
export type SubsystemFactory = {
  readonly name: string;
  create(components: SubsystemComponents): Subsystem | null;
};
