/**
 * The router's half of the native shim (native/loom-cni.c, `POST /cni/exec`): one whole CNI call,
 * run here with the same `runPlugin` as the Node plugin, its router calls answered in process
 * (./routes.ts `localCniTransport`: the same schemas, handlers and error mapping as over HTTP),
 * so an answer through the shim is byte for byte what the Node plugin would print.
 *
 * Contracts:
 * - The router does only what is its own: a conf that names a delegated IPAM plugin (an exec the
 *   runtime asked for, with the runtime's CNI_PATH) or another router's `socket` is answered
 *   `fallback`, and the shim runs the Node plugin, which does it. A conf or environment that does
 *   not parse is not a fallback: runPlugin prints the spec's error, as the Node plugin would.
 * - Never throws: every outcome is an `ExecAnswer`; a malformed body is the route's 400.
 */
import { decodeStdin, parseCommand, parseNetConf } from './conf.js';
import type { Delegator } from './delegate.js';
import { runPlugin } from './plugin.js';
import type { RouterTransport } from './router-client.js';
import type { CniExecRequest } from './api.js';
import { CNI_ERRORS, CniError } from './spec.js';

/** This router's local socket (its --api-socket name): the `socket` a conf must name to run here. */
export interface CniApiAddress {
  socket: string;
}

export type ExecAnswer = { kind: 'exit'; code: number; stdout: string } | { kind: 'fallback'; reason: FallbackReason };
export type FallbackReason = 'delegated-ipam' | 'other-api';

/** The answer body the shim reads: first line `exit <n>` or `fallback <reason>`, then stdout. */
export function execAnswerText(answer: ExecAnswer): string {
  switch (answer.kind) {
    case 'exit':
      return `exit ${answer.code}\n${answer.stdout}`;
    case 'fallback':
      return `fallback ${answer.reason}\n`;
    default: {
      const never: never = answer;
      return never;
    }
  }
}

/** Whether the conf's `socket` (parsed by the conf parser) is this router's. */
export function isOwnApi(socket: string, self: CniApiAddress): boolean {
  return socket === self.socket;
}

/** Why this call is the Node plugin's, or null to run it here. Unparseable input runs here (runPlugin reports it). */
export function fallbackReason(request: CniExecRequest, self: CniApiAddress): FallbackReason | null {
  try {
    const command = parseCommand(request.env);
    if (command === 'VERSION') return null;
    const conf = parseNetConf(decodeStdin(request.stdin), command);
    if (conf.ipam !== undefined) return 'delegated-ipam';
    if (!isOwnApi(conf.socket, self)) return 'other-api';
    return null;
  } catch {
    return null;
  }
}

/** A conf with a delegated IPAM never runs here (fallbackReason); reaching this is a bug, reported as such. */
const noDelegation: Delegator = {
  run(type) {
    return Promise.reject(new CniError(CNI_ERRORS.ROUTER_FAILED, `IPAM plugin ${type} cannot run inside the router`, 'loom-cni-node runs delegated IPAM plugins'));
  },
};

export async function runCniExec(request: CniExecRequest, router: RouterTransport, self: CniApiAddress): Promise<ExecAnswer> {
  const reason = fallbackReason(request, self);
  if (reason !== null) return { kind: 'fallback', reason };
  const out = await runPlugin({ env: request.env, stdin: request.stdin, router: () => router, delegator: () => noDelegation });
  return { kind: 'exit', code: out.exitCode, stdout: out.stdout };
}
