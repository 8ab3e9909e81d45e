/**
 * The router's half of the native `loom` front (native/loom.c, `POST /cli/exec`): one whole command
 * line of a hot command, run here, in the router's process, with the same commander program and the
 * same client (src/client/containers.ts, through this router's own local socket) as a Node CLI would
 * use, its output captured. So a forwarded command prints byte for byte what `node loom.cjs` would,
 * without a Node start (~70 ms here) per call. The router's process already holds this code: it is
 * the CLI's process image (`loom launch --foreground`).
 *
 * Contracts:
 * - Only what `forwardable` allows (the same rule as native/loom.c): `run`, `rm` and `ps`, with no
 *   help asked for and no other API named before `--`. Anything else is answered `fallback` and
 *   the front runs the Node CLI. The environment is only what the front sends (LOOM_* variables).
 * - Never throws: runCli turns every failure into its exit code and stderr text.
 */
import type { CliOutcome } from '../daemon/cli-exec.js';
import type { CliContext } from './context.js';

/** The commands the router runs for the native front. */
export const FORWARDED_COMMANDS: readonly string[] = ['run', 'rm', 'ps'];

/** Whether the router may run this command line (argv after `loom`); the same rule as native/loom.c's `forwardable`. */
export function forwardable(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): boolean {
  if (env['LOOM_CLI_FORWARD'] === '0' || (env['LOOM_HTTP_ADDR'] ?? '') !== '') return false;
  if (!FORWARDED_COMMANDS.includes(argv[0] ?? '')) return false;
  const end = argv.indexOf('--');
  const words = argv.slice(1, end === -1 ? argv.length : end);
  return !words.some((w) => w === '-h' || w === '--help' || w.startsWith('--api-socket') || w.startsWith('--http-addr'));
}

/** The CLI's runner (./run.ts `runCli`), passed in: the module it would import imports every command. */
export type CliRunner = (argv: readonly string[], ctx: CliContext) => Promise<number>;

/**
 * Runs one forwarded command line in this process with `run`; null when it is not one the router
 * runs. `base` gives what a CliContext needs besides output and environment (unused by these commands).
 */
export async function runCliInProcess(run: CliRunner, argv: readonly string[], env: Readonly<Record<string, string>>, base: Pick<CliContext, 'node' | 'entry'>): Promise<CliOutcome | null> {
  if (!forwardable(argv, env)) return null;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const ctx: CliContext = {
    out: (text) => void stdout.push(text),
    err: (text) => void stderr.push(text),
    env: { ...env },
    node: base.node,
    entry: base.entry,
    loadRouterFactory: () => Promise.reject(new Error('not in a forwarded command')),
  };
  const code = await run(argv, ctx);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}
