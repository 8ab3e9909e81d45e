/**
 * `POST /cli/exec`: the route the native `loom` front (native/loom.c) calls with a hot command's
 * whole command line; the CLI's own code runs it in this process (src/cli/in-process.ts, handed
 * in by `loom launch --foreground` as a `CliExecutor`: the daemon does not import the CLI).
 *
 * Body: {build, argv, env}. Answer `200 text/plain`: `exit <code> <stdout bytes> <stderr bytes>\n`
 * then stdout and stderr, or `fallback <reason>\n` when the front must run the Node CLI itself:
 * `build` (the front is of another build than this router: after an upgrade the router still
 * runs the old code, and a command must behave as the installed CLI does) or `not-forwarded`.
 * A malformed body is the usual 400. Mutating (POST): served on the local socket only, to root.
 */
import { z } from 'zod';
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { BUILD_ID, UNBUILT } from '../core/build-id.js';

/** A command line run with its output captured. */
export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a forwarded command line (src/cli/in-process.ts); null: not a command the router runs. */
export type CliExecutor = (argv: readonly string[], env: Readonly<Record<string, string>>) => Promise<CliOutcome | null>;

export const CLI_EXEC_PATH = '/cli/exec';
const MAX_WORDS = 4096;
const MAX_WORD = 65_536;

const cliExecRequestSchema = z
  .object({
    build: z.string().max(64),
    argv: z.array(z.string().max(MAX_WORD)).min(1).max(MAX_WORDS),
    env: z.record(z.string().regex(/^LOOM_[A-Za-z0-9_]{0,64}$/, 'only LOOM_* variables'), z.string().max(MAX_WORD)),
  })
  .strict();

/** The answer text the front reads (see the module comment). */
export function cliExecAnswer(outcome: CliOutcome | { fallback: string }): string {
  if ('fallback' in outcome) return `fallback ${outcome.fallback}\n`;
  return `exit ${outcome.code} ${Buffer.byteLength(outcome.stdout)} ${Buffer.byteLength(outcome.stderr)}\n${outcome.stdout}${outcome.stderr}`;
}

export function registerCliExec(api: ApiServer, exec: CliExecutor, ownBuild: string = BUILD_ID): void {
  api.route('POST', CLI_EXEC_PATH, async (req) => {
    const request = parseWith(cliExecRequestSchema, await req.body(), 'CLI exec request');
    const text = (body: string): { text: string; contentType: string } => ({ text: body, contentType: 'text/plain; charset=utf-8' });
    if (ownBuild === UNBUILT || request.build !== ownBuild) return text(cliExecAnswer({ fallback: 'build' }));
    const outcome = await exec(request.argv, request.env);
    return text(cliExecAnswer(outcome ?? { fallback: 'not-forwarded' }));
  });
}
