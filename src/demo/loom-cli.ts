/**
 * Drives `bin/loom` inside lab hosts the way a user would (`ip netns exec <ns> bin/loom ...`).
 * Each host gets its own state dir under the lab's scratch dir; its API listens on the default
 * local socket @loom/api (root, the whole API) and 127.0.0.1:6784 (GETs), both private to the
 * host's network namespace, so the CLI run there finds its router. Daemons started by `loom launch`
 * are handed to the lab (`track`), so lab teardown stops them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomError } from '../core/errors.js';
import type { CommandResult } from '../os/runner.js';
import { type HostRef, type Lab, isAlive } from '../lab/index.js';
import { parseReport, type LoomReport } from './report.js';
import { parseContainerList, type DemoContainer } from './containers.js';
import { pollUntil } from './poll.js';

/** The checkout this module belongs to: the nearest parent with Loom's package.json. */
export function repoRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (let depth = 0; depth < 8; depth++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'loom') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new LoomError('ERR_NOT_FOUND', `cannot find Loom's package.json above ${from}`);
}

export interface LaunchOptions {
  /** Targets, "host[:port]". */
  peers?: string[];
  password?: string;
  /** Extra `loom launch` flags. */
  args?: string[];
  /** Extra environment of `loom launch`, which the daemon inherits (e.g. LOOM_QUIET_GC). */
  env?: Record<string, string>;
}

export class LoomCli {
  readonly bin: string;

  constructor(
    readonly lab: Lab,
    options: { bin?: string } = {},
  ) {
    this.bin = options.bin ?? join(repoRoot(), 'bin', 'loom');
  }

  stateDir(host: HostRef): string {
    return join(this.lab.workDir, this.lab.host(host).name);
  }

  /** `loom ARGS` in the host, with LOOM_STATE_DIR set; throws ERR_OS_COMMAND on a non-zero exit unless allowFailure. */
  run(host: HostRef, args: readonly string[], options: { allowFailure?: boolean; timeoutMs?: number; env?: Readonly<Record<string, string>> } = {}): Promise<CommandResult> {
    return this.lab.exec(host, this.bin, args, {
      env: { ...options.env, LOOM_STATE_DIR: this.stateDir(host) },
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.allowFailure === undefined ? {} : { allowFailure: options.allowFailure }),
    });
  }

  /** `loom launch` with the host's state dir and nickname; returns the daemon's PID and peer name. */
  async launch(host: HostRef, options: LaunchOptions = {}): Promise<{ pid: number; name: string }> {
    const h = this.lab.host(host);
    const args = ['launch', '--state-dir', this.stateDir(h), '--nickname', h.name];
    if (options.password !== undefined) args.push('--password', options.password);
    args.push(...(options.args ?? []), ...(options.peers ?? []));
    const result = await this.run(h, args, options.env === undefined ? {} : { env: options.env });
    const pid = this.pid(h);
    if (pid === null) throw new LoomError('ERR_UNAVAILABLE', `loom launch in ${h.name} returned but wrote no pid file`, { detail: { stdout: result.stdout } });
    this.lab.track(pid);
    const name = /([0-9a-f]{2}(?::[0-9a-f]{2}){5})/.exec(result.stdout)?.[1] ?? (await this.report(h)).router.name;
    return { pid, name };
  }

  /** `loom stop`, then waits (bounded) until the daemon process is gone, so a relaunch finds the state dir free. */
  async stop(host: HostRef, timeoutMs = 10_000): Promise<void> {
    const pid = this.pid(host);
    await this.run(host, ['stop']);
    if (pid === null) return;
    await pollUntil(async () => (isAlive(pid) ? undefined : true), { what: `router pid ${pid} to exit`, timeoutMs, intervalMs: 50 });
  }

  /** The PID in the host's STATE_DIR/loom.pid, or null. */
  pid(host: HostRef): number | null {
    try {
      const pid = Number(readFileSync(join(this.stateDir(host), 'loom.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 1 ? pid : null;
    } catch {
      return null;
    }
  }

  async report(host: HostRef): Promise<LoomReport> {
    return parseReport((await this.run(host, ['report'], { timeoutMs: 10_000 })).stdout);
  }

  /**
   * The host's containers as JSON from the router's API (`loom ps` prints the same for people).
   * Fetched by a short `node -e` inside the host, because the API listens on the host's own loopback
   * (a GET: the read-only TCP API serves it).
   */
  async containers(host: HostRef): Promise<DemoContainer[]> {
    const script = `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`;
    return parseContainerList((await this.lab.exec(host, process.execPath, ['-e', script], { timeoutMs: 10_000 })).stdout);
  }

  /** `loom status [what]` as printed. */
  async status(host: HostRef, what?: 'peers' | 'connections' | 'targets' | 'ipam' | 'dns'): Promise<string> {
    return (await this.run(host, what ? ['status', what] : ['status'], { timeoutMs: 10_000 })).stdout;
  }

  /** Last `lines` lines of the host's loom.log ('' if none). */
  logTail(host: HostRef, lines = 40): string {
    try {
      return readFileSync(join(this.stateDir(host), 'loom.log'), 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '';
    }
  }
}
