/**
 * containerd 1.6 with its CRI plugin inside one lab host, as a node of a cluster would run it,
 * but with everything of its own under one scratch folder (`<lab workDir>/containerd-<host>`):
 *
 *   config.toml      written by `containerdConfig` (pure)
 *   root/ state/     containerd's root and state (snapshots, bundles, the CRI's netns mounts)
 *   runc/            runc's state (`Root` of the runc runtime options)
 *   containerd.sock  the gRPC address (CRI and ctr both talk to it)
 *   cni/bin cni/net.d  the CRI plugin's `bin_dir` and `conf_dir`
 *   containerd.log
 *
 * containerd joins only the host's network namespace (nsenter --net), not a private mount
 * namespace: runc needs this machine's cgroup mounts, and the plugin under test must see the
 * sandbox netns mount containerd makes. So its mounts (overlay rootfs) live in the caller's mount
 * namespace, and `stop` unmounts everything under the folder before removing it; the pods'
 * network namespaces are in /run/netns (cni-<uuid>, containerd's default), found through the pods'
 * processes. Pod processes run in cgroups under `cgroupParent` (the CRI client must pass it as the
 * sandbox's cgroup_parent), which is how `stop` finds any a failed test left behind.
 *
 * What this machine needs (found by trying, see ../../docs or the lab notes): runc cannot set
 * oom_score_adj -998 here, so `restrict_oom_score_adj`; no AppArmor; overlayfs works on ext4 and
 * tmpfs but not on overlayfs, where the `native` snapshotter is used instead.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import { systemRunner, type CommandResult, type CommandRunner } from '../os/runner.js';
import type { HostRef, Lab, LabHost } from './netns.js';
import { LAB_SANDBOX_IMAGE } from './sandbox-image.js';
import { hasLabMarker, isAlive, signal, terminate } from './procs.js';
import { mountsUnder, unmountUnder } from './mounts.js';
import { removeShimSockets, shimSockets } from './shims.js';
import { cgroupProcesses, netnsNamesOf, podCgroupDirs, podCgroupParent, removeCgroupDirs } from './pod-cgroups.js';

/** Where Debian's containernetworking-plugins live. */
export const REFERENCE_CNI_DIR = '/usr/lib/cni';
/** The containerd namespace the CRI plugin keeps its images, sandboxes and containers in. */
export const CRI_NAMESPACE = 'k8s.io';

export type Snapshotter = 'overlayfs' | 'native';

export interface ContainerdPaths {
  root: string;
  state: string;
  runcRoot: string;
  grpcAddress: string;
  ttrpcAddress: string;
  cniBinDir: string;
  cniConfDir: string;
}

export interface ContainerdConfigOptions {
  sandboxImage: string;
  snapshotter: Snapshotter;
}

/** Plugins that would touch paths outside the folder (opt) or need kernels/tools absent here. */
const DISABLED_PLUGINS = [
  'io.containerd.internal.v1.opt',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

function tomlString(value: string): string {
  if (/[\0-\x1f"\\]/.test(value)) throw new LoomError('ERR_INVALID_ARGUMENT', `cannot put ${JSON.stringify(value.slice(0, 60))} in containerd's config`);
  return `"${value}"`;
}

/** containerd's config.toml (version 2) for a lab host. Pure. */
export function containerdConfig(paths: ContainerdPaths, options: ContainerdConfigOptions): string {
  const cri = '[plugins."io.containerd.grpc.v1.cri"]';
  const lines = [
    'version = 2',
    `root = ${tomlString(paths.root)}`,
    `state = ${tomlString(paths.state)}`,
    `disabled_plugins = [${DISABLED_PLUGINS.map(tomlString).join(', ')}]`,
    '',
    '[grpc]',
    `  address = ${tomlString(paths.grpcAddress)}`,
    '[ttrpc]',
    `  address = ${tomlString(paths.ttrpcAddress)}`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '',
    cri,
    `  sandbox_image = ${tomlString(options.sandboxImage)}`,
    // containerd's default, as on a kubelet node: the pods' namespaces are mounted in /run/netns
    // (cni-<uuid>), which `ip netns` makes a shared mount, so a router started by `ip netns exec`
    // (a mount namespace of its own) sees the CNI_NETNS path the plugin passes it. Under state/
    // they would be invisible there (/ is a private mount here).
    '  netns_mounts_under_state_dir = false',
    '  restrict_oom_score_adj = true',
    '  disable_apparmor = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    `  [plugins."io.containerd.grpc.v1.cri".cni]`,
    `    bin_dir = ${tomlString(paths.cniBinDir)}`,
    `    conf_dir = ${tomlString(paths.cniConfDir)}`,
    '    max_conf_num = 1',
    `  [plugins."io.containerd.grpc.v1.cri".containerd]`,
    `    snapshotter = ${tomlString(options.snapshotter)}`,
    '    default_runtime_name = "runc"',
    `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
    '      runtime_type = "io.containerd.runc.v2"',
    `      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
    `        Root = ${tomlString(paths.runcRoot)}`,
    '        SystemdCgroup = false',
    '',
  ];
  return lines.join('\n');
}

/** Whether `ctr plugins ls` shows the CRI plugin: 'ok', 'error', 'skip', or null when absent. Pure. */
export function criPluginStatus(pluginsLs: string): string | null {
  for (const line of pluginsLs.split('\n')) {
    const cells = line.trim().split(/\s+/);
    if (cells[0] === 'io.containerd.grpc.v1' && cells[1] === 'cri') return cells[cells.length - 1] ?? null;
  }
  return null;
}

/** The file system type of `dir` as `stat -f` names it ("ext2/ext3", "tmpfs", "overlayfs"...). */
async function fsType(runner: CommandRunner, dir: string): Promise<string> {
  return (await runner.run('stat', ['-f', '-c', '%T', dir])).stdout.trim();
}

export interface LabContainerdOptions {
  /** Tells several containerd of one host apart (folder `containerd-<host>-<instance>`); lowercase letters and digits. */
  instance?: string;
  /** `sandbox_image` (default LAB_SANDBOX_IMAGE); import it with `importImage` before pods start. */
  sandboxImage?: string;
  /** Reference plugins linked from /usr/lib/cni into the bin dir (default loopback, which the CRI plugin always runs). */
  referencePlugins?: readonly string[];
  /** Snapshotter; by default overlayfs, or native when the scratch folder is itself on overlayfs. */
  snapshotter?: Snapshotter;
  /** How long to wait for the CRI plugin (default 30 s). */
  readyTimeoutMs?: number;
  runner?: CommandRunner;
}

export class LabContainerd {
  /** The pod cgroups' parent (a cgroupfs path); give it as every sandbox's cgroup_parent. */
  readonly cgroupParent: string;
  private stopped = false;

  private constructor(
    private readonly lab: Lab,
    readonly host: LabHost,
    /** "h1", or "h1-<instance>". */
    readonly name: string,
    readonly dir: string,
    readonly paths: ContainerdPaths,
    readonly snapshotter: Snapshotter,
    readonly sandboxImage: string,
    readonly pid: number,
    private readonly runner: CommandRunner,
  ) {
    this.cgroupParent = podCgroupParent(lab.prefix, name);
  }

  /** The gRPC address as a gRPC client wants it ("unix:///..."). */
  get criAddress(): string {
    return `unix://${this.paths.grpcAddress}`;
  }

  get logFile(): string {
    return join(this.dir, 'containerd.log');
  }

  /**
   * Writes the config, starts containerd in `host` and waits until `ctr plugins ls` shows the
   * CRI plugin ok. On failure stops it, removes the folder, and throws with the log's tail.
   */
  static async start(lab: Lab, hostRef: HostRef, options: LabContainerdOptions = {}): Promise<LabContainerd> {
    const host = lab.host(hostRef);
    const runner = options.runner ?? systemRunner;
    if (options.instance !== undefined && !/^[a-z0-9]{1,12}$/.test(options.instance)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `containerd instance must be 1..12 lowercase letters or digits, got "${options.instance.slice(0, 20)}"`);
    }
    const name = options.instance === undefined ? host.name : `${host.name}-${options.instance}`;
    const dir = join(lab.workDir, `containerd-${name}`);
    const paths: ContainerdPaths = {
      root: join(dir, 'root'),
      state: join(dir, 'state'),
      runcRoot: join(dir, 'runc'),
      grpcAddress: join(dir, 'containerd.sock'),
      ttrpcAddress: join(dir, 'containerd.ttrpc.sock'),
      cniBinDir: join(dir, 'cni', 'bin'),
      cniConfDir: join(dir, 'cni', 'net.d'),
    };
    if (existsSync(dir)) throw new LoomError('ERR_CONFLICT', `${dir} exists: containerd ${name} already runs?`);
    for (const d of [paths.root, paths.state, paths.runcRoot, paths.cniBinDir, paths.cniConfDir]) mkdirSync(d, { recursive: true });
    for (const plugin of options.referencePlugins ?? ['loopback']) symlinkSync(join(REFERENCE_CNI_DIR, plugin), join(paths.cniBinDir, plugin));
    const snapshotter = options.snapshotter ?? ((await fsType(runner, dir)) === 'overlayfs' ? 'native' : 'overlayfs');
    const sandboxImage = options.sandboxImage ?? LAB_SANDBOX_IMAGE;
    const configFile = join(dir, 'config.toml');
    writeFileSync(configFile, containerdConfig(paths, { sandboxImage, snapshotter }));
    const proc = lab.start(host, 'containerd', ['--config', configFile], { logFile: join(dir, 'containerd.log'), sharedMounts: true });
    const daemon = new LabContainerd(lab, host, name, dir, paths, snapshotter, sandboxImage, proc.pid, runner);
    try {
      await daemon.waitReady(options.readyTimeoutMs ?? 30_000);
    } catch (err) {
      const tail = daemon.logTail(20);
      await daemon.stop();
      throw new LoomError('ERR_UNAVAILABLE', `containerd ${name} did not get ready: ${(err as Error).message}\n${tail}`, { cause: err });
    }
    return daemon;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (!isAlive(this.pid)) throw new LoomError('ERR_UNAVAILABLE', 'containerd exited');
      const listed = await this.ctr(['plugins', 'ls'], { allowFailure: true, timeoutMs: 5000 });
      const status = listed.code === 0 ? criPluginStatus(listed.stdout) : null;
      if (status === 'ok') return;
      if (status !== null && status !== 'ok') throw new LoomError('ERR_UNAVAILABLE', `the CRI plugin is "${status}"`);
      last = listed.stderr.trim().slice(0, 200) || 'the CRI plugin is not listed';
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new LoomError('ERR_TIMEOUT', `after ${timeoutMs} ms: ${last}`);
  }

  /** `ctr` against this containerd, in the CRI's namespace. */
  ctr(args: readonly string[], options: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<CommandResult> {
    return this.runner.run('ctr', ['--address', this.paths.grpcAddress, '--namespace', CRI_NAMESPACE, ...args], {
      timeoutMs: options.timeoutMs ?? 60_000,
      ...(options.allowFailure === undefined ? {} : { allowFailure: options.allowFailure }),
    });
  }

  /** Imports an image tarball (docker-archive or OCI) and unpacks it for the CRI's snapshotter. */
  async importImage(tarball: string): Promise<void> {
    await this.ctr(['images', 'import', '--snapshotter', this.snapshotter, tarball]);
  }

  /** Symlinks more reference plugins (/usr/lib/cni/NAME) into the CNI bin dir; existing ones are kept. */
  linkReferencePlugins(names: readonly string[]): void {
    for (const name of names) {
      const link = join(this.paths.cniBinDir, name);
      if (!existsSync(link)) symlinkSync(join(REFERENCE_CNI_DIR, name), link);
    }
  }

  logTail(lines: number): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '';
    }
  }

  /** Mount points under the folder in our mount namespace (the overlay rootfs and netns mounts of live pods). */
  mounts(): string[] {
    return mountsUnder(this.dir);
  }

  /** PIDs in the pod cgroups (any hierarchy): the sandboxes' and containers' processes. */
  podProcesses(): number[] {
    return cgroupProcesses(podCgroupDirs(this.lab.prefix, this.name));
  }

  /**
   * Stops containerd and removes everything of it: tasks killed and deleted through ctr (no CNI
   * DEL: a test that wants its network torn down stops its pods through the CRI first), pod
   * processes left in its cgroups killed and their /run/netns mounts removed, containerd and its
   * shims stopped (and the shims' sockets removed), every mount under the folder unmounted, the
   * pod cgroups and the folder removed. Idempotent; never throws for what is already gone. Run it
   * before the lab's own destroy.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Read while the pods live: afterwards nothing tells which /run/netns/cni-* were theirs.
    const podNetns = netnsNamesOf(this.podProcesses());
    const sockets = shimSockets(this.shims());
    if (isAlive(this.pid)) {
      const tasks = await this.ctr(['tasks', 'ls', '-q'], { allowFailure: true, timeoutMs: 10_000 });
      for (const id of lines(tasks.stdout)) {
        await this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id], { allowFailure: true, timeoutMs: 10_000 });
        await this.ctr(['tasks', 'delete', '--force', id], { allowFailure: true, timeoutMs: 10_000 });
      }
      const containers = await this.ctr(['containers', 'ls', '-q'], { allowFailure: true, timeoutMs: 10_000 });
      for (const id of lines(containers.stdout)) await this.ctr(['containers', 'delete', id], { allowFailure: true, timeoutMs: 10_000 });
    }
    signal(this.podProcesses(), 'SIGKILL');
    await terminate([this.pid], 5000);
    // Shims outlive containerd by design; ours carry the lab marker and our socket path.
    await terminate(this.shims(), 3000);
    removeShimSockets(sockets);
    for (const name of podNetns) await this.runner.run('ip', ['netns', 'del', name], { allowFailure: true });
    await unmountUnder(this.dir, this.runner);
    await waitGone(() => this.podProcesses(), 3000);
    removeCgroupDirs(podCgroupDirs(this.lab.prefix, this.name));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private shims(): number[] {
    const pids: number[] = [];
    for (const entry of safeDirs('/proc')) {
      if (!/^[0-9]+$/.test(entry)) continue;
      const pid = Number(entry);
      if (!hasLabMarker(pid, this.lab.prefix)) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.includes('containerd-shim') && cmdline.includes(this.paths.grpcAddress)) pids.push(pid);
      } catch {
        // exited meanwhile
      }
    }
    return pids;
  }
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

function safeDirs(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

async function waitGone(list: () => number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (list().some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
