/**
 * The containers' endpoints, registered at the method and path of their contract (./api.ts),
 * bodies parsed with its schemas.
 */
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { LoomError } from '../core/errors.js';
import { attachBodySchema, CONTAINER_ROUTES, detachBodySchema, removeBodySchema, runBodySchema } from './api.js';
import type { Attachment, ContainerRow, ContainersSubsystem, RunRequest } from './daemon.js';
import type { ContainerRecord, NetnsTarget } from './types.js';

/** The API's view of the containers subsystem (a fake in tests). */
export type ContainerService = Pick<ContainersSubsystem, 'run' | 'attach' | 'detach' | 'remove' | 'list' | 'attachments'> & Partial<Pick<ContainersSubsystem, 'detachTarget'>>;

export interface ContainerList {
  containers: ContainerRow[];
  attachments: Attachment[];
}

export function registerContainerRoutes(server: ApiServer, containers: ContainerService): void {
  const { list, run, attach, detach, remove } = CONTAINER_ROUTES;
  server.route(list.method, list.path, (): { json: ContainerList } => ({ json: { containers: containers.list(), attachments: containers.attachments() } }));

  server.route(run.method, run.path, async (req) => {
    const body = parseWith(runBodySchema, await req.body(), 'run request');
    const request: RunRequest = { name: body.name, address: body.cidr, cmd: body.cmd, ...(body.env ? { env: body.env } : {}) };
    const record: ContainerRecord = await containers.run(request);
    return { status: 201, json: record };
  });

  server.route(attach.method, attach.path, async (req) => {
    const body = parseWith(attachBodySchema, await req.body(), 'attach request');
    const target: NetnsTarget = body.pid !== undefined ? { pid: body.pid } : { path: body.netns! };
    return { json: await containers.attach(target, body.cidr) };
  });

  server.route(detach.method, detach.path, async (req) => {
    const body = parseWith(detachBodySchema, await req.body(), 'detach request');
    if ('id' in body) return { json: await containers.detach(body.id, body.cidr) };
    if (!containers.detachTarget) throw new LoomError('ERR_UNAVAILABLE', 'detaching a namespace is not supported here');
    const target: NetnsTarget = 'pid' in body ? { pid: body.pid } : { path: body.netns };
    return { json: { detached: await containers.detachTarget(target, body.cidr) } };
  });

  server.route(remove.method, remove.path, async (req) => {
    const { id } = parseWith(removeBodySchema, { ...req.params }, 'remove request');
    return { json: await containers.remove(id) };
  });
}
