import { Command } from 'commander';
import { ApiClient, DEFAULT_HTTP_ADDR } from '../api/client.js';
import type { CliContext } from './context.js';

/**
 * One CLI command per file. `register` adds it to the program; its action resolves when done
 * and throws a LoomError on failure (printed by the runner as "loom: CODE: message", exit 1).
 */
export interface CliCommand {
  register(program: Command, ctx: CliContext): void;
}

/** The option every daemon-facing command takes. */
export function withHttpAddr(cmd: Command): Command {
  return cmd.option('--http-addr <addr>', `router API address (env LOOM_HTTP_ADDR, default ${DEFAULT_HTTP_ADDR})`);
}

export function clientFor(ctx: CliContext, opts: { httpAddr?: string }): ApiClient {
  return new ApiClient({ address: opts.httpAddr ?? ctx.env['LOOM_HTTP_ADDR'] ?? DEFAULT_HTTP_ADDR });
}
