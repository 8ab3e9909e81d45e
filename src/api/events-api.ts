/**
 * The event log and the live page (issue 13): contract shared by the server side
 * (src/api/ui-routes.ts) and the typed client (src/client). All GETs, so the read-only TCP
 * status listener serves them too (http://127.0.0.1:6784/ui).
 *
 *   GET /events?after=SEQ&limit=N  -> { events: LoomEvent[] }   oldest first; at most the last 500
 *   GET /ui                        -> the page (HTML)
 *   GET /ui/:asset                 -> its script and style sheet (app.js, style.css)
 *   GET /ui/events                 -> text/event-stream: `snapshot` (the /report, with its
 *                                     `events` section) on connect and at most every second
 *                                     after a change, `loom-event` per event
 */
import { z } from 'zod';
import { EVENT_KINDS, type LoomEvent } from '../core/events.js';
import { defineRoutes, type SameType } from './contract.js';
import { reportSchema } from './router-api.js';

const seq = z.number().int().min(0);

export const loomEventSchema = z.object({
  seq,
  time: z.number(),
  kind: z.enum(EVENT_KINDS),
  peer: z.string().exactOptional(),
  container: z.string().exactOptional(),
  text: z.string(),
});

export const eventListSchema = z.object({ events: z.array(loomEventSchema) });

/** The query of GET /events: numbers written in decimal. */
export const eventQuerySchema = z.object({
  after: seq.exactOptional(),
  limit: z.number().int().min(1).max(10_000).exactOptional(),
});

export const EVENT_ROUTES = defineRoutes({
  list: { method: 'GET', path: '/events', request: eventQuerySchema, response: eventListSchema },
  page: { method: 'GET', path: '/ui', response: z.string(), text: true },
  asset: { method: 'GET', path: '/ui/:asset', request: z.object({ asset: z.string() }), response: z.string(), text: true },
  stream: { method: 'GET', path: '/ui/events', response: reportSchema, stream: true },
});

const eventMatches: SameType<z.output<typeof loomEventSchema>, LoomEvent> = true;
void eventMatches;
