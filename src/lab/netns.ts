/**
 * A lab of "hosts" on one machine, for tests, benchmarks and `loom demo`. Everything lives in
 * network namespaces named `<prefix>-<role>` with a per-run prefix `lm<6 hex>`:
 *
 *   <prefix>-ul   the underlay: bridge br0, one port "hN" per host, the lab's nft table
 *                 (blocks, degradations, a counter of the IPv4 fragments crossing it)
 *   <prefix>-hN   host N: eth0 (veth to the underlay) = <subnet>.N/24, lo up, IPv6 off,
 *                 ip_forward on, rp_filter off
 *
 * The underlay MTU (`mtu`) is set on br0 and on both ends of every host's veth. `realisticWire`
 * caps every veth end's gso_max_segs at 1, so the kernel segments GSO/TSO super-packets (UDP GSO
 * trains, VXLAN TSO frames) before they reach the underlay, as a NIC would put them on a wire:
 * then an nft drop or counter acts per MTU-sized packet, not per 64 KB train.
 *
 * Nothing is ever created in the root namespace. Every command runs through the CommandRunner
 * with LOOM_LAB=<prefix> in its environment, which marks the processes the lab is allowed to
 * kill (see procs.ts). `destroy` is idempotent and also runs on exit and on signals.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { LoomError, toLoomError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { startProcess, systemRunner, type CommandResult, type CommandRunner } from '../os/runner.js';
import {
  LAB_FRAGMENT_COUNTER,
  LAB_NFT_CHAIN,
  LAB_NFT_TABLE,
  LAB_PACKET_COUNTER,
  blockRules,
  counterPackets,
  degradeRules,
  labFirewallSetup,
  ruleHandlesTagged,
  type BlockSpec,
  type DegradeSpec,
} from './firewall.js';
import { LAB_ENV_MARKER, isAlive, labProcesses, signal, terminate } from './procs.js';
import { LAB_PREFIX_RE, LAB_RUN_DIR, labPodNetns, labWorkDir, ownerFile, markOwnerRecordKept, removePodsAndMounts, writeOwnerRecord } from './cleanup.js';
import { cgroupProcesses, netnsNamesOf, podCgroupDirs } from './pod-cgroups.js';
import { removeShimSockets, shimSockets } from './shims.js';
import { registerForExit, unregisterForExit } from './exit.js';

export interface LabOptions {
  /** `lm` + 6 hex digits; random when omitted. */
  prefix?: string;
  /** Number of hosts, 1..250. */
  hosts: number;
  /** A private IPv4 /24 written "a.b.c.0/24" (default 192.168.77.0/24); host N gets a.b.c.N. */
  subnet?: string;
  /** Underlay MTU, 1280..9000 (default 1500): br0 and both ends of every host's veth. */
  mtu?: number;
  /**
   * Segment GSO/TSO super-packets before the underlay (gso_max_segs 1 on every veth end), so
   * drops and counters see MTU-sized packets as on a real wire (default false: one machine's
   * veths pass 64 KB trains whole, which is faster but makes one random drop lose a whole train).
   */
  realisticWire?: boolean;
  runner?: CommandRunner;
  log?: Logger;
  /** Register exit/signal teardown (default true; RecordingRunner tests turn it off). */
  teardownOnExit?: boolean;
}

export interface LabHost {
  /** "h1", "h2", ... */
  readonly name: string;
  readonly index: number;
  readonly netns: string;
  readonly address: string;
}

/** A host by object, name ("h2") or 1-based index. */
export type HostRef = LabHost | string | number;

export interface LabBlock {
  readonly tag: string;
  readonly spec: BlockSpec;
}

/** A degradation of the underlay (`Lab.degrade`); lifted with `unblock`. */
export interface LabDegradation {
  readonly tag: string;
  readonly spec: DegradeSpec;
}

/** Packets the underlay bridge forwarded since the lab was built (both counted before any drop). */
export interface UnderlayCounts {
  /** IPv4 fragments (MF set or a non-zero offset). */
  fragments: number;
  /** Every IPv4 packet. */
  packets: number;
}

export interface LabExecOptions {
  allowFailure?: boolean;
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export interface LabProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

const PRIVATE_24_RE = /^(10\.\d{1,3}|172\.(1[6-9]|2\d|3[01])|192\.168)\.(\d{1,3})\.0\/24$/;

/** "a.b.c" of a private /24, or ERR_INVALID_ARGUMENT. */
export function subnetBase(subnet: string): string {
  const m = PRIVATE_24_RE.exec(subnet);
  const octets = m ? subnet.slice(0, -5).split('.').map(Number) : [];
  if (!m || octets.some((o) => o > 255)) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `lab subnet must be a private IPv4 /24 like 192.168.77.0/24, got "${subnet.slice(0, 40)}"`);
  }
  return octets.slice(0, 3).join('.');
}

export class Lab {
  readonly prefix: string;
  readonly underlay: string;
  readonly hosts: readonly LabHost[];
  /** Scratch space for state dirs and logs; removed by destroy. */
  readonly workDir: string;
  private readonly runner: CommandRunner;
  private readonly log: Logger;
  readonly mtu: number;
  readonly realisticWire: boolean;
  private readonly tracked = new Set<number>();
  private readonly children = new Map<number, ChildProcess>();
  private readonly createdNetns: string[] = [];
  private nextBlock = 1;
  private state: 'live' | 'kept' | 'destroyed' = 'live';

  private constructor(prefix: string, hosts: LabHost[], mtu: number, realisticWire: boolean, runner: CommandRunner, log: Logger) {
    this.prefix = prefix;
    this.underlay = `${prefix}-ul`;
    this.hosts = hosts;
    this.mtu = mtu;
    this.realisticWire = realisticWire;
    this.runner = runner;
    this.log = log;
    this.workDir = labWorkDir(prefix);
  }

  /** Builds the lab; on any failure removes what it made and rethrows. */
  static async create(options: LabOptions): Promise<Lab> {
    const prefix = options.prefix ?? `lm${randomBytes(3).toString('hex')}`;
    if (!LAB_PREFIX_RE.test(prefix)) throw new LoomError('ERR_INVALID_ARGUMENT', `lab prefix must match lm<6 hex>, got "${prefix.slice(0, 20)}"`);
    if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > 250) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `lab hosts must be 1..250, got ${String(options.hosts)}`);
    }
    const mtu = options.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 9000) throw new LoomError('ERR_INVALID_ARGUMENT', `lab mtu must be 1280..9000`);
    const base = subnetBase(options.subnet ?? '192.168.77.0/24');
    const hosts = Array.from({ length: options.hosts }, (_, i) => ({
      name: `h${i + 1}`,
      index: i + 1,
      netns: `${prefix}-h${i + 1}`,
      address: `${base}.${i + 1}`,
    }));
    const runner = options.runner ?? systemRunner;
    const lab = new Lab(prefix, hosts, mtu, options.realisticWire ?? false, runner, (options.log ?? silentLogger).child({ lab: prefix }));
    if (options.runner === undefined) {
      try {
        writeOwnerRecord(prefix);
      } catch (err) {
        throw new LoomError('ERR_CONFLICT', `lab prefix ${prefix} is taken (or ${LAB_RUN_DIR} is not writable)`, { cause: err });
      }
      mkdirSync(lab.workDir, { recursive: true });
    }
    if (options.teardownOnExit ?? options.runner === undefined) registerForExit(lab);
    try {
      await lab.build();
    } catch (err) {
      await lab.destroy();
      throw toLoomError(err, 'ERR_OS_COMMAND');
    }
    lab.log.info({ hosts: hosts.map((h) => `${h.netns}=${h.address}`) }, 'lab ready');
    return lab;
  }

  private async addNetns(name: string, sysctls: string[]): Promise<void> {
    await this.runner.run('ip', ['netns', 'add', name]);
    this.createdNetns.push(name);
    await this.runner.run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    const base = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];
    await this.runner.run('sysctl', ['-qw', ...base, ...sysctls], { netns: name });
  }

  private async build(): Promise<void> {
    const ul = this.underlay;
    await this.addNetns(ul, []);
    await this.runner.run('ip', ['-n', ul, 'link', 'add', 'br0', 'type', 'bridge']);
    await this.runner.run('ip', ['-n', ul, 'link', 'set', 'br0', 'up']);
    await this.runner.run('nft', ['-f', '-'], { netns: ul, input: labFirewallSetup() });
    const hostSysctls = [
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ];
    const mtu = String(this.mtu);
    // Set, not left to the bridge's "smallest port" rule, so the MTU holds with no port attached.
    await this.runner.run('ip', ['-n', ul, 'link', 'set', 'br0', 'mtu', mtu]);
    const wire = this.realisticWire ? ['gso_max_segs', '1'] : [];
    for (const h of this.hosts) {
      await this.addNetns(h.netns, hostSysctls);
      await this.runner.run('ip', ['-n', ul, 'link', 'add', h.name, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
      await this.runner.run('ip', ['-n', ul, 'link', 'set', h.name, 'master', 'br0', ...wire, 'up']);
      await this.runner.run('ip', ['-n', h.netns, 'link', 'set', 'eth0', 'mtu', mtu, ...wire, 'up']);
      await this.runner.run('ip', ['-n', h.netns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
    }
  }

  host(ref: HostRef): LabHost {
    const found = typeof ref === 'object' ? this.hosts.find((h) => h === ref) : this.hosts.find((h) => h.name === ref || h.index === ref);
    if (!found) throw new LoomError('ERR_NOT_FOUND', `no host ${typeof ref === 'object' ? ref.name : String(ref)} in lab ${this.prefix}`);
    return found;
  }

  /**
   * A namespace made by an extension of the lab (nat.ts), named `<prefix>-<role>`: from now on
   * destroyed with the lab's own (also by the exit/signal teardown). Idempotent.
   */
  adoptNetns(name: string): void {
    if (!name.startsWith(`${this.prefix}-`)) throw new LoomError('ERR_INVALID_ARGUMENT', `namespace ${name.slice(0, 40)} is not of lab ${this.prefix}`);
    if (!this.createdNetns.includes(name)) this.createdNetns.unshift(name);
  }

  /** Every namespace of the lab, the underlay last. */
  namespaces(): string[] {
    return [...this.hosts.map((h) => h.netns), this.underlay];
  }

  private env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    return { ...process.env, ...extra, [LAB_ENV_MARKER]: this.prefix };
  }

  /** Runs a command to completion inside a host (`ip netns exec`). Throws ERR_OS_COMMAND on failure unless allowFailure. */
  async exec(host: HostRef, cmd: string, args: readonly string[], options: LabExecOptions = {}): Promise<CommandResult> {
    this.assertLive();
    return this.runner.run(cmd, args, { ...options, netns: this.host(host).netns, env: this.env(options.env) });
  }

  /**
   * Starts a long-running process inside a host and remembers its PID for destroy.
   * `logFile` receives stdout and stderr (appended); without it output is discarded.
   * `sharedMounts`: join only the host's network namespace, keep this process's mounts and /sys.
   */
  start(
    host: HostRef,
    cmd: string,
    args: readonly string[],
    options: { logFile?: string; env?: NodeJS.ProcessEnv; sharedMounts?: boolean } = {},
  ): LabProcess {
    this.assertLive();
    const fd = options.logFile === undefined ? 'ignore' : openSync(options.logFile, 'a');
    const netns = this.host(host).netns;
    // `ip netns exec` gives the process a private mount namespace and a fresh /sys (no cgroup
    // mounts); `sharedMounts` joins only the network namespace (nsenter --net), for a daemon
    // that mounts things others must see or manages cgroups (containerd and runc).
    const [file, argv, where] = options.sharedMounts ? ['nsenter', [`--net=/run/netns/${netns}`, cmd, ...args], {}] : [cmd, args, { netns }];
    let child: ChildProcess;
    try {
      child = startProcess(file, argv, { ...where, env: this.env(options.env), logFile: fd });
    } finally {
      if (typeof fd === 'number') closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new LoomError('ERR_OS_COMMAND', `could not start ${cmd}`);
    this.tracked.add(pid);
    this.children.set(pid, child);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => {
        this.children.delete(pid);
        resolve(code);
      });
      child.once('error', () => resolve(null));
    });
    return { pid, child, exited };
  }

  /** Adopts a PID started indirectly (a daemon forked by `loom launch`) so destroy stops it. */
  track(pid: number): void {
    if (!Number.isInteger(pid) || pid <= 1) throw new LoomError('ERR_INVALID_ARGUMENT', `bad pid ${String(pid)}`);
    this.tracked.add(pid);
  }

  /** SIGTERM then SIGKILL after `graceMs`, for one tracked PID. */
  async stopProcess(pid: number, graceMs = 3000): Promise<void> {
    if (!this.tracked.has(pid)) throw new LoomError('ERR_NOT_FOUND', `pid ${pid} was not started by lab ${this.prefix}`);
    await terminate([pid], graceMs);
    this.tracked.delete(pid);
  }

  /** Drops TCP between two hosts (only `port`, on either side, when given), both directions. */
  async blockTcp(a: HostRef, b: HostRef, port?: number): Promise<LabBlock> {
    return this.block({ kind: 'tcp', a: this.host(a).address, b: this.host(b).address, ...(port === undefined ? {} : { port }) });
  }

  async blockUdp(a: HostRef, b: HostRef, port?: number): Promise<LabBlock> {
    return this.block({ kind: 'udp', a: this.host(a).address, b: this.host(b).address, ...(port === undefined ? {} : { port }) });
  }

  /** Drops all IPv4 between the two groups; traffic inside each group still flows. */
  async partition(groupA: readonly HostRef[], groupB: readonly HostRef[]): Promise<LabBlock> {
    return this.block({ kind: 'partition', groupA: groupA.map((h) => this.host(h).address), groupB: groupB.map((h) => this.host(h).address) });
  }

  /** Drops all IPv4 from the hosts of `from` to those of `to`; the other direction still flows (an asymmetric partition). */
  async dropOneWay(from: readonly HostRef[], to: readonly HostRef[]): Promise<LabBlock> {
    return this.block({ kind: 'oneway', from: from.map((h) => this.host(h).address), to: to.map((h) => this.host(h).address) });
  }

  private async block(spec: BlockSpec): Promise<LabBlock> {
    this.assertLive();
    const tag = `lab-b${this.nextBlock++}`;
    await this.runner.run('nft', ['-f', '-'], { netns: this.underlay, input: blockRules(spec, tag) });
    this.log.info({ tag, spec }, 'blocked');
    return { tag, spec };
  }

  /**
   * Degrades the whole underlay, both directions between every pair of hosts: IPv4 fragments
   * dropped and/or random IPv4 loss. Several degradations add up; `unblock(handle)` lifts one.
   */
  async degrade(spec: DegradeSpec): Promise<LabDegradation> {
    this.assertLive();
    const tag = `lab-b${this.nextBlock++}`;
    await this.runner.run('nft', ['-f', '-'], { netns: this.underlay, input: degradeRules(spec, tag) });
    this.log.info({ tag, spec }, 'degraded');
    return { tag, spec };
  }

  /**
   * IPv4 fragments and packets the underlay bridge forwarded since the lab was built, counted
   * before any drop rule (dropped fragments are counted too). Take a difference around what you
   * measure. With `realisticWire` off a GSO train counts as one packet.
   */
  async underlayCounts(): Promise<UnderlayCounts> {
    this.assertLive();
    const read = async (name: string): Promise<number> => {
      const listed = await this.runner.run('nft', ['-j', 'list', 'counter', 'bridge', LAB_NFT_TABLE, name], { netns: this.underlay });
      return counterPackets(listed.stdout, name);
    };
    return { fragments: await read(LAB_FRAGMENT_COUNTER), packets: await read(LAB_PACKET_COUNTER) };
  }

  /** IPv4 fragments the underlay bridge forwarded (or dropped) since the lab was built. */
  async countFragments(): Promise<number> {
    return (await this.underlayCounts()).fragments;
  }

  /**
   * A counter of the fragments from now on: `read()` gives those seen since this call.
   * Costs nothing to make; the nft counter runs for the whole life of the lab.
   */
  async fragmentCounter(): Promise<{ read(): Promise<number> }> {
    const start = await this.countFragments();
    return { read: async () => (await this.countFragments()) - start };
  }

  /** Lifts one block or degradation, or every one when none is given. Idempotent. */
  async unblock(block?: LabBlock | LabDegradation): Promise<void> {
    this.assertLive();
    const chain = ['bridge', LAB_NFT_TABLE, LAB_NFT_CHAIN];
    if (!block) {
      await this.runner.run('nft', ['flush', 'chain', ...chain], { netns: this.underlay });
      return;
    }
    const listed = await this.runner.run('nft', ['-j', '-a', 'list', 'chain', ...chain], { netns: this.underlay });
    const handles = ruleHandlesTagged(listed.stdout, block.tag);
    if (handles.length === 0) return;
    const script = handles.map((h) => `delete rule ${chain.join(' ')} handle ${h}`).join('\n') + '\n';
    await this.runner.run('nft', ['-f', '-'], { netns: this.underlay, input: script });
    this.log.info({ tag: block.tag }, 'unblocked');
  }

  /** Writes /etc/netns/<ns>/resolv.conf, which `ip netns exec` shows as /etc/resolv.conf in that host. */
  setResolvConf(host: HostRef, content: string): void {
    this.assertLive();
    const dir = `/etc/netns/${this.host(host).netns}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/resolv.conf`, content);
  }

  /**
   * Leaves everything in place after this process ends (for `loom demo --keep`). The owner
   * record is marked kept: test runs' `cleanupStale` leaves it alone; `loom demo --clean`
   * (cleanupStale with includeKept) removes it once this process is gone.
   */
  keep(): void {
    if (this.state !== 'live') return;
    this.state = 'kept';
    if (this.runner === systemRunner) markOwnerRecordKept(this.prefix);
    unregisterForExit(this);
    for (const child of this.children.values()) child.unref();
  }

  get destroyed(): boolean {
    return this.state === 'destroyed';
  }

  private assertLive(): void {
    if (this.state === 'destroyed') throw new LoomError('ERR_UNAVAILABLE', `lab ${this.prefix} is destroyed`);
  }

  private ourProcesses(): number[] {
    const marked = this.runner === systemRunner ? labProcesses(this.prefix, this.createdNetns) : [];
    return [...new Set([...[...this.tracked].filter(isAlive), ...marked])];
  }

  /** Stops our processes, deletes our namespaces, /etc/netns dirs and scratch dir. Idempotent. */
  async destroy(): Promise<void> {
    if (this.state === 'destroyed') return;
    this.state = 'destroyed';
    const ours = this.ourProcesses();
    // containerd shims of the lab leave their sockets in /run/containerd/s when killed (shims.ts);
    // its pods' namespaces must be read while they live (cleanup.ts removePodsAndMounts).
    const shimSocketPaths = this.runner === systemRunner ? shimSockets(ours) : [];
    const podNetns = this.runner === systemRunner ? labPodNetns(this.prefix) : [];
    const killed = await terminate(ours);
    if (killed.length > 0) this.log.warn({ pids: killed }, 'needed SIGKILL');
    // A second sweep: a daemon may have forked between the first listing and its SIGTERM.
    await terminate(this.runner === systemRunner ? labProcesses(this.prefix, this.createdNetns) : [], 1000);
    // Pods and mounts of a containerd the lab ran, if its own stop did not run (containerd.ts).
    if (this.runner === systemRunner) await removePodsAndMounts(this.prefix, this.runner, podNetns);
    removeShimSockets(shimSocketPaths);
    const failures: string[] = [];
    for (const ns of [...this.createdNetns].reverse()) {
      const r = await this.runner.run('ip', ['netns', 'del', ns], { allowFailure: true });
      if (r.code !== 0) failures.push(`${ns}: ${r.stderr.trim()}`);
      if (this.runner === systemRunner) rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    if (this.runner === systemRunner) {
      rmSync(this.workDir, { recursive: true, force: true });
      if (failures.length === 0) rmSync(ownerFile(this.prefix), { force: true });
    }
    unregisterForExit(this);
    if (failures.length > 0) throw new LoomError('ERR_OS_COMMAND', `lab ${this.prefix}: could not delete ${failures.join('; ')}`);
    this.log.info({}, 'lab destroyed');
  }

  /**
   * The last-resort teardown for process 'exit', where nothing asynchronous runs: SIGKILL our
   * processes and hand the namespace deletion to a detached `ip -batch`, which outlives us.
   * The owner record stays until a later cleanupStale confirms everything is gone.
   */
  destroySync(): void {
    if (this.state !== 'live') return;
    this.state = 'destroyed';
    // Pods of a containerd the lab ran, with their /run/netns mounts (read first, while they
    // live); the mounts under the scratch folder wait for the next cleanupStale (asynchronous work).
    const pods = this.runner === systemRunner ? cgroupProcesses(podCgroupDirs(this.prefix)) : [];
    const podNetns = netnsNamesOf(pods);
    const ours = this.ourProcesses();
    const shimSocketPaths = this.runner === systemRunner ? shimSockets(ours) : [];
    signal(ours, 'SIGKILL');
    removeShimSockets(shimSocketPaths);
    signal(pods, 'SIGKILL');
    const batch = `${LAB_RUN_DIR}/${this.prefix}.batch`;
    writeFileSync(batch, [...podNetns, ...this.createdNetns].map((ns) => `netns del ${ns}`).join('\n') + '\n');
    startProcess('ip', ['-force', '-batch', batch], { detached: true }).unref();
    for (const ns of this.createdNetns) rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
