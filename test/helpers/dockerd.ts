/**
 * A real Docker daemon (docker.io 20.10) per lab host, for end-to-end tests: it runs in the host's
 * network namespace and in a mount namespace of its own, where the test's `<scratch>/plugins`
 * is bind-mounted over /run/docker/plugins (so several dockerds never see each other's plugin
 * sockets), with its own --data-root, --exec-root, --pidfile and API socket under the lab's
 * scratch dir. No registry: a busybox image is made with `docker import` of a rootfs built here.
 * `stop` removes containers and networks, then kills dockerd by PID (its mount namespace, and
 * every mount in it, goes with it); the lab's teardown kills it too if the test dies first.
 */
import { closeSync, openSync, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { startProcess } from '../../src/os/runner.js';
import { LAB_ENV_MARKER } from '../../src/lab/procs.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { CommandResult } from '../../src/os/runner.js';

export const DOCKER = '/usr/bin/docker';
export const DOCKERD = '/usr/sbin/dockerd';
export const IMAGE = 'loom-test/busybox:latest';
const PLUGIN_DIR = '/run/docker/plugins';
const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));

/** Why these tests cannot run here, or null. */
export function dockerSkipReason(): string | null {
  if (!existsSync(DOCKERD) || !existsSync(DOCKER)) return 'docker.io is not installed (bash scripts/install.sh)';
  if (!BUSYBOX || !/statically linked/.test(spawnSync('file', ['-L', BUSYBOX], { encoding: 'utf8' }).stdout ?? '')) return 'no static busybox (apt-get install busybox-static)';
  return null;
}

/** Mounts the plugin dir, then becomes dockerd. A constant script; the paths and flags are its arguments. */
const MOUNT_THEN_EXEC = 'mkdir -p "$2" && mount --bind "$1" "$2" && shift 2 && exec "$@"';

export class TestDockerd {
  readonly dir: string;
  readonly socket: string;
  readonly pluginDir: string;
  private pid: number | null = null;

  constructor(
    readonly lab: Lab,
    readonly host: LabHost,
  ) {
    this.dir = join(lab.workDir, `docker-${host.name}`);
    this.socket = join(this.dir, 'docker.sock');
    this.pluginDir = join(this.dir, 'plugins');
  }

  get api(): string {
    return `unix://${this.socket}`;
  }

  /** `loom launch` flags that point a router at this dockerd. */
  get loomArgs(): string[] {
    return ['--docker-api', this.api, '--docker-plugin-dir', this.pluginDir];
  }

  async start(extra: string[] = []): Promise<void> {
    mkdirSync(this.pluginDir, { recursive: true });
    const args = [
      '--mount', '--propagation', 'private', '--', 'sh', '-c', MOUNT_THEN_EXEC, 'sh', this.pluginDir, PLUGIN_DIR,
      DOCKERD, '--data-root', join(this.dir, 'data'), '--exec-root', join(this.dir, 'exec'), '--pidfile', join(this.dir, 'docker.pid'),
      '-H', this.api, '--iptables=false', '--ip-masq=false', '--userland-proxy=false', '--log-level', 'warn', ...extra,
    ];
    // nsenter --net, not `ip netns exec`: the latter remounts /sys, hiding the cgroup mounts dockerd needs.
    const log = openSync(join(this.lab.workDir, `dockerd-${this.host.name}.log`), 'a');
    let child: ChildProcess;
    try {
      child = startProcess('nsenter', [`--net=/run/netns/${this.host.netns}`, 'unshare', ...args], { env: { ...process.env, [LAB_ENV_MARKER]: this.lab.prefix }, logFile: log });
    } finally {
      closeSync(log);
    }
    child.on('error', () => {});
    if (child.pid === undefined) throw new Error('could not start dockerd');
    this.pid = child.pid;
    this.lab.track(child.pid);
    await pollUntil(async () => ((await this.docker(['version', '--format', '{{.Server.Version}}'], { allowFailure: true })).code === 0 ? true : undefined), {
      what: `dockerd in ${this.host.name}`,
      timeoutMs: 30_000,
      intervalMs: 200,
    });
  }

  docker(args: string[], options: { allowFailure?: boolean; timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
    return this.lab.exec(this.host, DOCKER, ['-H', this.api, ...args], { timeoutMs: options.timeoutMs ?? 60_000, ...(options.allowFailure === undefined ? {} : { allowFailure: options.allowFailure }), ...(options.input === undefined ? {} : { input: options.input }) });
  }

  /** Imports the busybox image (once per lab: the tarball is shared). */
  async importImage(): Promise<void> {
    const tar = buildBusyboxTar(this.lab);
    await this.docker(['import', '-c', 'CMD ["/bin/sh"]', tar, IMAGE]);
  }

  /** Removes every container and network this dockerd has, then stops it (SIGTERM, then SIGKILL) by PID. */
  async stop(): Promise<void> {
    if (this.pid === null) return;
    const ids = (await this.docker(['ps', '-aq'], { allowFailure: true })).stdout.split('\n').filter((s) => s.trim() !== '');
    if (ids.length > 0) await this.docker(['rm', '-f', ...ids], { allowFailure: true });
    const nets = (await this.docker(['network', 'ls', '-q', '--filter', 'type=custom'], { allowFailure: true })).stdout.split('\n').filter((s) => s.trim() !== '');
    if (nets.length > 0) await this.docker(['network', 'rm', ...nets], { allowFailure: true });
    await this.lab.stopProcess(this.pid, 10_000);
    this.pid = null;
  }

  /** Stops dockerd by PID without removing anything (Docker going away), for a later `start`. */
  async kill(): Promise<void> {
    if (this.pid === null) return;
    await this.lab.stopProcess(this.pid, 15_000);
    this.pid = null;
  }

  /** The dockerd PID (from its pid file, the process unshare became). */
  daemonPid(): number | null {
    try {
      return Number(readFileSync(join(this.dir, 'docker.pid'), 'utf8').trim());
    } catch {
      return null;
    }
  }
}

/** A busybox-static rootfs as a tarball under the lab's scratch dir; built once per lab. */
export function buildBusyboxTar(lab: Lab): string {
  const root = join(lab.workDir, 'busybox-rootfs');
  const tar = `${root}.tar`;
  if (existsSync(tar)) return tar;
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'root', 'var', 'usr/bin', 'usr/sbin']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(BUSYBOX!, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  const applets = spawnSync(BUSYBOX!, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  for (const a of applets) if (!existsSync(join(root, 'bin', a))) symlinkSync('busybox', join(root, 'bin', a));
  chmodSync(join(root, 'tmp'), 0o1777);
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc', 'nsswitch.conf'), 'hosts: files dns\n');
  for (const f of ['resolv.conf', 'hosts', 'hostname']) writeFileSync(join(root, 'etc', f), '');
  const r = spawnSync('tar', ['-C', root, '-cf', tar, '.']);
  if (r.status !== 0) throw new Error(`tar failed: ${String(r.stderr)}`);
  return tar;
}
