/**
 * How the daemon runs its subsystems (the contract itself, `Subsystem`, is in src/core/subsystem.ts
 * with the lifecycle): a list of factories, run in order before the router starts; the default
 * list is the composition root, ./subsystems.ts.
 */
import type { ApiServer } from '../api/server.js';
import type { Clock } from '../core/clock.js';
import type { Subsystem } from '../core/subsystem.js';
import type { Logger } from '../core/logger.js';
import type { RouterApi } from '../mesh/types.js';
import type { LaunchConfig } from './options.js';
import type { StateDir } from './state-dir.js';

export type { Subsystem };

/** The subsystems a daemon runs, by name (for status and tests; subsystems get each other by construction). */
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
  /** Those built so far (for the daemon's own checks and tests; the composition root wires by construction). */
  subsystems: SubsystemRegistry;
}

/** Builds a subsystem, or returns null when the config turns it off (e.g. --no-dns). */
export type SubsystemFactory = {
  readonly name: string;
  create(components: SubsystemComponents): Subsystem | null;
};
