import type { CliContext } from '../../src/cli/context.js';
import { LoomError } from '../../src/core/errors.js';

/** A CLI context that keeps what the CLI prints; `env` is its whole environment (LOOM_HTTP_ADDR...). */
export function captureCli(env: NodeJS.ProcessEnv = {}): CliContext & { stdout: string; stderr: string } {
  const ctx = {
    stdout: '',
    stderr: '',
    out(t: string) {
      ctx.stdout += t;
    },
    err(t: string) {
      ctx.stderr += t;
    },
    env,
    node: [process.execPath],
    entry: '/nonexistent/loom-entry.js',
    loadRouterFactory: async () => {
      throw new LoomError('ERR_INTERNAL', 'no router in this test');
    },
  };
  return ctx;
}

/** The same, talking to the API at `addr`: "@name" is a local socket (the whole API), "host:port" the read-only TCP API. */
export function cliContext(addr: string): CliContext & { stdout: string; stderr: string } {
  return captureCli(addr.startsWith('@') ? { LOOM_API_SOCKET: addr.slice(1) } : { LOOM_HTTP_ADDR: addr });
}
