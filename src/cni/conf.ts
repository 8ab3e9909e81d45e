/**
 * The plugin's input, parsed once from the environment and stdin into typed values (the spec's
 * section 2 "Parameters" and section 1 "Configuration format"). Every rule failure is a CniError
 * with the spec's code: 4 for the environment, 6 for undecodable JSON, 7 for an invalid config,
 * 1 for a version we do not speak, 2 for a field we cannot honour.
 */
import { CNI_COMMANDS, CNI_ERRORS, CniError, COMMAND_SINCE, compareVersions, isSupportedVersion, type CniCommand, type CniVersion } from './spec.js';
import type { AttachmentKey } from './wire.js';

export const DEFAULT_API = 'http://127.0.0.1:6784';
/**
 * The router's local socket (abstract, in the host's network namespace, root only): where the
 * plugin sends its calls. The same name as src/api/validate.ts DEFAULT_API_SOCKET (not imported:
 * the plugin side loads no zod; test/unit/cni/plugin.test.ts holds them equal).
 */
export const DEFAULT_SOCKET = 'loom/api';
const MAX_SOCKET_BYTES = 107;
const MAX_STDIN = 1024 * 1024;
/** The spec's container id and network name grammar. */
const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_ID = 1024;

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Path of the container's network namespace; empty when not given (allowed for DEL). */
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs. */
  args: ReadonlyMap<string, string>;
  /** CNI_PATH split on ':'. */
  path: string[];
}

/** The delegated IPAM plugin's section, kept whole: it is passed on unchanged. */
export interface IpamSection {
  type: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /**
   * The router's TCP API base URL, as older confs name it. Accepted and checked, no longer used:
   * the router takes changes only on its local socket (`socket`).
   */
  api: string;
  /** The abstract name of the router's local socket (conf field `socket`, default DEFAULT_SOCKET). */
  socket: string;
  /** Present when the conf names an IPAM plugin other than Loom's. */
  ipam?: IpamSection;
  /** The previous plugin's result (chaining; DEL/CHECK: the cached ADD result). */
  prevResult?: PrevResult;
  /** GC: the attachments the runtime still uses. */
  validAttachments?: AttachmentKey[];
}

/** The parts of a result we read from prevResult; the rest is kept as given. */
export interface PrevResult {
  interfaces?: Array<Record<string, unknown>>;
  ips?: Array<Record<string, unknown>>;
  routes?: Array<Record<string, unknown>>;
  dns?: Record<string, unknown>;
  [key: string]: unknown;
}

type Env = Readonly<Record<string, string | undefined>>;

function envError(msg: string, details = ''): CniError {
  return new CniError(CNI_ERRORS.INVALID_ENV, msg, details);
}

/** Spec rules for an interface name: 1-15 bytes, not "." or "..", no '/', ':' or whitespace. */
export function validIfname(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/** CNI_ARGS: "K=V;K2=V2"; an item without '=' is an error (code 4). */
export function parseCniArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (text.trim() === '') return out;
  for (const item of text.split(';')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw envError('invalid CNI_ARGS', `item ${JSON.stringify(item.slice(0, 60))} is not KEY=VALUE`);
    out.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return out;
}

/** Only the command: VERSION needs nothing else, and an unknown command is code 4. */
export function parseCommand(env: Env): CniCommand {
  const command = env['CNI_COMMAND'];
  if (command === undefined || command === '') throw envError('CNI_COMMAND is not set');
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) throw envError(`unknown CNI_COMMAND: ${command.slice(0, 40)}`);
  return command as CniCommand;
}

/** The environment of one call; what each command needs is required (code 4 when missing or malformed). */
export function parseEnv(env: Env): CniEnv {
  const command = parseCommand(env);
  const needsContainer = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = env['CNI_CONTAINERID'] ?? '';
  const netns = env['CNI_NETNS'] ?? '';
  const ifname = env['CNI_IFNAME'] ?? '';
  const path = (env['CNI_PATH'] ?? '').split(':').filter((p) => p !== '');
  if (needsContainer) {
    if (containerId === '') throw envError('CNI_CONTAINERID is not set');
    if (containerId.length > MAX_ID || !ID_RE.test(containerId)) throw envError('invalid CNI_CONTAINERID', `must match ${ID_RE.source}`);
    if (ifname === '') throw envError('CNI_IFNAME is not set');
    if (!validIfname(ifname)) throw envError(`invalid CNI_IFNAME ${JSON.stringify(ifname.slice(0, 40))}`, 'at most 15 bytes, not "." or "..", no "/", ":" or whitespace');
  }
  if ((command === 'ADD' || command === 'CHECK') && netns === '') throw envError('CNI_NETNS is not set');
  if (netns !== '' && (!netns.startsWith('/') || netns.includes('\0') || netns.length > 4096)) throw envError(`invalid CNI_NETNS ${JSON.stringify(netns.slice(0, 60))}`, 'an absolute path');
  if (command !== 'VERSION' && path.length === 0) throw envError('CNI_PATH is not set');
  return { command, containerId, netns, ifname, args: parseCniArgs(env['CNI_ARGS'] ?? ''), path };
}

function configError(msg: string, details = ''): CniError {
  return new CniError(CNI_ERRORS.INVALID_CONFIG, msg, details);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** stdin as JSON (code 6 when it is not). */
export function decodeStdin(text: string): unknown {
  if (text.length > MAX_STDIN) throw new CniError(CNI_ERRORS.DECODE_FAILURE, 'network configuration too large', `over ${MAX_STDIN} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CniError(CNI_ERRORS.DECODE_FAILURE, 'cannot decode network configuration', err instanceof Error ? err.message : String(err));
  }
}

/** The `cniVersion` of a decoded conf if it is a string; for error objects before the conf is valid. */
export function versionOf(value: unknown): string | undefined {
  return isObject(value) && typeof value['cniVersion'] === 'string' ? value['cniVersion'] : undefined;
}

/**
 * The network configuration for `command`. Unknown fields are ignored, as the spec asks; the
 * capability `ips` (static addresses from the runtime) is refused with code 2, since Loom IPAM
 * chooses addresses.
 */
export function parseNetConf(value: unknown, command: CniCommand): NetConf {
  if (!isObject(value)) throw new CniError(CNI_ERRORS.DECODE_FAILURE, 'network configuration is not a JSON object');
  const version = value['cniVersion'];
  if (typeof version !== 'string' || version === '') throw configError('cniVersion is missing');
  if (!isSupportedVersion(version)) throw new CniError(CNI_ERRORS.INCOMPATIBLE_VERSION, `incompatible CNI version ${version.slice(0, 20)}`, `supported: ${['0.4.0', '1.0.0', '1.1.0'].join(', ')}`);
  if (compareVersions(version, COMMAND_SINCE[command]) < 0) throw new CniError(CNI_ERRORS.INCOMPATIBLE_VERSION, `config version ${version} does not allow ${command}`, `${command} needs cniVersion ${COMMAND_SINCE[command]} or later`);
  const name = value['name'];
  if (typeof name !== 'string' || name === '') throw configError('name is missing');
  if (name.length > MAX_ID || !ID_RE.test(name)) throw configError(`invalid network name ${JSON.stringify(name.slice(0, 40))}`, `must match ${ID_RE.source}`);
  const type = value['type'];
  if (type !== undefined && typeof type !== 'string') throw configError('type must be a string');
  const api = value['api'] ?? DEFAULT_API;
  if (typeof api !== 'string' || !/^http:\/\/[^/\s]+\/?$/.test(api)) throw configError(`invalid api ${typeof api === "string" ? JSON.stringify(api.slice(0, 60)) : typeof api}`, 'expected http://HOST:PORT');
  const socket = value['socket'] ?? DEFAULT_SOCKET;
  if (typeof socket !== 'string' || socket.length === 0 || socket.includes('\0') || Buffer.byteLength(socket) > MAX_SOCKET_BYTES) {
    throw configError(`invalid socket ${typeof socket === 'string' ? JSON.stringify(socket.slice(0, 60)) : typeof socket}`, `expected the router's abstract socket name, 1-${MAX_SOCKET_BYTES} bytes`);
  }
  const conf: NetConf = { cniVersion: version, name, type: type ?? 'loom-cni', api: api.replace(/\/$/, ''), socket };

  const ipam = value['ipam'];
  if (ipam !== undefined && ipam !== null) {
    if (!isObject(ipam)) throw configError('ipam must be an object');
    const ipamType = ipam['type'];
    if (ipamType !== undefined && (typeof ipamType !== 'string' || !ID_RE.test(ipamType))) throw configError('invalid ipam type');
    if (typeof ipamType === 'string' && ipamType !== 'loom' && ipamType !== 'loom-cni') conf.ipam = { ...ipam, type: ipamType };
  }
  const runtimeConfig = value['runtimeConfig'];
  if (isObject(runtimeConfig) && Array.isArray(runtimeConfig['ips']) && runtimeConfig['ips'].length > 0 && conf.ipam === undefined) {
    throw new CniError(CNI_ERRORS.UNSUPPORTED_FIELD, 'runtimeConfig.ips is not supported', 'Loom IPAM chooses the address; use a delegated IPAM plugin for static addresses');
  }
  const prev = value['prevResult'];
  if (prev !== undefined && prev !== null) {
    if (!isObject(prev)) throw configError('prevResult must be an object');
    for (const key of ['interfaces', 'ips', 'routes'] as const) if (prev[key] !== undefined && !(Array.isArray(prev[key]) && prev[key].every(isObject))) throw configError(`prevResult.${key} must be a list of objects`);
    if (prev['dns'] !== undefined && !isObject(prev['dns'])) throw configError('prevResult.dns must be an object');
    conf.prevResult = prev;
  }
  if (command === 'GC') {
    const valid = value['cni.dev/valid-attachments'] ?? [];
    if (!Array.isArray(valid)) throw configError('cni.dev/valid-attachments must be a list');
    conf.validAttachments = valid.map((a: unknown, i) => {
      if (!isObject(a) || typeof a['containerID'] !== 'string' || typeof a['ifname'] !== 'string') throw configError(`cni.dev/valid-attachments[${i}] needs containerID and ifname`);
      return { containerId: a['containerID'], ifname: a['ifname'] };
    });
  }
  return conf;
}
