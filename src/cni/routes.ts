/** The CNI endpoints, registered at the method and path of their contract (./api.ts), bodies parsed with its schemas. */
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { addRequestSchema, checkRequestSchema, CNI_ROUTES, delRequestSchema, gcRequestSchema } from './api.js';
import type { CniSubsystem } from './daemon.js';
import type { AddRequest, DelRequest } from './wire.js';

export type CniService = Pick<CniSubsystem, 'add' | 'check' | 'del' | 'gc' | 'status' | 'list'>;

export function registerCniRoutes(server: ApiServer, cni: CniService): void {
  const { add, check, del, gc, status, list } = CNI_ROUTES;
  server.route(add.method, add.path, async (req) => ({ json: await cni.add(parseWith(addRequestSchema, await req.body(), 'CNI add request') as AddRequest) }));
  server.route(check.method, check.path, async (req) => ({ json: await cni.check(parseWith(checkRequestSchema, await req.body(), 'CNI check request')) }));
  server.route(del.method, del.path, async (req) => ({ json: await cni.del(parseWith(delRequestSchema, await req.body(), 'CNI del request') as DelRequest) }));
  server.route(gc.method, gc.path, async (req) => ({ json: await cni.gc(parseWith(gcRequestSchema, await req.body(), 'CNI gc request')) }));
  server.route(status.method, status.path, () => ({ json: cni.status() }));
  server.route(list.method, list.path, () => ({ json: { attachments: cni.list() } }));
}
