/**
 * The events subsystem (issue 13): owns the daemon's event log (./event-log.ts) and the live
 * page's event stream (src/api/sse-hub.ts), serves `/events`, `/ui`, `/ui/events`
 * (src/api/ui-routes.ts), and turns mesh changes into events (./mesh-events.ts). The other
 * subsystems write to the same log through the `EventSink` they are built with (the composition
 * root, ./subsystems.ts, hands them `events.log`). Report section `events`: the newest
 * REPORT_EVENTS events, so `loom report`, `loom status` and the page's snapshots carry them.
 *
 * Contracts: built first (every later subsystem may emit from its constructor on); `start`
 * subscribes to the mesh, `stop` ends every live stream and unsubscribes. Idempotent.
 */
import type { ApiServer } from '../api/server.js';
import { SseHub, type SseHubInit } from '../api/sse-hub.js';
import { registerUiRoutes } from '../api/ui-routes.js';
import type { Clock } from '../core/clock.js';
import type { LoomEvent } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem } from '../core/subsystem.js';
import type { RouterApi } from '../mesh/types.js';
import { EventLog } from './event-log.js';
import { meshEvents, meshFacts, NO_MESH_FACTS, type MeshFacts } from './mesh-events.js';

export const EVENTS_SUBSYSTEM = 'events';
/** How many events `/report` (and so each snapshot of the page) carries. */
export const REPORT_EVENTS = 100;

export interface EventsComponents {
  router: Pick<RouterApi, 'mesh' | 'status'>;
  api: Pick<ApiServer, 'report' | 'route'>;
  clock: Clock;
  logger: Logger;
  wallClock?: () => number;
}

export interface EventsInit {
  capacity?: number;
  stream?: SseHubInit;
  uiDir?: string;
}

export class EventsSubsystem implements Subsystem {
  readonly name = EVENTS_SUBSYSTEM;
  readonly log: EventLog;
  readonly hub: SseHub;
  private readonly router: EventsComponents['router'];
  private facts: MeshFacts = NO_MESH_FACTS;
  private unsubscribe: Array<() => void> = [];

  constructor(components: EventsComponents, init: EventsInit = {}) {
    this.router = components.router;
    this.log = new EventLog({ logger: components.logger, ...(components.wallClock ? { wallClock: components.wallClock } : {}) }, init.capacity);
    this.hub = new SseHub({ clock: components.clock, logger: components.logger, snapshot: () => components.api.report() }, init.stream);
    registerUiRoutes(components.api, { events: this.log, hub: this.hub, ...(init.uiDir === undefined ? {} : { uiDir: init.uiDir }) });
  }

  start(): Promise<void> {
    if (this.unsubscribe.length > 0) return Promise.resolve();
    this.facts = meshFacts(this.router.status());
    this.unsubscribe.push(
      this.router.mesh.onChange(() => this.onMeshChange()),
      this.log.subscribe((e: LoomEvent) => this.hub.publish('loom-event', e, e.seq)),
    );
    return Promise.resolve();
  }

  stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    this.hub.close();
    return Promise.resolve();
  }

  report(): { recent: LoomEvent[]; total: number; streams: number } {
    return { recent: this.log.list({ limit: REPORT_EVENTS }), total: this.log.lastSeq(), streams: this.hub.clientCount() };
  }

  private onMeshChange(): void {
    const status = this.router.status();
    const next = meshFacts(status);
    const events = meshEvents(this.facts, next, status);
    this.facts = next;
    for (const e of events) this.log.emit(e);
    // Routes or topology changed even when no connection did: the page redraws.
    this.hub.changed();
  }
}
