/**
 * The CNI endpoints, registered at the method and path of their contract (./api.ts), bodies parsed
 * with its schemas. The same handlers answer the native shim's in-process calls
 * (`localCniTransport`, used by `POST /cni/exec`), with the HTTP error mapping, so a call through
 * the shim fails exactly as one through the Node plugin.
 */
import type { ApiServer } from '../api/server.js';
import { errorResponse } from '../api/http-errors.js';
import { parseWith } from '../api/validate.js';
import { DEFAULT_SOCKET } from './conf.js';
import { LoomError } from '../core/errors.js';
import { addRequestSchema, checkRequestSchema, CNI_ROUTES, cniExecRequestSchema, delRequestSchema, gcRequestSchema } from './api.js';
import type { CniSubsystem } from './daemon.js';
import { execAnswerText, runCniExec, type CniApiAddress } from './exec.js';
import { routerError, type RouterTransport } from './router-client.js';
import type { AddRequest, DelRequest } from './wire.js';

export type CniService = Pick<CniSubsystem, 'add' | 'check' | 'del' | 'gc' | 'status' | 'list'>;

type Handler = (body: () => Promise<unknown>) => Promise<unknown>;

/** The JSON routes the plugin calls, by "METHOD path". */
function jsonHandlers(cni: CniService): Map<string, Handler> {
  const { add, check, del, gc, status, list } = CNI_ROUTES;
  return new Map<string, Handler>([
    [`${add.method} ${add.path}`, async (body) => cni.add(parseWith(addRequestSchema, await body(), 'CNI add request') as AddRequest)],
    [`${check.method} ${check.path}`, async (body) => cni.check(parseWith(checkRequestSchema, await body(), 'CNI check request'))],
    [`${del.method} ${del.path}`, async (body) => cni.del(parseWith(delRequestSchema, await body(), 'CNI del request') as DelRequest)],
    [`${gc.method} ${gc.path}`, async (body) => cni.gc(parseWith(gcRequestSchema, await body(), 'CNI gc request'))],
    [`${status.method} ${status.path}`, () => Promise.resolve(cni.status())],
    [`${list.method} ${list.path}`, () => Promise.resolve({ attachments: cni.list() })],
  ]);
}

/**
 * The plugin's RouterTransport without HTTP: the route's handler, its answer through JSON (as the
 * wire would give it), its failure through the API's status table and the plugin's code map.
 */
export function localCniTransport(cni: CniService): RouterTransport {
  const handlers = jsonHandlers(cni);
  return {
    async call(method, path, body) {
      try {
        const handler = handlers.get(`${method} ${path}`);
        if (handler === undefined) throw new LoomError('ERR_NOT_FOUND', `no route ${method} ${path}`);
        const answer = await handler(() => Promise.resolve(body === undefined ? undefined : (JSON.parse(JSON.stringify(body)) as unknown)));
        return JSON.parse(JSON.stringify(answer ?? null)) as unknown;
      } catch (err) {
        const { status, body: errorBody } = errorResponse(err);
        throw routerError(errorBody, status);
      }
    },
  };
}

/** `self`: this router's local socket; a conf naming another `socket` is left to the Node plugin. Absent: the default name. */
export function registerCniRoutes(server: ApiServer, cni: CniService, self: CniApiAddress = { socket: DEFAULT_SOCKET }): void {
  const handlers = jsonHandlers(cni);
  for (const route of [CNI_ROUTES.add, CNI_ROUTES.check, CNI_ROUTES.del, CNI_ROUTES.gc, CNI_ROUTES.status, CNI_ROUTES.list]) {
    const handler = handlers.get(`${route.method} ${route.path}`)!;
    server.route(route.method, route.path, async (req) => ({ json: await handler(() => req.body()) }));
  }
  const local = localCniTransport(cni);
  const { exec } = CNI_ROUTES;
  server.route(exec.method, exec.path, async (req) => {
    const request = parseWith(cniExecRequestSchema, await req.body(), 'CNI exec request');
    return { text: execAnswerText(await runCniExec(request, local, self)), contentType: 'text/plain; charset=utf-8' };
  });
}
