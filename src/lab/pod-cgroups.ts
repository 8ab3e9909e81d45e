/**
 * The cgroups of pods a lab's containerd runs (containerd.ts): every sandbox is created with the
 * cgroup parent `/loom-lab-<prefix>-<name>`, so a lab can find its pods' processes (which carry
 * no lab marker and sit in network namespaces the lab never named) and remove their cgroups,
 * also after a crash (cleanupStale). cgroup v1 (one tree per controller) and v2 alike: every
 * tree under /sys/fs/cgroup is looked at. The pods' network namespaces are mounted by containerd
 * in /run/netns (cni-<uuid>); `netnsNamesOf` finds ours through the pods' processes.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The cgroup parent (a cgroupfs path) of the pods of containerd `name` ("h1", "h1-br") in lab `prefix`. */
export function podCgroupParent(prefix: string, name: string): string {
  return `/loom-lab-${prefix}-${name}`;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** The cgroup trees' mount points: /sys/fs/cgroup itself (v2) and each controller's folder (v1). */
function cgroupTrees(): string[] {
  return [CGROUP_ROOT, ...subdirs(CGROUP_ROOT).map((d) => join(CGROUP_ROOT, d))].filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/**
 * Every cgroup folder of lab `prefix`'s pods (only containerd `name`'s when given), in every tree,
 * deepest first (the order to remove them in).
 */
export function podCgroupDirs(prefix: string, name?: string): string[] {
  const top = name === undefined ? `loom-lab-${prefix}-` : podCgroupParent(prefix, name).slice(1);
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const d of subdirs(dir)) walk(join(dir, d));
    out.push(dir);
  };
  for (const tree of cgroupTrees()) {
    for (const d of subdirs(tree)) if (name === undefined ? d.startsWith(top) : d === top) walk(join(tree, d));
  }
  return out;
}

/** PIDs in the given cgroup folders. */
export function cgroupProcesses(dirs: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const dir of dirs) {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (/^[0-9]+$/.test(line)) pids.add(Number(line));
    } catch {
      // removed meanwhile
    }
  }
  return [...pids];
}

/** Removes the (empty) cgroup folders, deepest first; a busy or vanished one is skipped. */
export function removeCgroupDirs(dirs: readonly string[]): void {
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      // still has processes, or already gone
    }
  }
}

const NETNS_DIR = '/run/netns';

/**
 * Names in /run/netns of the network namespaces the given processes are in: the pods' namespaces
 * containerd mounted there (cni-<uuid>). Must be read while the processes live: once they are
 * gone, nothing tells whose a cni-* mount was.
 */
export function netnsNamesOf(pids: readonly number[]): string[] {
  const inodes = new Set<number>();
  for (const pid of pids) {
    try {
      const m = /^net:\[([0-9]+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
      if (m) inodes.add(Number(m[1]));
    } catch {
      // exited meanwhile
    }
  }
  if (inodes.size === 0) return [];
  const names: string[] = [];
  for (const name of (() => {
    try {
      return readdirSync(NETNS_DIR);
    } catch {
      return [];
    }
  })()) {
    try {
      if (inodes.has(statSync(join(NETNS_DIR, name)).ino)) names.push(name);
    } catch {
      // removed meanwhile, or not a namespace mount
    }
  }
  return names;
}
