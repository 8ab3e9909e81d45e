import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { LoomError } from '../core/errors.js';
import { parsePeerName, type PeerName } from '../core/ids.js';
import { DEFAULT_HTTP_ADDR } from '../api/client.js';
import { DEFAULT_API_SOCKET, parseApiSocketName, parseHostPort, parsePeerTarget, parsePort } from '../api/validate.js';
import { dnsArgs, parseDnsOptions, type DnsLaunchConfig, type RawDnsOptions } from '../dns/daemon-options.js';
import { ipamArgs, parseIpamOptions, type IpamLaunchConfig, type RawIpamOptions } from '../ipam/daemon-options.js';
import { kubeArgs, parseKubeOptions, type KubeLaunchConfig, type RawKubeOptions } from '../kube/launch-options.js';
import { dockerArgs, parseDockerOptions, type DockerLaunchConfig, type RawDockerOptions } from '../docker/options.js';
import { dataplaneArgs, parseDataplaneOptions, type DataplaneLaunchConfig, type RawDataplaneOptions } from '../dataplane/controller/launch-options.js';

import { DEFAULT_PORT } from '../core/endpoints.js';
import { DEFAULT_CONN_LIMIT, DEFAULT_STATE_DIR } from './defaults.js';

export { DEFAULT_CONN_LIMIT, DEFAULT_PORT, DEFAULT_STATE_DIR };
const MAX_CONN_LIMIT = 10_000;
const NICKNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `loom launch` after validation: everything the daemon needs, typed and bounded. */
export interface LaunchConfig {
  port: number;
  /** Overrides the peer name kept in the state dir for this run. */
  name: PeerName | undefined;
  nickname: string;
  password: string | undefined;
  discovery: boolean;
  connLimit: number;
  stateDir: string;
  /** "host:port" of the read-only TCP API (GET: status, report, metrics). */
  httpAddr: string;
  httpHost: string;
  httpPort: number;
  /**
   * Abstract unix socket name of the whole API (root only; the CLI's default). null = none: only
   * tests set that, since every daemon of a unit test shares the root network namespace.
   */
  apiSocket: string | null;
  peers: string[];
  dns: DnsLaunchConfig;
  ipam: IpamLaunchConfig;
  dataplane: DataplaneLaunchConfig;
  /** Peers from the Kubernetes API (`--kube-peers`); null = off. */
  kube: KubeLaunchConfig | null;
  /** The Docker integration (--no-docker, --docker-api, --docker-plugin-dir). */
  docker: DockerLaunchConfig;
  /** The daemon's log level (--log-level, else LOOM_LOG_LEVEL, default info). */
  logLevel: LogLevel;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** What `--log-level` takes; LOOM_LOG_LEVEL also takes the rest of LOG_LEVELS. */
export const CLI_LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** What commander hands over (strings, as typed by the user) plus the environment's fallbacks. */
export interface RawLaunchOptions extends RawDnsOptions, RawIpamOptions, RawDataplaneOptions, RawKubeOptions, RawDockerOptions {
  port?: string | undefined;
  name?: string | undefined;
  nickname?: string | undefined;
  password?: string | undefined;
  discovery?: boolean | undefined;
  connLimit?: string | undefined;
  stateDir?: string | undefined;
  httpAddr?: string | undefined;
  apiSocket?: string | undefined;
  logLevel?: string | undefined;
}

/**
 * Validates `loom launch` arguments once, at the edge. Environment fallbacks: LOOM_PASSWORD,
 * LOOM_STATE_DIR, LOOM_HTTP_ADDR, LOOM_API_SOCKET, LOOM_LOG_LEVEL (a flag wins); environment only: LOOM_DNS_UDP, LOOM_DNS_NATIVE,
 * LOOM_DATAPLANE, LOOM_MTU, LOOM_RELAY_PATH, NODE_TEST_CONTEXT; with --kube-peers also
 * KUBERNETES_SERVICE_HOST/PORT, NODE_NAME and POD_NAMESPACE. This is the one place the daemon
 * reads its environment; the settings travel down in the LaunchConfig. Throws
 * ERR_INVALID_ARGUMENT naming the option (ERR_INVALID_CONFIG for a bad LOOM_DNS_UDP or LOOM_DNS_NATIVE).
 */
export function parseLaunchOptions(raw: RawLaunchOptions, peers: readonly string[], env: NodeJS.ProcessEnv = process.env, host: string = hostname()): LaunchConfig {
  const port = raw.port === undefined ? DEFAULT_PORT : parsePort(raw.port, '--port');
  const name = raw.name === undefined ? undefined : parsePeerName(raw.name);
  const nickname = raw.nickname ?? defaultNickname(host);
  if (!NICKNAME_RE.test(nickname)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --nickname "${nickname.slice(0, 70)}": 1-64 letters, digits, ".", "_" or "-"`);
  const password = raw.password ?? env['LOOM_PASSWORD'];
  if (password !== undefined && (password.length === 0 || password.length > 1024)) throw new LoomError('ERR_INVALID_ARGUMENT', 'invalid password: 1-1024 characters');
  const connLimit = raw.connLimit === undefined ? DEFAULT_CONN_LIMIT : parseConnLimit(raw.connLimit);
  const stateDirText = raw.stateDir ?? env['LOOM_STATE_DIR'] ?? DEFAULT_STATE_DIR;
  if (stateDirText.length === 0 || stateDirText.length > 1024 || stateDirText.includes('\0')) throw new LoomError('ERR_INVALID_ARGUMENT', 'invalid --state-dir');
  const httpAddr = raw.httpAddr ?? env['LOOM_HTTP_ADDR'] ?? DEFAULT_HTTP_ADDR;
  const http = parseHostPort(httpAddr, '--http-addr');
  if (http.port === undefined) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --http-addr "${httpAddr.slice(0, 60)}": expected host:port`);
  const apiSocket = parseApiSocketName(raw.apiSocket ?? env['LOOM_API_SOCKET'] ?? DEFAULT_API_SOCKET, '--api-socket');
  if (peers.length > 1000) throw new LoomError('ERR_INVALID_ARGUMENT', 'too many peers (at most 1000)');
  return {
    port,
    name,
    nickname,
    password,
    discovery: raw.discovery ?? true,
    connLimit,
    stateDir: resolve(stateDirText),
    httpAddr,
    httpHost: http.host,
    httpPort: http.port,
    apiSocket,
    peers: peers.map(parsePeerTarget),
    dns: parseDnsOptions(raw, env),
    ipam: parseIpamOptions(raw),
    dataplane: parseDataplaneOptions(raw, env, password !== undefined),
    kube: parseKubeOptions(raw, env),
    docker: parseDockerOptions(raw),
    logLevel: raw.logLevel === undefined ? parseLogLevel(env['LOOM_LOG_LEVEL']) : parseCliLogLevel(raw.logLevel),
  };
}

function parseLogLevel(text: string | undefined): LogLevel {
  if (text === undefined || text === '') return 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid LOOM_LOG_LEVEL "${text.slice(0, 20)}": ${LOG_LEVELS.join(', ')}`);
  return text as LogLevel;
}

function parseCliLogLevel(text: string): LogLevel {
  if (!(CLI_LOG_LEVELS as readonly string[]).includes(text)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --log-level "${text.slice(0, 20)}": expected ${CLI_LOG_LEVELS.join(', ')}`);
  return text as LogLevel;
}

function parseConnLimit(text: string): number {
  const n = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONN_LIMIT) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --conn-limit "${text.slice(0, 20)}": expected 1-${MAX_CONN_LIMIT}`);
  return n;
}

/** The host name's first label, cut to what a nickname allows; "loom" if nothing usable is left. */
export function defaultNickname(host: string): string {
  const label = (host.split('.')[0] ?? '').replace(/[^A-Za-z0-9._-]/g, '').replace(/^[._-]+/, '').slice(0, 64);
  return label.length > 0 ? label : 'loom';
}

/**
 * The arguments that make a re-executed CLI run this exact config in the foreground. The password
 * is not among them (argv is world-readable in /proc): pass it as LOOM_PASSWORD in the child's env.
 */
export function foregroundArgs(config: LaunchConfig): string[] {
  return [
    'launch',
    '--foreground',
    '--port', String(config.port),
    ...(config.name ? ['--name', config.name] : []),
    '--nickname', config.nickname,
    ...(config.discovery ? [] : ['--no-discovery']),
    '--conn-limit', String(config.connLimit),
    '--state-dir', config.stateDir,
    '--http-addr', config.httpAddr,
    // A level only LOOM_LOG_LEVEL can name (trace, silent) reaches the child through its environment.
    ...((CLI_LOG_LEVELS as readonly string[]).includes(config.logLevel) ? ['--log-level', config.logLevel] : []),
    ...(config.apiSocket === null ? [] : ['--api-socket', config.apiSocket]),
    ...dnsArgs(config.dns),
    // Sized from the nodes at start: the child must list them too, not inherit the default.
    ...dropIpallocInit(ipamArgs(config.ipam), config.kube?.sizeFromNodes === true),
    ...dataplaneArgs(config.dataplane),
    ...kubeArgs(config.kube),
    ...dockerArgs(config.docker),
    '--',
    ...config.peers,
  ];
}

function dropIpallocInit(args: string[], drop: boolean): string[] {
  const at = args.indexOf('--ipalloc-init');
  return drop && at !== -1 ? [...args.slice(0, at), ...args.slice(at + 2)] : args;
}
