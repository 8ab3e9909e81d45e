/**
 * The router's own HTTP contract (the daemon's endpoints that are not a subsystem's): request
 * and response schemas, shared by the server side (./router-routes.ts, ./server.ts for /healthz
 * and /report) and the typed client (src/client). The response schemas describe the real shapes
 * (mesh/types.ts RouterStatus); a compile-time check below keeps schema and type equal.
 *
 *   GET  /healthz                   -> { ok: true }
 *   GET  /status                    -> RouterStatus
 *   GET  /report                    -> { version, router: RouterStatus, <section>: ... }
 *   GET  /metrics                   -> Prometheus text (not JSON)
 *   POST /connect  { peers, replace? } -> { targets }
 *   POST /forget   { peers }           -> { targets }
 *   POST /stop                         -> { stopping: true }   (202)
 */
import { z } from 'zod';
import { isPeerName, parsePeerUid, type PeerName, type PeerUid } from '../core/ids.js';
import type { ConnectionState, RouterStatus } from '../mesh/types.js';
import { defineRoutes, type SameType } from './contract.js';
import { connectBodySchema, forgetBodySchema } from './validate.js';

/** A peer name as the daemon reports it (lower-case six hex pairs). */
export const peerNameSchema = z.custom<PeerName>((v) => isPeerName(v), 'a peer name like 8a:3f:00:12:9c:01');
const peerUidSchema = z.custom<PeerUid>((v) => {
  try {
    parsePeerUid(v);
    return true;
  } catch {
    return false;
  }
}, 'a peer uid');
const count = z.number().int().min(0);

const CONNECTION_STATES = ['connecting', 'pending', 'established', 'retrying', 'failed'] as const satisfies readonly ConnectionState[];

const connectionStatusSchema = z.object({
  address: z.string(),
  outbound: z.boolean(),
  state: z.enum(CONNECTION_STATES),
  info: z.string(),
  peer: z.object({ name: peerNameSchema, nickname: z.string() }).exactOptional(),
  encrypted: z.boolean().exactOptional(),
  errorCode: z.string().exactOptional(),
  retryAt: z.number().exactOptional(),
  attempts: count.exactOptional(),
});

const peerStatusSchema = z.object({
  name: peerNameSchema,
  nickname: z.string(),
  uid: peerUidSchema,
  version: count,
  connections: z.array(z.object({ name: peerNameSchema, nickname: z.string(), address: z.string(), outbound: z.boolean(), established: z.boolean() })),
});

export const routerStatusSchema = z.object({
  name: peerNameSchema,
  nickname: z.string(),
  uid: peerUidSchema,
  protocol: z.string(),
  protocolMinVersion: count,
  protocolMaxVersion: count,
  encryption: z.boolean(),
  peerDiscovery: z.boolean(),
  port: z.number().int().min(0).max(65535),
  targets: z.array(z.string()),
  connections: z.array(connectionStatusSchema),
  peers: z.array(peerStatusSchema),
  routes: z.object({
    unicast: z.array(z.object({ destination: peerNameSchema, via: peerNameSchema, hops: count })),
    broadcast: z.array(peerNameSchema),
  }),
  stats: z.object({ terminations: count, handshakesFailed: count, handshakesThrottled: count, gossipBytesSent: count, gossipBytesReceived: count, gossipMessagesSent: count, gossipMessagesReceived: count }),
});

/** `/report`: the version, the router, and one section per subsystem that registered one (checked by their own schemas where a client needs them). */
export const reportSchema = z.looseObject({ version: z.string(), router: routerStatusSchema });

const targetsSchema = z.object({ targets: z.array(z.string()) });

export const ROUTER_ROUTES = defineRoutes({
  healthz: { method: 'GET', path: '/healthz', response: z.object({ ok: z.literal(true) }) },
  status: { method: 'GET', path: '/status', response: routerStatusSchema },
  report: { method: 'GET', path: '/report', response: reportSchema },
  metrics: { method: 'GET', path: '/metrics', response: z.string(), text: true },
  connect: { method: 'POST', path: '/connect', request: connectBodySchema, response: targetsSchema },
  forget: { method: 'POST', path: '/forget', request: forgetBodySchema, response: targetsSchema },
  stop: { method: 'POST', path: '/stop', response: z.object({ stopping: z.literal(true) }) },
});

// The schema and the type the router builds are the same shape (compile-time only).
const routerStatusMatches: SameType<z.output<typeof routerStatusSchema>, RouterStatus> = true;
void routerStatusMatches;
