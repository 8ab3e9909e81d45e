import { z } from 'zod';
import { LoomError } from '../core/errors.js';
import { MAX_ADDRESS_SPEC_LENGTH, parseAddressSpec } from '../core/address-spec.js';
import { parseCidr } from '../core/net.js';
import { parseHostPort } from '../core/host-port.js';

export { DEFAULT_API_SOCKET } from '../core/endpoints.js';
export { MAX_API_SOCKET_BYTES, parseApiSocketName } from '../core/endpoints.js';
export { parsePort, parseHostPort, type HostPort } from '../core/host-port.js';

/** Validates a peer target "host[:port]" and returns it unchanged (the router applies the default port). */
export function parsePeerTarget(value: unknown): string {
  parseHostPort(value, 'peer address');
  return value as string;
}

/** Turns a zod failure into ERR_INVALID_ARGUMENT naming the first bad field. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${what}${where}: ${issue?.message ?? 'bad value'}`);
}

const peerList = z.array(z.string().max(300)).min(1, 'at least one peer').max(1000);

export const connectBodySchema = z.object({ peers: peerList, replace: z.boolean().optional() }).strict();
export const forgetBodySchema = z.object({ peers: peerList }).strict();

export type ConnectBody = z.infer<typeof connectBodySchema>;
export type ForgetBody = z.infer<typeof forgetBodySchema>;

/**
 * Parses a zod-checked string with one of core's parsers (which throw ERR_INVALID_ARGUMENT); its
 * message becomes the zod issue, so `parseWith` reports it at the field. The client's input type
 * stays the string, the server's output type is the parsed value.
 */
export function parsedString<T>(text: z.ZodType<string>, parse: (value: string) => T) {
  return text.transform((value, ctx) => {
    try {
      return parse(value);
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: err instanceof LoomError ? err.message : String(err), input: value });
      return z.NEVER;
    }
  });
}

/** The address argument of run/attach/expose (core/address-spec.ts): empty or absent = net:default. */
export const addressSpecSchema = parsedString(z.string().max(MAX_ADDRESS_SPEC_LENGTH), parseAddressSpec);

/** An interface address "a.b.c.d/n" (prefix 1..32; leading zeros accepted, as address specs take them). */
export const interfaceCidrSchema = parsedString(z.string().max(MAX_ADDRESS_SPEC_LENGTH), (value) => parseCidr(value.trim(), { leadingZeros: true, minPrefix: 1 }));
