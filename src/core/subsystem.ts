/**
 * The contract every part of the daemon beyond the router follows (IPAM, DNS, data plane, host
 * address, containers). A subsystem is constructed with the others it needs as typed dependencies
 * (the composition root, src/daemon/subsystems.ts, wires them), then started and stopped once.
 *
 * Lifecycle, as the daemon runs it:
 *   1. every subsystem is constructed, in start order, BEFORE the router starts: this is where it
 *      opens its gossip channel (so the full state sent to each new neighbour already includes
 *      it); its API routes and metrics are registered then too, and `report` becomes its section;
 *   2. the router starts;
 *   3. `start()` runs in order, each awaited; then the API begins to listen, so an API that
 *      answers means every subsystem is up;
 *   4. on shutdown the API closes, then `stop()` runs in reverse order, then the router stops.
 * A failing `start()` stops the subsystems already started (reverse order) and fails the daemon.
 */
export interface Subsystem {
  /** Unique among the daemon's subsystems; also its report section and logger component. */
  readonly name: string;
  start(): Promise<void>;
  /** Idempotent; never throws for a subsystem that was not started. */
  stop(): Promise<void>;
  /** Its section of `/report` (and `loom status`), under `name`; absent = no section. Cheap, never throws. */
  report?(): unknown;
}
