/**
 * The PathContext a path's setup works with: the lab's hosts plus the extra namespaces
 * ("containers", bare veth ends) and processes of one path. Everything made here is removed by
 * `destroy` (idempotent), also on exit and on signals: namespaces are deleted, and only the PIDs
 * started here are killed. Namespaces are named `<lab prefix>-<role>`, so a stale run is also
 * found by the lab's cleanupStale.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../../src/core/errors.js';
import { type Lab, type LabHost, LAB_ENV_MARKER, isAlive, signal, terminate, registerForExit, unregisterForExit, type ExitCleanup } from '../../src/lab/index.js';
import { startProcess, type CommandResult, type CommandRunner } from '../../src/os/runner.js';
import type { ContainerSpec, PathContext } from './types.js';

/** The bridge each host's containers hang off (as Loom's own per-host bridge would be). */
export const HOST_BRIDGE = 'brc';
const ROLE_RE = /^[a-z0-9]{1,6}$/;
const MAX_POLLS = 10_000;

export class BenchContext implements PathContext, ExitCleanup {
  readonly hosts: readonly [LabHost, LabHost];
  readonly runTag: string;
  readonly underlayMtu: number;
  private readonly namespaces: string[] = [];
  private readonly pids = new Set<number>();
  private readonly bridged = new Set<string>();
  private destroyed = false;

  constructor(
    readonly lab: Lab,
    readonly workDir: string,
    private readonly runner: CommandRunner,
  ) {
    const [h1, h2] = lab.hosts;
    if (!h1 || !h2) throw new LoomError('ERR_INVALID_ARGUMENT', 'the benchmark needs a lab with two hosts');
    this.hosts = [h1, h2];
    this.runTag = lab.prefix.slice(2);
    this.underlayMtu = lab.mtu;
    mkdirSync(workDir, { recursive: true });
    registerForExit(this);
  }

  private env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    return { ...process.env, ...extra, [LAB_ENV_MARKER]: this.lab.prefix };
  }

  async addNetns(role: string): Promise<string> {
    if (!ROLE_RE.test(role)) throw new LoomError('ERR_INVALID_ARGUMENT', `namespace role must be 1-6 of [a-z0-9], got "${role.slice(0, 20)}"`);
    const name = `${this.lab.prefix}-${role}`;
    await this.runner.run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await this.runner.run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    const sysctls = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0'];
    await this.runner.run('sysctl', ['-qw', ...sysctls], { netns: name });
    return name;
  }

  async addContainer(host: LabHost, role: string, spec: ContainerSpec): Promise<string> {
    const ns = await this.addNetns(role);
    const h = host.netns;
    if (!this.bridged.has(h)) {
      await this.runner.run('ip', ['-n', h, 'link', 'add', HOST_BRIDGE, 'type', 'bridge']);
      await this.runner.run('ip', ['-n', h, 'link', 'set', HOST_BRIDGE, 'up']);
      this.bridged.add(h);
    }
    const hostSide = `v${role}`;
    const mtu = String(spec.mtu);
    await this.runner.run('ip', ['-n', h, 'link', 'add', hostSide, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.runner.run('ip', ['-n', h, 'link', 'set', hostSide, 'master', HOST_BRIDGE, 'up']);
    await this.runner.run('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', spec.mac, 'mtu', mtu, 'up']);
    await this.runner.run('ip', ['-n', ns, 'addr', 'add', spec.cidr, 'dev', 'eth0']);
    if (spec.gateway !== undefined) await this.runner.run('ip', ['-n', ns, 'route', 'add', 'default', 'via', spec.gateway]);
    return ns;
  }

  exec(netns: string, cmd: string, args: readonly string[], options: { allowFailure?: boolean; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
    if (this.destroyed) throw new LoomError('ERR_UNAVAILABLE', 'benchmark context is torn down');
    return this.runner.run(cmd, args, { ...options, netns, env: this.env(options.env), timeoutMs: options.timeoutMs ?? 30_000 });
  }

  start(netns: string, cmd: string, args: readonly string[], options: { logName?: string; env?: NodeJS.ProcessEnv } = {}): number {
    return this.spawnTracked(netns, cmd, args, options.logName ?? `${cmd.replace(/[^a-z0-9-]/gi, '')}.log`, 'a', options.env).pid;
  }

  /**
   * Runs a command to its end as a tracked process (so a teardown on a signal stops it too),
   * its stdout and stderr going to `logName` in workDir; resolves with the exit code (null when
   * killed) and that output. Stopped after `timeoutMs`.
   */
  async runTracked(netns: string, cmd: string, args: readonly string[], options: { logName: string; timeoutMs: number }): Promise<{ code: number | null; output: string }> {
    const { pid, child } = this.spawnTracked(netns, cmd, args, options.logName, 'w');
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), options.timeoutMs);
    });
    const first = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (first === 'timeout') await terminate([pid], 1000);
    this.pids.delete(pid);
    const output = readFileSync(join(this.workDir, options.logName), 'utf8');
    if (first === 'timeout') throw new LoomError('ERR_TIMEOUT', `${cmd} ran longer than ${options.timeoutMs} ms`, { detail: { output: output.slice(-500) } });
    return { code: first, output };
  }

  private spawnTracked(netns: string, cmd: string, args: readonly string[], logName: string, flags: 'a' | 'w', env?: NodeJS.ProcessEnv): { pid: number; child: ChildProcess } {
    if (this.destroyed) throw new LoomError('ERR_UNAVAILABLE', 'benchmark context is torn down');
    const fd = openSync(join(this.workDir, logName), flags);
    let child: ChildProcess;
    try {
      child = startProcess(cmd, args, { netns, env: this.env(env), logFile: fd });
    } finally {
      closeSync(fd);
    }
    child.once('error', () => undefined);
    if (child.pid === undefined) throw new LoomError('ERR_OS_COMMAND', `could not start ${cmd}`);
    this.pids.add(child.pid);
    return { pid: child.pid, child };
  }

  /** Stops one PID started here (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(pid: number, graceMs = 2000): Promise<void> {
    if (!this.pids.has(pid)) return;
    await terminate([pid], graceMs);
    this.pids.delete(pid);
  }

  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < MAX_POLLS; i++) {
      if (await check()) return;
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    throw new LoomError('ERR_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  waitForPing(fromNs: string, ip: string, timeoutMs = 15_000): Promise<void> {
    return this.waitFor(
      `ping ${fromNs} -> ${ip}`,
      async () => (await this.exec(fromNs, 'ping', ['-c', '1', '-W', '1', ip], { allowFailure: true, timeoutMs: 3000 })).code === 0,
      timeoutMs,
      200,
    );
  }

  /** Kills our PIDs, deletes our namespaces. Idempotent; the lab itself is destroyed by its owner. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await terminate([...this.pids].filter(isAlive), 2000);
    this.pids.clear();
    for (const ns of [...this.namespaces].reverse()) await this.runner.run('ip', ['netns', 'del', ns], { allowFailure: true });
    unregisterForExit(this);
  }

  /** For process 'exit': SIGKILL our PIDs and hand namespace deletion to a detached `ip -batch`. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    signal([...this.pids], 'SIGKILL');
    // One detached `ip` per namespace: they outlive us, and the lab's own exit hook may already
    // have removed the scratch dir a batch file would live in.
    for (const ns of this.namespaces) startProcess('ip', ['netns', 'del', ns], { detached: true }).unref();
  }
}
