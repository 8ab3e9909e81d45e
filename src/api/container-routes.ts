/**
 * The containers' endpoints. The route table matches exact paths, so the container id travels in
 * the body ({"id": ...}, an id or a name) rather than in the path.
 *
 *   GET  /containers            -> { containers: ContainerRow[], attachments: Attachment[] }
 *   POST /containers            { name, cidr, cmd: string[], env?: {K: V} } -> ContainerRecord
 *   POST /containers/attach     { pid | netns, cidr } -> Attachment
 *   POST /containers/detach     { id, cidr? } -> ContainerRecord
 *   POST /containers/remove     { id } -> ContainerRecord
 */
import { z } from 'zod';
import type { Attachment, ContainerRow, ContainersSubsystem, RunRequest } from '../containers/daemon.js';
import type { ContainerRecord, NetnsTarget } from '../containers/types.js';
import type { ApiServer } from './server.js';
import { parseWith } from './validate.js';

const idText = z.string().min(1).max(128);
/** a.b.c.d/n, net:a.b.c.d/n, net:default, or empty (= net:default when IPAM runs). */
const cidrText = z.string().max(64);

export const runBodySchema = z
  .object({
    name: z.string().min(1).max(63),
    cidr: cidrText.default(''),
    cmd: z.array(z.string().max(4096)).min(1).max(256),
    env: z.record(z.string().max(128), z.string().max(4096)).optional(),
  })
  .strict();

export const attachBodySchema = z
  .object({
    pid: z.number().int().min(2).max(4_194_304).optional(),
    netns: z
      .string()
      .max(255)
      .regex(/^\/[^\0]*$/, 'an absolute path like /run/netns/NAME')
      .optional(),
    cidr: cidrText,
  })
  .strict()
  .refine((b) => (b.pid === undefined) !== (b.netns === undefined), 'give exactly one of pid and netns');

export const detachBodySchema = z.object({ id: idText, cidr: cidrText.optional() }).strict();
export const removeBodySchema = z.object({ id: idText }).strict();

/** The API's view of the containers subsystem (a fake in tests). */
export type ContainerService = Pick<ContainersSubsystem, 'run' | 'attach' | 'detach' | 'remove' | 'list' | 'attachments'>;

export interface ContainerList {
  containers: ContainerRow[];
  attachments: Attachment[];
}

export function registerContainerRoutes(server: ApiServer, containers: ContainerService): void {
  server.route('GET', '/containers', (): { json: ContainerList } => ({ json: { containers: containers.list(), attachments: containers.attachments() } }));

  server.route('POST', '/containers', async (req) => {
    const body = parseWith(runBodySchema, await req.body(), 'run request');
    const request: RunRequest = { name: body.name, cidr: body.cidr, cmd: body.cmd, ...(body.env ? { env: body.env } : {}) };
    const record: ContainerRecord = await containers.run(request);
    return { status: 201, json: record };
  });

  server.route('POST', '/containers/attach', async (req) => {
    const body = parseWith(attachBodySchema, await req.body(), 'attach request');
    const target: NetnsTarget = body.pid !== undefined ? { pid: body.pid } : { path: body.netns! };
    return { json: await containers.attach(target, body.cidr) };
  });

  server.route('POST', '/containers/detach', async (req) => {
    const body = parseWith(detachBodySchema, await req.body(), 'detach request');
    return { json: await containers.detach(body.id, body.cidr) };
  });

  server.route('POST', '/containers/remove', async (req) => {
    const body = parseWith(removeBodySchema, await req.body(), 'remove request');
    return { json: await containers.remove(body.id) };
  });
}
