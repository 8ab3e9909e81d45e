import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { ApiClient } from '../api/client.js';
import { ERROR_CODES, LoomError } from '../core/errors.js';
import { startProcess } from '../os/runner.js';
import { storageFailure } from '../os/storage-error.js';
import { foregroundArgs, type LaunchConfig } from './options.js';
import { StateDir } from './state-dir.js';

export interface BackgroundLaunch {
  /** Node and its flags before the script, e.g. [process.execPath, '--import', 'tsx']. */
  node: string[];
  /** The CLI's entry module (dist/src/cli/loom.cjs, the bundle bin/loom runs, or dist/src/cli/main.js). */
  entry: string;
  /** The child's environment (default process.env); LOOM_PASSWORD is set from the config. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the API to answer; default 10 s. */
  readyTimeoutMs?: number;
}

/**
 * V8 flags of the daemon process (docs/BENCHMARKS.md, issue 14 "Memory"). A semi-space of 1 MiB
 * (V8's default grows it to 16 MiB after a burst of allocation, and keeps it): 2-16 MB less RSS
 * per router; the relay's hot path allocates nothing per packet, so the extra scavenges cost no
 * throughput (`npm run bench -- relay`, same run). A flag already among the CLI's own is not
 * repeated. `loom launch --foreground` run directly takes Node flags from NODE_OPTIONS
 * (deploy/kubernetes/loom.yaml sets this one).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/** The daemon's Node flags after the CLI's own (`cliFlags`): DAEMON_NODE_FLAGS but those the CLI already sets, whatever their value. */
export function daemonNodeFlags(cliFlags: readonly string[]): string[] {
  const name = (flag: string): string => flag.split('=')[0]!;
  return [...cliFlags, ...DAEMON_NODE_FLAGS.filter((f) => !cliFlags.some((g) => name(g) === name(f)))];
}

/**
 * glibc malloc settings for the daemon, as environment variables so that they hold from the
 * process's first allocation (mallopt from inside, src/os/malloc.ts, comes after V8's threads
 * made their arenas: measured 4-7 MB less idle RSS this way than with mallopt alone). One the
 * user set is kept. The daemon removes the ones Loom set (named in MALLOC_ENV_MARK) from its
 * environment at start, so the containers it starts do not inherit them (process-memory.ts).
 */
export const DAEMON_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072' };
export const MALLOC_ENV_MARK = 'LOOM_MALLOC_ENV';

/** `env` plus the daemon's malloc settings the user did not set, and the mark naming them. */
export function withDaemonMallocEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const added = Object.keys(DAEMON_MALLOC_ENV).filter((k) => env[k] === undefined);
  if (added.length === 0) return env;
  return { ...env, ...Object.fromEntries(added.map((k) => [k, DAEMON_MALLOC_ENV[k]])), [MALLOC_ENV_MARK]: added.join(',') };
}

/**
 * The daemon's environment without NODE_EXTRA_CA_CERTS, its value handed over in
 * LOOM_NODE_EXTRA_CA_CERTS (the same hand-over as bin/loom's, src/cli/extra-ca-certs.ts). Node 20
 * reads and parses that file at start-up, before any code runs, and keeps every certificate in
 * memory for the process's life: 1.8 MB of RSS for Debian's CA bundle (docs/BENCHMARKS.md, issue
 * 14 "Memory"), in a router that opens a TLS connection only to a Kubernetes API. The daemon puts
 * the variable back in its environment at start (cli/main.ts), so the processes it starts see it
 * as the user set it, and its Kubernetes client adds the file to Node's CAs itself
 * (kube/client.ts `extraCaFile`).
 */
export function withExtraCaCertsHandedOver(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const file = env['NODE_EXTRA_CA_CERTS'];
  if (file === undefined) return env;
  const out: NodeJS.ProcessEnv = { ...env, LOOM_NODE_EXTRA_CA_CERTS: file };
  delete out['NODE_EXTRA_CA_CERTS'];
  return out;
}

export interface LaunchedDaemon {
  pid: number;
  name: string;
}

/**
 * `loom launch` without --foreground: re-executes the CLI as `launch --foreground` detached in its
 * own session, output appended to STATE_DIR/loom.log, and returns once its API answers /status.
 * If the child exits first, the error in its log becomes the thrown LoomError (its code kept).
 * Polling is bounded in time and count; the child is never killed here (it may still be coming up
 * when we time out, and `loom stop` is the way to end it).
 */
export async function launchInBackground(config: LaunchConfig, launch: BackgroundLaunch): Promise<LaunchedDaemon> {
  const stateDir = new StateDir(config.stateDir);
  stateDir.ensure();
  stateDir.assertNotRunning();
  const client = new ApiClient({ address: config.httpAddr, timeoutMs: 1000 });
  if (await client.healthy()) throw new LoomError('ERR_CONFLICT', `something already answers on ${config.httpAddr}; is a router running? (loom stop)`);

  const [node, ...nodeFlags] = launch.node;
  if (!node) throw new LoomError('ERR_INTERNAL', 'no node executable to launch');
  let logFd: number;
  try {
    logFd = openSync(stateDir.logFile, 'a', 0o644);
  } catch (err) {
    // A read-only or full state dir: the router could keep neither its pid file nor its state.
    throw storageFailure(err, stateDir.logFile, 'open') ?? err;
  }
  const logStart = fileSize(stateDir.logFile);
  const env = withExtraCaCertsHandedOver(withDaemonMallocEnv({ ...(launch.env ?? process.env) }));
  if (config.password !== undefined) env['LOOM_PASSWORD'] = config.password;
  else delete env['LOOM_PASSWORD'];
  let child;
  try {
    child = startProcess(node, [...daemonNodeFlags(nodeFlags), launch.entry, ...foregroundArgs(config)], { detached: true, logFile: logFd, env });
  } finally {
    closeSync(logFd);
  }
  let exited: number | null = null;
  child.once('exit', (code, signal) => (exited = code ?? (signal ? 128 : 1)));
  child.once('error', () => (exited = 127));

  const deadline = Date.now() + (launch.readyTimeoutMs ?? 10_000);
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    if (exited !== null) throw childFailure(stateDir.logFile, logStart, exited);
    try {
      const status = await client.status();
      child.unref();
      return { pid: child.pid ?? 0, name: status.name };
    } catch (err) {
      if (!(err instanceof LoomError) || (err.code !== 'ERR_UNAVAILABLE' && err.code !== 'ERR_TIMEOUT')) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(20 * (attempt + 1), 200)));
  }
  if (exited !== null) throw childFailure(stateDir.logFile, logStart, exited);
  child.unref();
  throw new LoomError('ERR_TIMEOUT', `the router (pid ${child.pid}) did not become ready; see ${stateDir.logFile}`);
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * The child's own error, taken from the last pino line with a `code` (or an "loom: CODE: msg"
 * line) written since this launch; otherwise a generic failure pointing at the log.
 */
export function childFailure(logFile: string, from: number, exitCode: number): LoomError {
  let text = '';
  try {
    text = readFileSync(logFile).subarray(from).toString('utf8');
  } catch {
    // The log is a hint only.
  }
  const lines = text.split('\n').filter((l) => l.trim().length > 0).slice(-50).reverse();
  for (const line of lines) {
    const cli = /^loom: (ERR_[A-Z_]+): (.*)$/.exec(line);
    if (cli) return new LoomError(asCode(cli[1]!), cli[2]!);
    try {
      const rec = JSON.parse(line) as { code?: unknown; msg?: unknown };
      if (typeof rec.code === 'string' && typeof rec.msg === 'string') return new LoomError(asCode(rec.code), rec.msg);
    } catch {
      // Not JSON: keep looking.
    }
  }
  const tail = lines.slice(0, 3).reverse().join(' | ').slice(0, 500);
  return new LoomError('ERR_UNAVAILABLE', `the router exited with code ${exitCode} before it was ready${tail ? `: ${tail}` : ''} (see ${logFile})`);
}

function asCode(code: string): LoomError['code'] {
  return (ERROR_CODE_SET.has(code) ? code : 'ERR_INTERNAL') as LoomError['code'];
}

const ERROR_CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);
