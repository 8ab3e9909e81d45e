/**
 * A minimal container runtime for `loom run / attach / exec / ps / rm`. A container is a process in
 * new net, uts, mount and pid namespaces (util-linux `unshare`), plugged into the Loom bridge.
 * The host PID of its PID 1 and that PID's start time are recorded, and every signal is sent only
 * after checking both, so PID reuse never makes us kill a stranger.
 *
 * Start-up is gated: the container's command does not run until its network is ready (the gate is
 * a pipe the child reads before exec). The child is `sh -c GATE_SCRIPT loom-gate NAME RESOLV
 * cmd...`: a constant script; the name, the file and the user's command are passed as separate
 * arguments ("$1", "$2", "$@"), never interpolated.
 */
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { systemClock, type Clock } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import { formatCidr } from '../core/net.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { macFromSeed } from '../dataplane/addresses.js';
import { startProcess, systemRunner, type CommandResult, type CommandRunner } from '../os/runner.js';
import { storageFailure } from '../os/storage-error.js';
import { netlinkLinks, type NetnsLinks } from '../os/netns-links.js';
import { attachNetwork, CONTAINER_IFNAME, delay } from './attach.js';
import { procProcessTable, type ProcessTable } from './processes.js';
import { containerResolvConf } from './resolv-conf.js';
import { ContainerStore } from './store.js';
import type { AttachResult, AttachSpec, ContainerEvent, ContainerRecord, RunSpec } from './types.js';
import { parseCommand, parseRunSpec } from './validate.js';
import { isoTimestamp } from '../core/utc-time.js';

/**
 * The container's first process, before its command: sets its host name (through its own /proc, a
 * shell builtin: no `hostname` process) and, when given, binds
 * its resolv.conf over /etc/resolv.conf (its own UTS and mount namespaces), then waits at the
 * start gate (fd 3, a pipe from the router) until the network is attached, closes it and execs
 * the command. It says "ready" on fd 4 (a pipe to the router) once the first two steps are done. Doing this in the container saves the router an nsenter process each and a FIFO.
 * Any failure exits 125 before the command runs; the router sees the gate's pipe broken.
 *   sh -c GATE_SCRIPT loom-gate NAME RESOLV_FILE_OR_EMPTY CMD...
 */
const GATE_SCRIPT = 'printf %s "$1" > /proc/sys/kernel/hostname || exit 125; if [ -n "$2" ]; then mount --bind "$2" /etc/resolv.conf || exit 125; fi; echo ready >&4; exec 4>&-; read -r _ <&3 || exit 125; exec 3<&-; shift 2; exec "$@"';
const GATE_FD = 3;
const READY_FD = 4;
const FIND_PID_MS = 3000;
const GATE_OPEN_MS = 3000;
const POLL_MS = 10;
/** The container's PID 1 appears a few ms after the spawn: looked for often (a /proc read each). */
const FIND_PID_POLL_MS = 2;
const DEFAULT_STOP_GRACE_MS = 2000;
const DEFAULT_WATCH_INTERVAL_MS = 250;

export interface RuntimeComponents {
  runner?: CommandRunner;
  clock?: Clock;
  logger?: Logger;
  processes?: ProcessTable;
  /** The link door attach uses; default rtnetlink (tests: MemoryNetnsLinks). */
  netnsLinks?: NetnsLinks;
}

export interface RuntimeInit {
  stateDir: string;
  /** Time between SIGTERM and SIGKILL on remove (PID 1 of a namespace ignores SIGTERM without a handler). Default 2000. */
  stopGraceMs?: number;
  /** How often the watcher checks that containers live (death noticed within this). Default 250. */
  watchIntervalMs?: number;
}

export class ContainerRuntime {
  readonly store: ContainerStore;
  private readonly runner: CommandRunner;
  private readonly netnsLinks: NetnsLinks;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly processes: ProcessTable;
  private readonly stopGraceMs: number;
  private readonly watchIntervalMs: number;
  private readonly listeners = new Set<(e: ContainerEvent) => void>();
  private watchTimer: { cancel(): void } | null = null;
  private watching = false;
  private readonly cleaning = new Set<string>();

  constructor(components: RuntimeComponents, init: RuntimeInit) {
    this.runner = components.runner ?? systemRunner;
    this.netnsLinks = components.netnsLinks ?? netlinkLinks;
    this.clock = components.clock ?? systemClock;
    this.logger = components.logger ?? silentLogger;
    this.processes = components.processes ?? procProcessTable;
    this.store = new ContainerStore(init.stateDir);
    this.stopGraceMs = init.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.watchIntervalMs = init.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS;
  }

  /** Listeners are called synchronously; one that throws is logged and does not stop the others. */
  onEvent(listener: (e: ContainerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ContainerEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.logger.error({ err: toLoomError(err).message, event: event.type }, 'container event listener failed');
      }
    }
  }

  isAlive(r: ContainerRecord): boolean {
    return this.processes.startTime(r.pid) === r.pidStartTime;
  }

  /** Containers whose record exists (alive or not yet noticed dead). */
  list(): ContainerRecord[] {
    return this.store.list();
  }

  /** By id, or by name. ERR_NOT_FOUND if neither matches. */
  find(idOrName: string): ContainerRecord {
    const all = this.store.list();
    const hit = all.find((r) => r.id === idOrName) ?? all.find((r) => r.name === idOrName);
    if (!hit) throw new LoomError('ERR_NOT_FOUND', `no container ${JSON.stringify(idOrName.slice(0, 70))}`);
    return hit;
  }

  /** Starts a container; a full or read-only state dir fails it with ERR_STORAGE (nothing is left behind). */
  async run(input: RunSpec): Promise<ContainerRecord> {
    try {
      return await this.start(input);
    } catch (err) {
      throw storageFailure(err, this.store.dir) ?? err;
    }
  }

  private async start(input: RunSpec): Promise<ContainerRecord> {
    const spec = parseRunSpec(input);
    if (this.store.list().some((r) => r.name === spec.name && this.isAlive(r))) throw new LoomError('ERR_CONFLICT', `a container named ${spec.name} is running`);
    const id = spec.id ?? (randomBytes(6).toString('hex') as ContainerId);
    if (spec.id !== undefined && this.store.load(spec.id) !== null) throw new LoomError('ERR_CONFLICT', `container id ${spec.id} is taken`);
    const mac = spec.mac ?? macFromSeed(id);
    const hostVeth = `vlm${id}`;
    // Its resolv.conf, bound over /etc/resolv.conf by the gate script. A failure fails the run: a
    // container silently left with the host's resolvers would not find its peers.
    // The phases of the start, in ms since it was asked for, logged with "container started" (bench/run-latency prints them).
    const t0 = input.startedAt ?? performance.now();
    const phases: Record<string, number> = {};
    const mark = (phase: string): void => void (phases[phase] = Math.round((performance.now() - t0) * 10) / 10);
    const resolvFile = spec.dns ? this.store.scratchPath(id, 'resolv.conf') : '';
    if (spec.dns) writeFileSync(resolvFile, containerResolvConf(spec.dns), { mode: 0o644 });
    const log = openSync(this.store.scratchPath(id, 'log'), 'a', 0o600);
    let child: ChildProcess;
    try {
      // detached: the container outlives the process that started it (the CLI, a test helper).
      const argv = ['--fork', '--pid', '--mount-proc', '--net', '--uts', '--kill-child', '--', 'sh', '-c', GATE_SCRIPT, 'loom-gate', spec.name, resolvFile, ...spec.cmd];
      child = startProcess('unshare', argv, { detached: true, stdio: ['ignore', log, log, 'pipe', 'pipe'] });
    } finally {
      closeSync(log);
    }
    // A spawn failure (no unshare binary) leaves child.pid undefined, which is reported below.
    child.on('error', () => {});
    child.unref();
    const unsharePid = child.pid;
    let pid: number | null = null;
    mark('spawn');
    try {
      if (unsharePid === undefined) throw new LoomError('ERR_OS_COMMAND', 'could not start unshare');
      pid = await this.findNamespacePid(unsharePid);
      mark('pid');
      const pidStartTime = this.processes.startTime(pid);
      if (pidStartTime === null) throw new LoomError('ERR_OS_COMMAND', 'container process exited during start-up');
      const record: ContainerRecord = { id, name: spec.name, pid, pidStartTime, unsharePid, mac, cidrs: [formatCidr(spec.cidr)], hostVeth, bridge: spec.bridge, createdAt: isoTimestamp(Date.now()) };
      await attachNetwork({ links: this.netnsLinks, clock: this.clock }, { target: { pid }, cidr: spec.cidr, mac, bridge: spec.bridge, mtu: spec.mtu, hostVeth, ...(spec.gateway === undefined ? {} : { gateway: spec.gateway }) });
      mark('attach');
      this.store.save(record);
      this.armWatch();
      mark('save');
      await this.openGate(child, pid, id);
      mark('gate');
      this.logger.info({ id, name: spec.name, pid, cidr: formatCidr(spec.cidr), ms: phases }, 'container started');
      this.emit({ type: 'started', container: record });
      return record;
    } catch (err) {
      if (pid !== null) this.processes.signal(pid, 'SIGKILL');
      if (unsharePid !== undefined) this.processes.signal(unsharePid, 'SIGKILL');
      await this.runner.run('ip', ['link', 'del', hostVeth], { allowFailure: true });
      this.store.remove(id);
      throw toLoomError(err, 'ERR_OS_COMMAND');
    }
  }

  /**
   * Sends the container's gratuitous ARP again (setting ethwe's MAC to itself makes the kernel
   * announce, arp_notify=1). Best effort: a container that is gone by now is simply skipped.
   */
  async announce(r: ContainerRecord): Promise<void> {
    if (!this.isAlive(r)) return;
    await this.runner.run('nsenter', ['--target', String(r.pid), '--net', '--', 'ip', 'link', 'set', CONTAINER_IFNAME, 'address', r.mac], { allowFailure: true });
  }

  /** Plugs any process's netns (by PID, or /run/netns/X) into the bridge. Not recorded as a Loom container. */
  attach(spec: AttachSpec): Promise<AttachResult> {
    return attachNetwork({ links: this.netnsLinks, clock: this.clock }, spec);
  }

  private nsenterArgs(r: ContainerRecord, argv: string[]): string[] {
    return ['--target', String(r.pid), '--net', '--uts', '--mount', '--pid', '--', ...parseCommand(argv)];
  }

  private live(idOrName: string): ContainerRecord {
    const r = this.find(idOrName);
    if (!this.isAlive(r)) throw new LoomError('ERR_NOT_FOUND', `container ${r.name} is not running`);
    return r;
  }

  /** Starts `argv` inside all the container's namespaces; output goes to `logFile` (fd) or nowhere. */
  exec(idOrName: string, argv: string[], options: { logFile?: number } = {}): ChildProcess {
    const r = this.live(idOrName);
    return startProcess('nsenter', this.nsenterArgs(r, argv), options.logFile === undefined ? {} : { logFile: options.logFile });
  }

  /** Runs `argv` inside the container to completion and returns its output. */
  execCapture(idOrName: string, argv: string[], options: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<CommandResult> {
    const r = this.live(idOrName);
    return this.runner.run('nsenter', this.nsenterArgs(r, argv), options);
  }

  /** Stops the container (SIGTERM, then SIGKILL after the grace period), deletes its veth and record. Idempotent per id. */
  async remove(idOrName: string): Promise<ContainerRecord> {
    const r = this.find(idOrName);
    await this.stop(r);
    await this.cleanup(r);
    this.logger.info({ id: r.id, name: r.name }, 'container removed');
    this.emit({ type: 'removed', container: r });
    return r;
  }

  private async stop(r: ContainerRecord): Promise<void> {
    if (!this.isAlive(r)) return;
    this.processes.signal(r.pid, 'SIGTERM');
    const deadline = this.clock.now() + this.stopGraceMs;
    while (this.isAlive(r) && this.clock.now() < deadline) await delay(this.clock, POLL_MS);
    if (this.isAlive(r)) this.processes.signal(r.pid, 'SIGKILL');
    // unshare exits once its child is gone; --kill-child covers the reverse.
    const end = this.clock.now() + 1000;
    while (this.isAlive(r) && this.clock.now() < end) await delay(this.clock, POLL_MS);
  }

  private async cleanup(r: ContainerRecord): Promise<void> {
    // The veth goes with the container's netns anyway; deleting it here makes that immediate.
    await this.runner.run('ip', ['link', 'del', r.hostVeth], { allowFailure: true });
    this.store.remove(r.id);
  }

  /**
   * Starts watching: every `watchIntervalMs` while there are containers, one whose process is gone
   * is cleaned up and reported as `died`. Idempotent; `unwatch` stops it.
   */
  watch(): void {
    this.watching = true;
    this.armWatch();
  }

  unwatch(): void {
    this.watching = false;
    this.watchTimer?.cancel();
    this.watchTimer = null;
  }

  /**
   * The watcher's timer runs only while there are records: a router with no container does not
   * wake every `watchIntervalMs` for nothing (issue 14, idle cost). Armed again by the next start.
   */
  private armWatch(): void {
    if (!this.watching || this.watchTimer || this.store.list().length === 0) return;
    this.watchTimer = this.clock.setInterval(() => void this.watchPass(), this.watchIntervalMs);
  }

  private async watchPass(): Promise<void> {
    const dead = await this.checkDeaths();
    // Only a death can leave the store empty: no second directory read on a quiet pass.
    if (dead.length > 0 && this.watchTimer && this.store.list().length === 0) {
      this.watchTimer.cancel();
      this.watchTimer = null;
    }
  }

  /** One watcher pass; exposed so a daemon can run it at start-up for containers that died while it was down. */
  async checkDeaths(): Promise<ContainerRecord[]> {
    const dead = this.store.list().filter((r) => !this.isAlive(r) && !this.cleaning.has(r.id));
    for (const r of dead) {
      this.cleaning.add(r.id);
      try {
        await this.cleanup(r);
        this.logger.info({ id: r.id, name: r.name }, 'container died');
        this.emit({ type: 'died', container: r });
      } catch (err) {
        this.logger.warn({ id: r.id, err: toLoomError(err).message }, 'cleanup of dead container failed');
      } finally {
        this.cleaning.delete(r.id);
      }
    }
    return dead;
  }

  /** The host PID of unshare's child: PID 1 of the new PID namespace. */
  private async findNamespacePid(unsharePid: number): Promise<number> {
    const deadline = this.clock.now() + FIND_PID_MS;
    for (let i = 0; i < FIND_PID_MS / FIND_PID_POLL_MS + 1; i++) {
      const child = this.processes.children(unsharePid).find((p) => this.processes.inOtherPidNamespace(p));
      if (child !== undefined) return child;
      if (this.processes.startTime(unsharePid) === null || this.clock.now() >= deadline) break;
      await delay(this.clock, FIND_PID_POLL_MS);
    }
    throw new LoomError('ERR_TIMEOUT', 'container process did not appear');
  }

  /** Lets the container's command start. The FIFO has no reader until sh reaches `read`: retry briefly. */
  /**
   * Waits until the gate script has set the host name and bound resolv.conf (it writes "ready" on
   * fd 4), then opens the gate (a line on fd 3). The container's PID 1 dying first means a set-up
   * step failed (its log says which): ERR_OS_COMMAND. `unshare` keeps its own copies of both pipe
   * ends, so a broken pipe is not how a dead child shows; its PID is watched instead.
   */
  private async openGate(child: ChildProcess, pid: number, id: ContainerId): Promise<void> {
    const gate = child.stdio[GATE_FD] as Writable | null | undefined;
    const ready = child.stdio[READY_FD] as Readable | null | undefined;
    if (!gate || !ready) throw new LoomError('ERR_INTERNAL', 'the container has no start gate');
    try {
      let said = '';
      let wake: () => void = () => {};
      ready.on('data', (chunk: Buffer) => {
        said += chunk.toString('latin1');
        wake();
      });
      ready.on('error', () => {});
      const deadline = this.clock.now() + GATE_OPEN_MS;
      while (!said.includes('ready')) {
        if (this.processes.startTime(pid) === null) throw new LoomError('ERR_OS_COMMAND', `the container's set-up (host name, resolv.conf) failed: ${this.logTail(id)}`);
        if (this.clock.now() >= deadline) throw new LoomError('ERR_TIMEOUT', 'container did not reach its start gate');
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), delay(this.clock, POLL_MS)]);
      }
      await new Promise<void>((resolve, reject) => gate.once('error', reject).end('go\n', () => resolve()));
    } finally {
      gate.destroy();
      ready.destroy();
    }
  }

  /** The end of a container's log, for an error message. */
  private logTail(id: ContainerId): string {
    try {
      const text = readFileSync(this.store.scratchPath(id, 'log'), 'utf8').trim();
      return text.slice(-300) || 'no output';
    } catch {
      return 'no log';
    }
  }

}
