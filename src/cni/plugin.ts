/**
 * `loom-cni`: one CNI call, from environment + stdin to stdout + exit code, with the router and
 * a delegated IPAM plugin passed in (fakes in unit tests, HTTP and exec in main.ts).
 *
 * Contracts (the spec's, and the fixed Loom contract in docs/CNI.md):
 * - Every failure is printed as the spec's error object on stdout with a non-zero exit; nothing is
 *   printed on success of DEL, GC and STATUS.
 * - ADD leaves nothing behind when it fails: the router undoes its own part, and a delegated
 *   IPAM's address is given back (delegate DEL) when the router fails.
 * - DEL is idempotent: an unknown container or a missing namespace is success.
 * - GC and STATUS need cniVersion 1.1.0 or later (code 1 otherwise); CHECK needs 0.4.0 or later.
 */
import { decodeStdin, parseCommand, parseEnv, parseNetConf, versionOf, type CniEnv, type NetConf } from './conf.js';
import type { Delegator } from './delegate.js';
import { addressesOf, buildResult, firstIpv4 } from './result.js';
import { RouterUnreachable, type RouterTransport } from './router-client.js';
import { CNI_ERRORS, CniError, errorJson, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from './spec.js';
import { CNI_PATHS, type AddRequest, type CheckRequest, type CniAttachmentJson, type DelRequest, type GcRequest, type GcResponse, type StatusResponse } from './wire.js';

export interface PluginIo {
  env: Readonly<Record<string, string | undefined>>;
  stdin: string;
  /** The router at the conf's `socket` (its abstract name). */
  router: (socket: string) => RouterTransport;
  /** The delegated IPAM plugins, found in CNI_PATH. */
  delegator: (path: readonly string[]) => Delegator;
}

export interface PluginOutput {
  stdout: string;
  exitCode: number;
}

export async function runPlugin(io: PluginIo): Promise<PluginOutput> {
  let version: string = LATEST_VERSION;
  try {
    const command = parseCommand(io.env);
    if (command === 'VERSION') return ok(versionAnswer(io.stdin));
    const decoded = decodeStdin(io.stdin);
    version = versionOf(decoded) ?? LATEST_VERSION;
    const env = parseEnv(io.env);
    const conf = parseNetConf(decoded, command);
    const call: Call = { env, conf, stdin: io.stdin, router: io.router(conf.socket), delegate: io.delegator(env.path) };
    switch (command) {
      case 'ADD':
        return ok(await add(call));
      case 'DEL':
        await del(call);
        return ok(undefined);
      case 'CHECK':
        await check(call);
        return ok(undefined);
      case 'GC':
        await gc(call);
        return ok(undefined);
      case 'STATUS':
        await status(call);
        return ok(undefined);
      default: {
        const never: never = command;
        throw new CniError(CNI_ERRORS.INVALID_ENV, `unknown CNI_COMMAND: ${String(never)}`);
      }
    }
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(CNI_ERRORS.ROUTER_FAILED, 'loom-cni failed', err instanceof Error ? err.message : String(err));
    return { stdout: JSON.stringify(errorJson(e, version)) + '\n', exitCode: 1 };
  }
}

function ok(value: unknown): PluginOutput {
  return { stdout: value === undefined ? '' : JSON.stringify(value) + '\n', exitCode: 0 };
}

/** VERSION: the stdin's version when we speak it (stdin may be empty), and every version we speak. */
function versionAnswer(stdin: string): { cniVersion: string; supportedVersions: string[] } {
  let asked: string | undefined;
  try {
    asked = stdin.trim() === '' ? undefined : versionOf(JSON.parse(stdin));
  } catch {
    asked = undefined;
  }
  return { cniVersion: asked !== undefined && isSupportedVersion(asked) ? asked : LATEST_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}

interface Call {
  env: CniEnv;
  conf: NetConf;
  stdin: string;
  router: RouterTransport;
  delegate: Delegator;
}

export function addRequest(env: CniEnv, conf: NetConf, delegated: { address: string; gateway?: string } | null): AddRequest {
  const podName = env.args.get('K8S_POD_NAME');
  return {
    containerId: env.containerId,
    ifname: env.ifname,
    network: conf.name,
    netns: env.netns,
    ...(podName === undefined || podName === '' ? {} : { podName }),
    ...(delegated === null ? {} : { address: delegated.address, ...(delegated.gateway === undefined ? {} : { gateway: delegated.gateway }) }),
  };
}

async function add({ env, conf, stdin, router, delegate }: Call): Promise<unknown> {
  let delegated: { address: string; gateway?: string } | null = null;
  if (conf.ipam) {
    delegated = firstIpv4(await delegate.run(conf.ipam.type, 'ADD', stdin));
    if (delegated === null) {
      await delegate.run(conf.ipam.type, 'DEL', stdin).catch(() => undefined);
      throw new CniError(CNI_ERRORS.INVALID_CONFIG, `IPAM plugin ${conf.ipam.type} gave no IPv4 address`);
    }
  }
  try {
    const attachment = (await router.call('POST', CNI_PATHS.add, addRequest(env, conf, delegated))) as CniAttachmentJson;
    return buildResult(conf.cniVersion, attachment, conf.prevResult);
  } catch (err) {
    if (conf.ipam) await delegate.run(conf.ipam.type, 'DEL', stdin).catch(() => undefined);
    throw err;
  }
}

export function delRequest(env: CniEnv, conf: NetConf): DelRequest {
  return { containerId: env.containerId, ifname: env.ifname, network: conf.name, ...(env.netns === '' ? {} : { netns: env.netns }) };
}

async function del({ env, conf, stdin, router, delegate }: Call): Promise<void> {
  await router.call('POST', CNI_PATHS.del, delRequest(env, conf));
  if (conf.ipam) await delegate.run(conf.ipam.type, 'DEL', stdin);
}

export function checkRequest(env: CniEnv, conf: NetConf): CheckRequest {
  return { containerId: env.containerId, ifname: env.ifname, network: conf.name, netns: env.netns };
}

async function check({ env, conf, stdin, router, delegate }: Call): Promise<void> {
  const a = (await router.call('POST', CNI_PATHS.check, checkRequest(env, conf))) as CniAttachmentJson;
  const listed = addressesOf(conf.prevResult);
  if (conf.prevResult !== undefined && !listed.includes(a.cidr)) {
    throw new CniError(CNI_ERRORS.ROUTER_FAILED, `${env.ifname} has ${a.cidr}, which prevResult does not list`, `prevResult ips: ${listed.join(', ') || 'none'}`);
  }
  if (conf.ipam) await delegate.run(conf.ipam.type, 'CHECK', stdin);
}

export function gcRequest(conf: NetConf): GcRequest {
  return { network: conf.name, valid: conf.validAttachments ?? [] };
}

async function gc({ conf, stdin, router, delegate }: Call): Promise<void> {
  (await router.call('POST', CNI_PATHS.gc, gcRequest(conf))) as GcResponse;
  if (conf.ipam) await ignoreOlderDelegate(delegate.run(conf.ipam.type, 'GC', stdin));
}

async function status({ conf, stdin, router, delegate }: Call): Promise<void> {
  let answer: StatusResponse;
  try {
    answer = (await router.call('GET', CNI_PATHS.status)) as StatusResponse;
  } catch (err) {
    if (err instanceof RouterUnreachable) throw new CniError(CNI_ERRORS.NOT_AVAILABLE, 'plugin not available', err.msg);
    throw err;
  }
  if (!answer.ready) throw new CniError(CNI_ERRORS.NOT_AVAILABLE, 'plugin not available', answer.reason ?? 'the Loom router is not ready');
  if (conf.ipam) await ignoreOlderDelegate(delegate.run(conf.ipam.type, 'STATUS', stdin));
}

/** A delegate older than 1.1.0 refuses GC/STATUS with code 1: it has nothing to collect or report. */
async function ignoreOlderDelegate(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof CniError && err.code === CNI_ERRORS.INCOMPATIBLE_VERSION)) throw err;
  }
}
