/**
 * One typed contract per HTTP route: method, path, request schema (the JSON body, or for GET the
 * query parameters; fields named by the path's `:name` segments travel in the path) and
 * response schema (zod). Each subsystem keeps its table beside its routes
 * (src/containers/api.ts, src/ipam/api.ts, ...); the server side registers handlers at the
 * table's method and path and parses bodies with its schemas, and `typedClient` derives a client
 * from the same table: one method per route, the request type checked at compile time, the
 * response parsed at run time (an answer that does not match is ERR_PROTOCOL).
 */
import { z } from 'zod';
import { LoomError } from '../core/errors.js';
import type { HttpMethod } from './route-table.js';
import { routeRequest } from './route-path.js';

export interface RouteContract {
  readonly method: HttpMethod;
  readonly path: string;
  /** The JSON body (POST, DELETE) or the query parameters (GET); absent = the route takes none. */
  readonly request?: z.ZodType;
  readonly response: z.ZodType;
  /** The answer is text (e.g. Prometheus metrics), not JSON; `response` then checks the string. */
  readonly text?: true;
  /**
   * The answer is a server-sent event stream (e.g. /ui/events); the typed client's method reads
   * it until the first message and checks that message's JSON data with `response`.
   */
  readonly stream?: true;
}

/** `true` only when A and B are the same type (each assignable to the other): for checking a response schema against the type the server builds. */
export type SameType<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export type RouteContracts = Readonly<Record<string, RouteContract>>;

/** Keeps the literal types of a route table (method, path, schemas). */
export function defineRoutes<const T extends RouteContracts>(routes: T): T {
  return routes;
}

export type RequestOf<R extends RouteContract> = R['request'] extends z.ZodType ? z.input<R['request']> : never;
export type ResponseOf<R extends RouteContract> = z.output<R['response']>;

/** One method per route of T. */
export type TypedClient<T extends RouteContracts> = {
  readonly [K in keyof T]: T[K]['request'] extends z.ZodType ? (request: z.input<T[K]['request']>) => Promise<z.output<T[K]['response']>> : () => Promise<z.output<T[K]['response']>>;
};

/** What a typed client sends through: JSON in, JSON (or text) out, daemon errors as LoomErrors (ApiClient). */
export interface ApiTransport {
  readonly address: string;
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** The body of a text answer (routes with `text: true`); `body` as for `call` (POST text routes). */
  callText(method: string, path: string, body?: unknown): Promise<string>;
  /** The JSON data of the first message of a GET event stream (routes with `stream: true`). */
  firstStreamMessage(path: string): Promise<unknown>;
}

/** The client for one route table over `transport`. */
export function typedClient<T extends RouteContracts>(transport: ApiTransport, routes: T): TypedClient<T> {
  const client: Record<string, (request?: unknown) => Promise<unknown>> = {};
  for (const [name, route] of Object.entries(routes)) {
    client[name] = async (request?: unknown) => {
      const { path, body } = routeRequest(route, request);
      const answer = route.stream === true ? await transport.firstStreamMessage(path) : route.text === true ? await transport.callText(route.method, path, body) : await transport.call(route.method, path, body);
      return checkAnswer(route, answer, transport.address);
    };
  }
  return client as TypedClient<T>;
}

/** `answer` parsed with the route's response schema; ERR_PROTOCOL naming the route when it does not match. */
export function checkAnswer(route: RouteContract, answer: unknown, address: string): unknown {
  const parsed = route.response.safeParse(answer);
  if (!parsed.success) {
    throw new LoomError('ERR_PROTOCOL', `daemon at ${address} answered ${route.method} ${route.path} with an unexpected body: ${z.prettifyError(parsed.error).slice(0, 300)}`);
  }
  return parsed.data;
}
