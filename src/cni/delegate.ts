/**
 * Delegated IPAM (spec section 4, "Delegated plugin protocol"): the plugin named in `ipam.type`
 * is found in CNI_PATH and run with the same environment and the same configuration on stdin;
 * its result (ADD) or error is taken as is. Started through src/os (argument array, no shell).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { systemRunner, type CommandRunner } from '../os/runner.js';
import { CNI_ERRORS, CniError } from './spec.js';

export interface Delegator {
  /** Runs `type` for `command`; the parsed stdout (null when empty). Throws the delegate's error as a CniError. */
  run(type: string, command: string, stdin: string): Promise<unknown>;
}

export function execDelegator(env: Readonly<Record<string, string | undefined>>, path: readonly string[], runner: CommandRunner = systemRunner): Delegator {
  return {
    async run(type, command, stdin) {
      const file = path.map((dir) => join(dir, type)).find((p) => existsSync(p));
      if (file === undefined) throw new CniError(CNI_ERRORS.INVALID_CONFIG, `IPAM plugin ${type} not found`, `searched CNI_PATH ${path.join(':')}`);
      const out = await runner.run(file, [], { input: stdin, env: { ...env, CNI_COMMAND: command }, allowFailure: true, timeoutMs: 60_000 });
      let json: unknown = null;
      if (out.stdout.trim() !== '') {
        try {
          json = JSON.parse(out.stdout);
        } catch {
          throw new CniError(CNI_ERRORS.DECODE_FAILURE, `IPAM plugin ${type} printed something that is not JSON`, out.stdout.slice(0, 200));
        }
      }
      if (out.code !== 0) {
        const e = (json ?? {}) as { code?: unknown; msg?: unknown; details?: unknown };
        throw new CniError(typeof e.code === 'number' ? e.code : CNI_ERRORS.ROUTER_FAILED, `IPAM plugin ${type}: ${typeof e.msg === 'string' ? e.msg : `exit ${out.code}`}`, typeof e.details === 'string' ? e.details : out.stderr.slice(0, 300));
      }
      return json;
    },
  };
}
