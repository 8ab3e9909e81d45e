/** Request and response schemas of `/expose` and `/hide` (the contract the CLI's client shares). */
import { z } from 'zod';

export const exposeBodySchema = z.object({ address: z.string().max(64).optional() }).strict();
export const hideBodySchema = z.object({ cidr: z.string().min(1).max(64) }).strict();
