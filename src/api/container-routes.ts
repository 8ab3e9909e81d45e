/**
 * The containers' endpoints. The route table matches exact paths, so the container id travels in
 * the body ({"id": ...}, an id or a name) rather than in the path.
 *
 *   GET  /containers            -> { containers: ContainerRow[], attachments: Attachment[] }
 *   POST /containers            { name, cidr, cmd: string[], env?: {K: V} } -> ContainerRecord
 *   POST /containers/attach     { pid | netns, cidr? } -> Attachment   (cidr: any address form; empty = net:default)
 *   POST /containers/detach     { id, cidr? } -> ContainerRecord
 *                               { pid | netns, cidr? } -> { detached: Attachment[] }  (releases IPAM addresses)
 *   POST /containers/remove     { id } -> ContainerRecord
 *   POST /expose                { address? } -> { cidr }   (the host's address on the bridge)
 *   POST /hide                  { cidr } -> { cidr, released }
 */
import { z } from 'zod';
import type { Attachment, ContainerRow, ContainersSubsystem, RunRequest } from '../containers/daemon.js';
import { LoomError } from '../core/errors.js';
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
    cidr: cidrText.default(''),
  })
  .strict()
  .refine((b) => (b.pid === undefined) !== (b.netns === undefined), 'give exactly one of pid and netns');

const pidNumber = z.number().int().min(2).max(4_194_304);
const netnsPath = z
  .string()
  .max(255)
  .regex(/^\/[^\0]*$/, 'an absolute path like /run/netns/NAME');

export const detachBodySchema = z.union([
  z.object({ id: idText, cidr: cidrText.optional() }).strict(),
  z.object({ pid: pidNumber, cidr: cidrText.optional() }).strict(),
  z.object({ netns: netnsPath, cidr: cidrText.optional() }).strict(),
]);
export const exposeBodySchema = z.object({ address: cidrText.optional() }).strict();
export const hideBodySchema = z.object({ cidr: z.string().min(1).max(64) }).strict();
export const removeBodySchema = z.object({ id: idText }).strict();

/** The API's view of the containers subsystem (a fake in tests). */
export type ContainerService = Pick<ContainersSubsystem, 'run' | 'attach' | 'detach' | 'remove' | 'list' | 'attachments'> & Partial<Pick<ContainersSubsystem, 'detachTarget'>>;

/** The host's extra overlay addresses (src/daemon/host-address.ts); null when it does not run. */
export interface HostExposure {
  /** Idempotent; "a.b.c.d/n" on the bridge. */
  expose(address?: string): Promise<string>;
  /** Returns how many IPAM addresses were released (0 for an address outside the range). */
  hide(cidr: string): Promise<number>;
}

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
    if ('id' in body) return { json: await containers.detach(body.id, body.cidr) };
    if (!containers.detachTarget) throw new LoomError('ERR_UNAVAILABLE', 'detaching a namespace is not supported here');
    const target: NetnsTarget = 'pid' in body ? { pid: body.pid } : { path: body.netns };
    return { json: { detached: await containers.detachTarget(target, body.cidr) } };
  });

  server.route('POST', '/containers/remove', async (req) => {
    const body = parseWith(removeBodySchema, await req.body(), 'remove request');
    return { json: await containers.remove(body.id) };
  });
}

/** `loom expose` / `loom hide`. Without the host-address subsystem (no kernel data plane) both are ERR_UNAVAILABLE. */
export function registerExposeRoutes(server: ApiServer, exposure: HostExposure | null): void {
  const require = (): HostExposure => {
    if (!exposure) throw new LoomError('ERR_UNAVAILABLE', 'expose needs the kernel data plane (the loom bridge) on this host');
    return exposure;
  };
  server.route('POST', '/expose', async (req) => {
    const body = parseWith(exposeBodySchema, (await req.body()) ?? {}, 'expose request');
    return { json: { cidr: await require().expose(body.address) } };
  });
  server.route('POST', '/hide', async (req) => {
    const body = parseWith(hideBodySchema, await req.body(), 'hide request');
    return { json: { cidr: body.cidr, released: await require().hide(body.cidr) } };
  });
}
