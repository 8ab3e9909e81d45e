/**
 * Contracts of the data-plane benchmark. A path is one way of carrying a container's packets to a
 * container on another host (a bare veth, kernel VXLAN, tinc, ..., Loom). Adding a path is one
 * entry in paths/index.ts: `setup` builds it on a fresh two-host lab and says where to measure.
 */
import type { Lab, LabHost } from '../../src/lab/index.js';
import type { CommandResult } from '../../src/os/runner.js';

/** Where the table groups a path and what its ratios are taken against. */
export type PathGroup =
  | 'limit' // the best the machine can do (a bare veth)
  | 'kernel' // hand-made kernel VXLAN: the reference for Loom's fast path
  | 'peer' // encrypted user-space peers (tinc, nebula, wireguard-go): reference for Loom's encrypted relay
  | 'loom';

/** What Loom must reach on a row, as the issue states it; checked only when the row is measured. */
export interface PathTarget {
  /** Minimum throughput as a fraction of the hand-made VXLAN row. */
  minMbpsVsVxlan?: number;
  /** Maximum median RTT as a multiple of the hand-made VXLAN row. */
  maxRttVsVxlan?: number;
  /** Minimum throughput as a fraction of the best encrypted user-space peer (same condition). */
  minMbpsVsBestPeer?: number;
  /** Maximum median RTT as a multiple of the lowest RTT of the encrypted peers (same condition). */
  maxRttVsBestPeer?: number;
  /** Maximum IPv4 fragments seen on the underlay while the row was measured. */
  maxFragments?: number;
}

/** The handles a path's setup gets: a fresh lab (underlay + hosts h1, h2) and helpers around it. */
export interface PathContext {
  readonly lab: Lab;
  readonly hosts: readonly [LabHost, LabHost];
  /** Per-path scratch directory (configs, keys, logs) inside the run's /tmp dir; removed with it. */
  readonly workDir: string;
  /** A short per-run tag (the lab prefix without "lm"), for names that must be unique machine-wide. */
  readonly runTag: string;
  /** The underlay MTU of this row's condition (1500 on a clean underlay); peers fit their MTU to it. */
  readonly underlayMtu: number;
  /** Creates a quiet namespace `<prefix>-<role>` (lo up, IPv6 off); removed by the harness. */
  addNetns(role: string): Promise<string>;
  /**
   * A "container": namespace `<prefix>-<role>` whose eth0 (address `cidr`, given MAC and MTU) is a
   * veth to the host bridge `HOST_BRIDGE` in `host` (created on first use). Returns the namespace.
   */
  addContainer(host: LabHost, role: string, spec: ContainerSpec): Promise<string>;
  /** Runs a command to completion in a namespace; throws ERR_OS_COMMAND on failure unless allowFailure. */
  exec(netns: string, cmd: string, args: readonly string[], options?: { allowFailure?: boolean; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<CommandResult>;
  /** Starts a long-running process in a namespace; the harness kills it by PID at teardown. */
  start(netns: string, cmd: string, args: readonly string[], options?: { logName?: string; env?: NodeJS.ProcessEnv }): number;
  /** Stops one PID started by `start` (SIGTERM, then SIGKILL after `graceMs`); others are ignored. */
  stop(pid: number, graceMs?: number): Promise<void>;
  /** Polls `check` every `everyMs` until true; ERR_TIMEOUT after `timeoutMs` (bounded in count too). */
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs?: number): Promise<void>;
  /** Waits until one ping from `fromNs` to `ip` succeeds. */
  waitForPing(fromNs: string, ip: string, timeoutMs?: number): Promise<void>;
}

export interface ContainerSpec {
  /** "10.99.0.1/24" */
  cidr: string;
  mac: string;
  mtu: number;
  /** Default gateway for L3 paths. */
  gateway?: string;
}

/** What a built path hands back: where to run iperf3/ping, and whose CPU to count. */
export interface PathSession {
  clientNs: string;
  serverNs: string;
  serverIp: string;
  /** Router/daemon processes whose CPU is measured around the iperf3 run (both hosts). */
  pids: number[];
  /** MTU of the container interface, shown in the table. */
  mtu: number;
  /** Stops what setup started beyond the lab (the harness then destroys the lab anyway). */
  teardown?(): Promise<void>;
}

export interface DataPath {
  /** Stable short id, used in --only and the JSON output. */
  id: string;
  label: string;
  group: PathGroup;
  /** Carries traffic encrypted; such rows are also compared with the best encrypted peer. */
  encrypted: boolean;
  /** Executables that must be on PATH; a missing one makes the row "skipped (not installed)". */
  requires: readonly string[];
  /** Set while the path cannot be built yet: the row shows "pending" with this reason. */
  pending?: string;
  /** Runs only when named in --only (tuning rows). */
  optIn?: boolean;
  setup(ctx: PathContext): Promise<PathSession>;
}

/** One iperf3 run with the CPU figures taken around it. */
export interface RunSample {
  mbps: number;
  retransmits: number;
  /** Sum over the session's pids, in % of one core (100 = one core busy). */
  daemonCpuPct: number | null;
  /** Whole machine, in % of one core (the ceiling is 100 x cores). */
  machineBusyPct: number;
}

export interface Measurement {
  mtu: number;
  runs: RunSample[];
  rttMedianMs: number;
  rttSamples: number;
  pingLossPct: number;
  /** IPv4 fragments the underlay bridge saw (or dropped) from the first ping to the last iperf3 run. */
  underlayFragments?: number;
  /** IPv4 packets the underlay bridge saw meanwhile. */
  underlayPackets?: number;
}

export type PathOutcome =
  | { kind: 'measured'; measurement: Measurement }
  | { kind: 'pending'; reason: string }
  | { kind: 'skipped'; reason: string }
  | { kind: 'failed'; reason: string };

export interface PathResult {
  /** The underlay condition the row ran under (conditions.ts); rows compare only within one. */
  condition?: string;
  id: string;
  label: string;
  group: PathGroup;
  encrypted: boolean;
  target?: PathTarget;
  outcome: PathOutcome;
}
