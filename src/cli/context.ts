import type { CliExecutor } from '../daemon/cli-exec.js';
import type { RouterFactory } from '../daemon/foreground.js';

/**
 * What a command may touch besides its arguments. Tests pass their own: output is captured, the
 * environment is a plain object, and the router factory can be a test double.
 */
export interface CliContext {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Node and its flags, to re-execute the CLI for a background daemon. */
  node: string[];
  /** The CLI's entry module, to re-execute it. */
  entry: string;
  /** Loaded on first use so that commands talking to a daemon do not load the mesh. */
  loadRouterFactory(): Promise<RouterFactory>;
  /**
   * Set by a command that succeeded as a CLI call but has an exit code of its own to pass on
   * (`loom exec` returns the command's code); runCli returns it instead of 0. Errors still exit 1.
   */
  exitCode?: number;
  /**
   * Runs a hot command's whole command line in this process, output captured (./in-process.ts):
   * what `launch --foreground` hands the daemon for the native `loom` front (native/loom.c).
   * Null: not a command the router runs. Absent in tests' contexts: no such route.
   */
  cliExec?: CliExecutor;
}
