/**
 * What a subsystem tells the operator when its state changes (issue 13): a peer connected or went
 * away, a data path switched, a container started, IPAM space changed hands. Subsystems get an
 * `EventSink` by construction and call `emit` on the change itself (never per packet, never on a
 * timer that finds nothing new); the daemon's ring buffer (src/daemon/event-log.ts) stamps each
 * event with a sequence number and the wall-clock time, keeps the last few hundred, and feeds
 * `GET /events`, the live page and `loom status`.
 *
 * Contract: `emit` is synchronous, cheap and never throws (a sink that fails drops the event).
 */
export const EVENT_KINDS = [
  'connection-up',
  'connection-down',
  'peer-joined',
  'peer-left',
  'path-changed',
  'container-started',
  'container-stopped',
  'container-moved',
  'ipam-claimed',
  'ipam-conflict',
] as const;

export type EventKind = (typeof EVENT_KINDS)[number];

/** An event as a subsystem reports it. `text` is one sentence a person reads. */
export interface EventInput {
  kind: EventKind;
  /** The peer it is about (a peer name), when there is one. */
  peer?: string;
  /** The container it is about (its name or id), when there is one. */
  container?: string;
  text: string;
}

/** An event as stored and served: numbered in order of arrival, `time` in ms since the Unix epoch. */
export interface LoomEvent extends EventInput {
  seq: number;
  time: number;
}

export interface EventSink {
  emit(event: EventInput): void;
}

/** A sink that drops everything (subsystems built without an event log, tests). */
export const nullEventSink: EventSink = { emit: () => {} };
