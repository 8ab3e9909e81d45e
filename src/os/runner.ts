/**
 * The one place that starts OS commands (ip, bridge, nft, sysctl, nsenter...). Always an argument
 * array, never a shell string. Tests replace the runner with a recorder to check the commands a
 * plan produces without root.
 */
import { execFile, spawn, type StdioOptions } from 'node:child_process';
import { LoomError } from '../core/errors.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Run inside this named network namespace (`ip netns exec NAME ...`). */
  netns?: string;
  /** Data written to stdin. */
  input?: string;
  /** Do not throw on a non-zero exit; return the result instead. */
  allowFailure?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface CommandRunner {
  run(cmd: string, args: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

function withNetns(cmd: string, args: readonly string[], netns: string | undefined): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, cmd, ...args]] : [cmd, [...args]];
}

export const systemRunner: CommandRunner = {
  run(cmd, args, options = {}) {
    const [file, argv] = withNetns(cmd, args, options.netns);
    return new Promise((resolve, reject) => {
      const child = execFile(
        file,
        argv,
        { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          const result = { code, stdout: String(stdout), stderr: String(stderr) };
          if (code !== 0 && !options.allowFailure) {
            reject(
              new LoomError('ERR_OS_COMMAND', `${file} ${argv.join(' ')} failed (exit ${code}): ${result.stderr.trim().slice(0, 500)}`, {
                detail: { cmd: file, args: argv, code, stderr: result.stderr },
              }),
            );
            return;
          }
          resolve(result);
        },
      );
      if (options.input !== undefined) child.stdin?.end(options.input);
    });
  },
};

/** A runner that records every call and answers from a table; for unit tests of plans. */
export class RecordingRunner implements CommandRunner {
  readonly calls: Array<{ cmd: string; args: string[]; netns?: string }> = [];
  constructor(private readonly answer: (cmd: string, args: readonly string[]) => Partial<CommandResult> = () => ({})) {}
  async run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    this.calls.push({ cmd, args: [...args], ...(options.netns ? { netns: options.netns } : {}) });
    const a = this.answer(cmd, args);
    const result = { code: a.code ?? 0, stdout: a.stdout ?? '', stderr: a.stderr ?? '' };
    if (result.code !== 0 && !options.allowFailure) throw new LoomError('ERR_OS_COMMAND', `${cmd} failed`, { detail: { ...result } });
    return result;
  }
}

/**
 * Starts a long-running child (a router, a test server) and hands back the process; never a shell.
 * `stdio` overrides the default (stdin ignored, stdout+stderr to `logFile`), e.g. 'inherit' for `loom exec`.
 */
export function startProcess(
  cmd: string,
  args: readonly string[],
  options: { netns?: string; env?: NodeJS.ProcessEnv; logFile?: number | 'ignore'; detached?: boolean; stdio?: StdioOptions } = {},
) {
  const [file, argv] = withNetns(cmd, args, options.netns);
  const out = options.logFile ?? 'ignore';
  return spawn(file, argv, { stdio: options.stdio ?? ['ignore', out, out], env: options.env ?? process.env, detached: options.detached ?? false });
}
