import { Command } from 'commander';
import { DEFAULT_HTTP_ADDR, LoomClient } from '../client/index.js';
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

/** The CLI's only way to the daemon: the typed client (src/client). */
export function clientFor(ctx: CliContext, opts: { httpAddr?: string }): LoomClient {
  return new LoomClient({ address: opts.httpAddr ?? ctx.env['LOOM_HTTP_ADDR'] ?? DEFAULT_HTTP_ADDR });
}
