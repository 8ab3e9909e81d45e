/**
 * The containers' HTTP contract: request and response schemas of every route, in one table that
 * the server side (./routes.ts) and the typed client (src/api/contract.ts) share. Only removal
 * names the container in the path; detach keeps it in the body, beside its other fields.
 *
 *   GET  /containers            -> { containers: ContainerRow[], attachments: Attachment[] }
 *   POST /containers            { name, cidr?, cmd: string[], env?: {K: V} } -> ContainerRecord   (cidr: any address form; empty = net:default)
 *   POST /containers/attach     { pid | netns, cidr? } -> Attachment   (cidr: any address form; empty = net:default)
 *   POST /containers/detach     { id, cidr? } -> ContainerRecord
 *                               { pid | netns, cidr? } -> { detached: Attachment[] }  (releases IPAM addresses)
 *   DELETE /containers/:id      -> ContainerRecord   (id: an id or a name, percent-encoded)
 */
import { z } from 'zod';
import { defineRoutes } from '../api/contract.js';
import { addressSpecSchema, interfaceCidrSchema } from '../api/validate.js';
import { CONTAINER_PATHS } from './api-paths.js';

const idText = z.string().min(1).max(128);
/** a.b.c.d/n, net:a.b.c.d/n, net:default, or empty (= net:default): an AddressSpec on the server side. */
const addressSpec = addressSpecSchema.prefault('');
/** One address of a container or attachment, a.b.c.d/n: a Cidr on the server side. */
const cidrText = interfaceCidrSchema;
const pidNumber = z.number().int().min(2).max(4_194_304);
const netnsPath = z
  .string()
  .max(255)
  .regex(/^\/[^\0]*$/, 'an absolute path like /run/netns/NAME');

export const runBodySchema = z
  .object({
    name: z.string().min(1).max(63),
    cidr: addressSpec,
    cmd: z.array(z.string().max(4096)).min(1).max(256),
    env: z.record(z.string().max(128), z.string().max(4096)).optional(),
  })
  .strict();

export const attachBodySchema = z
  .object({
    pid: pidNumber.optional(),
    netns: netnsPath.optional(),
    cidr: addressSpec,
  })
  .strict()
  .refine((b) => (b.pid === undefined) !== (b.netns === undefined), 'give exactly one of pid and netns');

export const detachBodySchema = z.union([
  z.object({ id: idText, cidr: cidrText.optional() }).strict(),
  z.object({ pid: pidNumber, cidr: cidrText.optional() }).strict(),
  z.object({ netns: netnsPath, cidr: cidrText.optional() }).strict(),
]);
export const removeBodySchema = z.object({ id: idText }).strict();

const netnsTargetSchema = z.union([z.object({ pid: z.number().int() }), z.object({ path: z.string() })]);

/** A container's record (src/containers/types.ts ContainerRecord) as the API sends it. */
export const containerRecordSchema = z.object({
  id: z.string(),
  name: z.string(),
  pid: z.number().int(),
  pidStartTime: z.number(),
  unsharePid: z.number().int(),
  mac: z.string(),
  cidrs: z.array(z.string()),
  hostVeth: z.string(),
  bridge: z.string(),
  createdAt: z.string(),
});

export const attachmentSchema = z.object({
  target: netnsTargetSchema,
  cidr: z.string(),
  ipamId: z.string().optional(),
  mac: z.string(),
  hostVeth: z.string().nullable(),
});

export const containerRowSchema = z.object({
  id: z.string(),
  name: z.string(),
  mac: z.string(),
  cidrs: z.array(z.string()),
  pid: z.number().int(),
  alive: z.boolean(),
  createdAt: z.string(),
});

export const containerListSchema = z.object({ containers: z.array(containerRowSchema), attachments: z.array(attachmentSchema) });
export const detachResultSchema = z.union([containerRecordSchema, z.object({ detached: z.array(attachmentSchema) })]);

export type ContainerRecordJson = z.output<typeof containerRecordSchema>;
export type AttachmentJson = z.output<typeof attachmentSchema>;
export type ContainerRowJson = z.output<typeof containerRowSchema>;
export type ContainerListJson = z.output<typeof containerListSchema>;

export const CONTAINER_ROUTES = defineRoutes({
  list: { ...CONTAINER_PATHS.list, response: containerListSchema },
  run: { ...CONTAINER_PATHS.run, request: runBodySchema, response: containerRecordSchema },
  attach: { ...CONTAINER_PATHS.attach, request: attachBodySchema, response: attachmentSchema },
  detach: { ...CONTAINER_PATHS.detach, request: detachBodySchema, response: detachResultSchema },
  remove: { ...CONTAINER_PATHS.remove, request: removeBodySchema, response: containerRecordSchema },
});
