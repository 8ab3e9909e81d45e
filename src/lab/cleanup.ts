/**
 * Owner records and leftovers of test labs. A lab writes /run/loom-lab/<prefix>.pid ("PID
 * STARTTIME") BEFORE it creates any namespace, so a namespace named like ours without a record
 * was not made by a lab and is never touched. A lab whose owner is gone (PID dead, or reused by a
 * process with another start time) is stale, and `cleanupStale` removes its namespaces, its
 * /etc/netns dirs and its marked processes.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { silentLogger, type Logger } from '../core/logger.js';
import { systemRunner, type CommandRunner } from '../os/runner.js';
import { isAlive, labProcesses, processStartTime, signal, terminate } from './procs.js';
import { unmountUnder } from './mounts.js';
import { removeShimSockets, shimSockets } from './shims.js';
import { cgroupProcesses, netnsNamesOf, podCgroupDirs, removeCgroupDirs } from './pod-cgroups.js';

export const LAB_RUN_DIR = '/run/loom-lab';
/** A lab prefix: "lm" + 6 hex digits. Namespaces are "<prefix>-<role>". */
export const LAB_PREFIX_RE = /^lm[0-9a-f]{6}$/;
const LAB_NETNS_RE = /^(lm[0-9a-f]{6})-[a-z0-9]{1,6}$/;
/** Default filter of cleanupStale: every lab namespace. */
export const ANY_LAB_NETNS = /^lm[0-9a-f]{6}-/;

export interface OwnerRecord {
  pid: number;
  startTime: number | null;
  /** Left up on purpose (`loom demo --keep`): only an explicit `demo --clean` removes it. */
  kept: boolean;
}

export function ownerFile(prefix: string): string {
  return `${LAB_RUN_DIR}/${prefix}.pid`;
}

export function writeOwnerRecord(prefix: string): void {
  mkdirSync(LAB_RUN_DIR, { recursive: true });
  writeFileSync(ownerFile(prefix), `${process.pid} ${processStartTime(process.pid) ?? ''}\n`, { flag: 'wx' });
}

/** Marks a lab as kept, so that test runs' stale cleanup leaves it to `loom demo --clean`. */
export function markOwnerRecordKept(prefix: string): void {
  const owner = readOwnerRecord(prefix);
  if (owner && !owner.kept) writeFileSync(ownerFile(prefix), `${owner.pid} ${owner.startTime ?? ''} kept\n`);
}

export function parseOwnerRecord(text: string): OwnerRecord | null {
  const m = /^([0-9]{1,10})(?: ([0-9]{0,20}))?( kept)?\s*$/.exec(text);
  if (!m) return null;
  return { pid: Number(m[1]), startTime: m[2] === undefined || m[2] === '' ? null : Number(m[2]), kept: m[3] !== undefined };
}

export function readOwnerRecord(prefix: string): OwnerRecord | null {
  try {
    return parseOwnerRecord(readFileSync(ownerFile(prefix), 'utf8'));
  } catch {
    return null;
  }
}

export function ownerAlive(owner: OwnerRecord): boolean {
  if (!isAlive(owner.pid)) return false;
  return owner.startTime === null || processStartTime(owner.pid) === owner.startTime;
}

/** Namespace names from `ip netns list` ("name (id: 3)" or "name"). */
export function parseNetnsList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.length > 0);
}

/**
 * Groups lab namespaces by prefix and keeps the groups whose owner record exists and whose owner
 * is dead. Pure: the record lookup and liveness check are passed in.
 */
export function selectStale(
  netnsNames: readonly string[],
  readOwner: (prefix: string) => OwnerRecord | null,
  alive: (owner: OwnerRecord) => boolean,
  filter: RegExp = ANY_LAB_NETNS,
  includeKept = false,
): Map<string, string[]> {
  const byPrefix = new Map<string, string[]>();
  for (const name of netnsNames) {
    const m = LAB_NETNS_RE.exec(name);
    if (!m || !filter.test(name)) continue;
    const prefix = m[1]!;
    byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), name]);
  }
  const stale = new Map<string, string[]>();
  for (const [prefix, names] of byPrefix) {
    const owner = readOwner(prefix);
    if (owner && !alive(owner) && (includeKept || !owner.kept)) stale.set(prefix, names);
  }
  return stale;
}

export interface CleanupResult {
  /** Prefixes removed. */
  prefixes: string[];
  namespaces: string[];
  killed: number[];
}

/**
 * Removes leftovers of dead labs. `pattern` narrows which namespaces are considered (default:
 * every `lm<6 hex>-*`); it can never widen beyond that shape. Safe to run while other labs live.
 */
export async function cleanupStale(
  pattern: RegExp = ANY_LAB_NETNS,
  components: { runner?: CommandRunner; log?: Logger; includeKept?: boolean } = {},
): Promise<CleanupResult> {
  const includeKept = components.includeKept ?? false;
  const runner = components.runner ?? systemRunner;
  const log = components.log ?? silentLogger;
  const listed = await runner.run('ip', ['netns', 'list'], { allowFailure: true });
  const stale = selectStale(parseNetnsList(listed.stdout), readOwnerRecord, ownerAlive, pattern, includeKept);
  const result: CleanupResult = { prefixes: [], namespaces: [], killed: [] };
  for (const [prefix, names] of stale) {
    const pids = labProcesses(prefix, names);
    const sockets = shimSockets(pids);
    const podNetns = labPodNetns(prefix);
    await terminate(pids, 2000);
    removeShimSockets(sockets);
    result.killed.push(...pids);
    await removePodsAndMounts(prefix, runner, podNetns);
    for (const ns of names) {
      await runner.run('ip', ['netns', 'del', ns], { allowFailure: true });
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
      result.namespaces.push(ns);
    }
    removeRecord(prefix);
    result.prefixes.push(prefix);
    log.info({ prefix, namespaces: names, killed: pids }, 'removed stale lab');
  }
  // Records of dead owners whose namespaces are already gone (a teardown from an exit hook).
  const listedPrefixes = new Set(parseNetnsList(listed.stdout).map((n) => n.slice(0, 8)));
  for (const file of safeReaddir(LAB_RUN_DIR)) {
    const prefix = file.slice(0, -'.pid'.length);
    if (!file.endsWith('.pid') || !LAB_PREFIX_RE.test(prefix) || listedPrefixes.has(prefix) || !pattern.test(`${prefix}-ul`)) continue;
    const owner = readOwnerRecord(prefix);
    if (owner && !ownerAlive(owner) && (includeKept || !owner.kept)) {
      await removePodsAndMounts(prefix, runner);
      removeRecord(prefix);
      result.prefixes.push(prefix);
    }
  }
  return result;
}

/**
 * What a lab's containerd (containerd.ts) can leave that neither the namespaces nor the marked
 * processes cover: pod processes (found by their cgroups) and their network namespaces in
 * /run/netns (found through those processes), mounts under the lab's scratch folder
 * (which would make removing it fail), and the pod cgroups. Call it after the lab's marked
 * processes (containerd, its shims) are gone, with the pods' namespaces as read by
 * `labPodNetns` BEFORE stopping those (a killed shim may take its pods with it, and then nothing
 * tells whose a /run/netns/cni-* was). Never throws.
 */
export async function removePodsAndMounts(prefix: string, runner: CommandRunner, knownNetns: readonly string[] = []): Promise<void> {
  const pods = cgroupProcesses(podCgroupDirs(prefix));
  const netns = [...new Set([...knownNetns, ...netnsNamesOf(pods)])];
  signal(pods, 'SIGKILL');
  const deadline = Date.now() + 2000;
  while (pods.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const name of netns) await runner.run('ip', ['netns', 'del', name], { allowFailure: true });
  await unmountUnder(labWorkDir(prefix), runner);
  removeCgroupDirs(podCgroupDirs(prefix));
}

/** The /run/netns names of lab `prefix`'s live pods; read before any teardown (see removePodsAndMounts). */
export function labPodNetns(prefix: string): string[] {
  return netnsNamesOf(cgroupProcesses(podCgroupDirs(prefix)));
}

function removeRecord(prefix: string): void {
  rmSync(ownerFile(prefix), { force: true });
  rmSync(`${LAB_RUN_DIR}/${prefix}.batch`, { force: true });
  rmSync(labWorkDir(prefix), { recursive: true, force: true });
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Scratch directory of a lab (state dirs, logs). */
export function labWorkDir(prefix: string): string {
  return `/tmp/loom-lab/${prefix}`;
}
