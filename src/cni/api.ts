/**
 * The router's CNI routes (the daemon side of the plugin): request and response schemas in one
 * table, shared by ./routes.ts and any typed client. The plugin sends the plain shapes of
 * ./wire.ts without zod; a unit test holds those requests to these schemas.
 */
import { z } from 'zod';
import { defineRoutes } from '../api/contract.js';
import { CNI_PATHS } from './wire.js';

/** The spec's grammar for container ids and network names. */
const cniId = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'letters, digits, "_", "." and "-"');
const ifname = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[^/:\s]+$/, 'no "/", ":" or whitespace')
  .refine((n) => n !== '.' && n !== '..', 'not "." or ".."');
const netnsPath = z
  .string()
  .max(4096)
  .regex(/^\/[^\0]*$/, 'an absolute path');
const cidrText = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'a.b.c.d/n');
const ipText = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'a.b.c.d');

const key = { containerId: cniId, ifname };

export const addRequestSchema = z
  .object({ ...key, network: cniId, netns: netnsPath, podName: z.string().min(1).max(253).optional(), address: cidrText.optional(), gateway: ipText.optional() })
  .strict();
export const checkRequestSchema = z.object({ ...key, network: cniId, netns: netnsPath }).strict();
export const delRequestSchema = z.object({ ...key, network: cniId, netns: netnsPath.optional() }).strict();
const keySchema = z.object(key).strict();
export const gcRequestSchema = z.object({ network: cniId, valid: z.array(keySchema).max(100_000) }).strict();

export const cniAttachmentSchema = z.object({
  containerId: z.string(),
  ifname: z.string(),
  network: z.string(),
  netns: z.string(),
  hostVeth: z.string(),
  mac: z.string(),
  cidr: z.string(),
  gateway: z.string().optional(),
  dns: z.object({ nameservers: z.array(z.string()), search: z.array(z.string()) }).optional(),
  routes: z.array(z.object({ dst: z.string(), gw: z.string().optional() })),
});
export const delResponseSchema = z.object({ released: z.boolean() });
export const gcResponseSchema = z.object({ released: z.array(z.object({ containerId: z.string(), ifname: z.string() })) });
export const statusResponseSchema = z.object({ ready: z.boolean(), reason: z.string().optional() });
export const listResponseSchema = z.object({ attachments: z.array(cniAttachmentSchema) });

/**
 * POST /cni/exec (the native shim, native/loom-cni.c): a whole CNI call. Only the six CNI_*
 * variables travel (unset ones left out); the bounds are generous for real calls, and a call
 * beyond them gets a 400, on which the shim runs the Node plugin (which then judges it).
 */
export const MAX_EXEC_STDIN = 1024 * 1024;
const envValue = (max: number) => z.string().max(max).optional();
export const cniExecRequestSchema = z
  .object({
    env: z
      .object({
        CNI_COMMAND: envValue(64),
        CNI_CONTAINERID: envValue(4096),
        CNI_NETNS: envValue(4096),
        CNI_IFNAME: envValue(256),
        CNI_ARGS: envValue(65_536),
        CNI_PATH: envValue(65_536),
      })
      .strict(),
    stdin: z.string().max(MAX_EXEC_STDIN),
  })
  .strict();
export type CniExecRequest = z.output<typeof cniExecRequestSchema>;
/** text/plain: `exit <n>\n` then the plugin's stdout, or `fallback <reason>\n` (run the Node plugin). */
export const cniExecResponseSchema = z.string().regex(/^(exit \d{1,3}\n|fallback [^\n]*\n)/);

export const CNI_ROUTES = defineRoutes({
  add: { method: 'POST', path: CNI_PATHS.add, request: addRequestSchema, response: cniAttachmentSchema },
  check: { method: 'POST', path: CNI_PATHS.check, request: checkRequestSchema, response: cniAttachmentSchema },
  del: { method: 'POST', path: CNI_PATHS.del, request: delRequestSchema, response: delResponseSchema },
  gc: { method: 'POST', path: CNI_PATHS.gc, request: gcRequestSchema, response: gcResponseSchema },
  status: { method: 'GET', path: CNI_PATHS.status, response: statusResponseSchema },
  list: { method: 'GET', path: '/cni/attachments', response: listResponseSchema },
  exec: { method: 'POST', path: CNI_PATHS.exec, request: cniExecRequestSchema, response: cniExecResponseSchema, text: true },
});
