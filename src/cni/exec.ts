/**
 * The router's half of the native shim (native/loom-cni.c, `POST /cni/exec`): one whole CNI call,
 * run here with the same `runPlugin` as the Node plugin, its router calls answered in process
 * (./routes.ts `localCniTransport`: the same schemas, handlers and error mapping as over HTTP),
 * so an answer through the shim is byte for byte what the Node plugin would print.
 *
 * Contracts:
 * - The router does only what is its own: a conf that names a delegated IPAM plugin (an exec the
 *   runtime asked for, with the runtime's CNI_PATH) or another router's `api` is answered
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

/** Where this router's API listens (its --http address): the `api` a conf must name to run here. */
export interface CniApiAddress {
  host: string;
  port: number;
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

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|::1)$/i;
const WILDCARD = new Set(['0.0.0.0', '::', '[::]']);

/** Whether the conf's `api` (an http://HOST:PORT the conf parser accepted) reaches this router. */
export function isOwnApi(api: string, self: CniApiAddress): boolean {
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    return false;
  }
  const port = url.port === '' ? 80 : Number(url.port);
  if (port !== self.port) return false;
  const host = url.hostname;
  return host === self.host || (LOOPBACK.test(host) && (LOOPBACK.test(self.host) || WILDCARD.has(self.host)));
}

/** Why this call is the Node plugin's, or null to run it here. Unparseable input runs here (runPlugin reports it). */
export function fallbackReason(request: CniExecRequest, self: CniApiAddress): FallbackReason | null {
  try {
    const command = parseCommand(request.env);
    if (command === 'VERSION') return null;
    const conf = parseNetConf(decodeStdin(request.stdin), command);
    if (conf.ipam !== undefined) return 'delegated-ipam';
    if (!isOwnApi(conf.api, self)) return 'other-api';
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
