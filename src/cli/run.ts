import { Command, CommanderError } from 'commander';
import { LoomError, toLoomError } from '../core/errors.js';
import { LOOM_VERSION } from '../api/version.js';
import { COMMANDS } from './commands/index.js';
import type { CliContext } from './context.js';

/**
 * Exit codes: 0 success; 1 a LoomError (printed "loom: CODE: message", never a stack trace);
 * 2 a usage error found by the parser (unknown command or option, missing argument).
 */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('loom')
    .description('Loom: one virtual Ethernet switch for containers on many hosts')
    .version(`loom ${LOOM_VERSION}`, '-V, --version')
    .showHelpAfterError('(run "loom --help" for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s), writeErr: (s) => ctx.err(s) });
  for (const command of COMMANDS) command.register(program, ctx);
  // Subcommands inherit neither exitOverride nor the output hooks: apply them to each.
  for (const sub of program.commands) sub.exitOverride().configureOutput({ writeOut: (s) => ctx.out(s), writeErr: (s) => ctx.err(s) }).showHelpAfterError();
  return program;
}

/** Runs one CLI invocation (`argv` without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode ?? EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    const loomError = err instanceof LoomError ? err : toLoomError(err);
    ctx.err(`loom: ${loomError.code}: ${loomError.message}\n`);
    if (!(err instanceof LoomError) && ctx.env['LOOM_DEBUG']) ctx.err(`${(err as Error).stack ?? String(err)}\n`);
    return EXIT_ERROR;
  }
}
