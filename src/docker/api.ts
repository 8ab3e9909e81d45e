/**
 * The Docker integration's HTTP contract:
 *   POST /docker/attach   { container: ID-or-name, cidr? } -> DockerAttachment
 *   GET  /docker          -> status (also the report section)
 */
import { z } from 'zod';
import { defineRoutes } from '../api/contract.js';
import { addressSpecSchema } from '../api/validate.js';

export const dockerAttachBodySchema = z
  .object({
    container: z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a Docker container id or name'),
    cidr: addressSpecSchema.prefault(''),
  })
  .strict();

export const dockerAttachmentSchema = z.object({ containerId: z.string(), name: z.string(), ipamId: z.string(), cidr: z.string(), mac: z.string() });

export const dockerStatusSchema = z.object({
  api: z.string(),
  state: z.enum(['off', 'waiting', 'other-namespace', 'connected']),
  pluginSocket: z.string().nullable(),
  networks: z.number(),
  endpoints: z.number(),
  attachments: z.number(),
});

export type DockerStatus = z.output<typeof dockerStatusSchema>;

export const DOCKER_ROUTES = defineRoutes({
  attach: { method: 'POST', path: '/docker/attach', request: dockerAttachBodySchema, response: dockerAttachmentSchema },
  status: { method: 'GET', path: '/docker', response: dockerStatusSchema },
});
