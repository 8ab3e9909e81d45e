import type { Command } from 'commander';
import type { LoomClient } from '../client/index.js';
import type { TypedClient } from '../api/contract.js';
import type { CONTAINER_ROUTES } from '../containers/api.js';
import { DEFAULT_API_SOCKET, DEFAULT_HTTP_ADDR } from '../core/endpoints.js';
import type { CliContext } from './context.js';

/**
 * One CLI command per file. `register` adds it to the program; its action resolves when done
 * and throws a LoomError on failure (printed by the runner as "loom: CODE: message", exit 1).
 */
export interface CliCommand {
  register(program: Command, ctx: CliContext): void;
}

/** The options every daemon-facing command takes: where the router's API is. */
export function withHttpAddr(cmd: Command): Command {
  return cmd
    .option('--api-socket <name>', `the router's local socket, the whole API for root (env LOOM_API_SOCKET, default ${DEFAULT_API_SOCKET}: the router of this network namespace)`)
    .option('--http-addr <addr>', `the router's read-only TCP API instead, e.g. ${DEFAULT_HTTP_ADDR}: status and lists only (env LOOM_HTTP_ADDR)`);
}

/**
 * The CLI's only way to the daemon: the typed client (src/client). The local socket unless a TCP
 * address is given (and no socket): a command that changes something is then refused by the router
 * with ERR_FORBIDDEN, which says to use the socket. A flag wins over the environment, and a socket
 * over an address given the same way.
 */
export async function clientFor(ctx: CliContext, opts: { httpAddr?: string; apiSocket?: string }): Promise<LoomClient> {
  // Loaded here, not at start-up: the client's schemas (zod) are most of what `loom --help` would load.
  const { LoomClient } = await import('../client/index.js');
  return new LoomClient(clientInit(opts, ctx.env));
}

/**
 * The containers' methods alone, for the hot commands (`run`, `rm`, `ps`, `attach`, `detach`,
 * `exec`): the same endpoint and types as `clientFor(...).containers`, without loading zod
 * (src/client/containers.ts).
 */
export async function containersFor(ctx: CliContext, opts: { httpAddr?: string; apiSocket?: string }): Promise<TypedClient<typeof CONTAINER_ROUTES>> {
  const { containersClient } = await import('../client/containers.js');
  return containersClient(clientInit(opts, ctx.env));
}

/** The client's endpoint from the flags and the environment (see clientFor). */
export function clientInit(opts: { httpAddr?: string; apiSocket?: string }, env: CliContext['env']): { socket?: string; address?: string } {
  if (opts.apiSocket !== undefined) return { socket: opts.apiSocket };
  if (opts.httpAddr !== undefined) return { address: opts.httpAddr };
  const socket = env['LOOM_API_SOCKET'];
  if (socket !== undefined && socket !== '') return { socket };
  const address = env['LOOM_HTTP_ADDR'];
  if (address !== undefined && address !== '') return { address };
  return {};
}
