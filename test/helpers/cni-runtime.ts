/**
 * A container runtime's side of CNI, as the spec describes it and libcni does it: one plugin call
 * with CNI_* variables and the conf on stdin, and a conflist run (each plugin gets the list's
 * name and cniVersion, `runtimeConfig` for the capabilities it declares, and the previous result
 * as `prevResult`; DEL and CHECK get the cached ADD result; DEL runs the list backwards). Calls
 * run inside a lab host's namespace, where that host's router answers on 127.0.0.1:6784.
 */
import { join } from 'node:path';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { repoRoot } from '../../src/demo/loom-cli.js';

/** The native shim (npm run build): every call goes through it, and through its Node fallback when the router will not answer. */
export const LOOM_CNI = join(repoRoot(), 'dist', 'bin', 'loom-cni');
export const REFERENCE_PLUGINS = '/usr/lib/cni';

export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
  /** The conf: an object is sent as JSON, a string as given (malformed input). */
  stdin: unknown;
  /** The plugin executable; default dist/bin/loom-cni (the native shim). */
  plugin?: string;
}

export interface CniAnswer {
  code: number;
  stdout: string;
  /** stdout parsed, or null when empty or not JSON. */
  json: Record<string, unknown> | null;
}

export async function cniCall(lab: Lab, host: LabHost, call: CniCall): Promise<CniAnswer> {
  const env: NodeJS.ProcessEnv = { CNI_COMMAND: call.command, CNI_PATH: call.path ?? `${REFERENCE_PLUGINS}:${join(repoRoot(), 'bin')}` };
  if (call.containerId !== undefined) env['CNI_CONTAINERID'] = call.containerId;
  if (call.netns !== undefined) env['CNI_NETNS'] = call.netns;
  if (call.ifname !== undefined) env['CNI_IFNAME'] = call.ifname;
  if (call.args !== undefined) env['CNI_ARGS'] = call.args;
  const input = typeof call.stdin === 'string' ? call.stdin : JSON.stringify(call.stdin);
  const r = await lab.exec(host, call.plugin ?? LOOM_CNI, [], { env: stripCni(env), input, allowFailure: true, timeoutMs: 60_000 });
  let json: Record<string, unknown> | null = null;
  try {
    json = r.stdout.trim() === '' ? null : (JSON.parse(r.stdout) as Record<string, unknown>);
  } catch {
    json = null;
  }
  return { code: r.code, stdout: r.stdout, json };
}

/** The test process's own CNI_* variables must not leak into a call that leaves one out on purpose. */
function stripCni(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CNI_')) out[k] = v;
  for (const k of ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS']) out[k] = '';
  return { ...out, ...env };
}

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string; capabilities?: Record<string, boolean> }>;
}

export interface Sandbox {
  containerId: string;
  netns: string;
  ifname: string;
  args?: string;
  /** Runtime config for capabilities (portMappings, bandwidth...). */
  runtimeConfig?: Record<string, unknown>;
}

function pluginConf(list: Conflist, plugin: Conflist['plugins'][number], sandbox: Sandbox, prevResult: unknown): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) if (on && sandbox.runtimeConfig?.[cap] !== undefined) rc[cap] = sandbox.runtimeConfig[cap];
  if (Object.keys(rc).length > 0) conf['runtimeConfig'] = rc;
  if (prevResult !== undefined && prevResult !== null) conf['prevResult'] = prevResult;
  return conf;
}

/** ADD through the list; the final result (what a runtime caches), or the first error. */
export async function conflistAdd(lab: Lab, host: LabHost, list: Conflist, sandbox: Sandbox): Promise<CniAnswer> {
  let prev: unknown = undefined;
  let last: CniAnswer = { code: 0, stdout: '', json: null };
  for (const p of list.plugins) {
    last = await cniCall(lab, host, { command: 'ADD', ...sandboxEnv(sandbox), stdin: pluginConf(list, p, sandbox, prev), plugin: pluginPath(p.type) });
    if (last.code !== 0) return last;
    prev = last.json;
  }
  return last;
}

/** DEL (backwards) or CHECK (forwards) with the cached ADD result as prevResult. */
export async function conflistRun(lab: Lab, host: LabHost, command: 'DEL' | 'CHECK', list: Conflist, sandbox: Sandbox, cached: unknown): Promise<CniAnswer[]> {
  const plugins = command === 'DEL' ? [...list.plugins].reverse() : list.plugins;
  const answers: CniAnswer[] = [];
  for (const p of plugins) answers.push(await cniCall(lab, host, { command, ...sandboxEnv(sandbox), stdin: pluginConf(list, p, sandbox, cached), plugin: pluginPath(p.type) }));
  return answers;
}

function sandboxEnv(s: Sandbox): Pick<CniCall, 'containerId' | 'netns' | 'ifname' | 'args'> {
  return { containerId: s.containerId, netns: s.netns, ifname: s.ifname, ...(s.args === undefined ? {} : { args: s.args }) };
}

function pluginPath(type: string): string {
  return type === 'loom-cni' ? LOOM_CNI : join(REFERENCE_PLUGINS, type);
}
