/**
 * Mounts a lab leaves under its scratch folder: the overlay root file systems and network
 * namespace bind mounts of the containerd it runs there (containerd.ts). They live in the
 * caller's mount namespace, so the folder cannot be removed before they are unmounted: a bind
 * mount of a namespace makes `rm` fail with EBUSY, and removing files through a live overlay
 * would only write whiteouts.
 */
import { readFileSync } from 'node:fs';
import type { CommandRunner } from '../os/runner.js';

/** Undoes the octal escapes of /proc/self/mountinfo paths (\040 for a space and so on). */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Mount points at or below `dir` in a /proc/self/mountinfo text, deepest (and, at one depth,
 * latest) first: the order to unmount them in. Pure.
 */
export function mountPointsUnder(mountinfo: string, dir: string): string[] {
  const base = dir.replace(/\/+$/, '');
  const found: Array<{ path: string; order: number }> = [];
  mountinfo.split('\n').forEach((line, order) => {
    const field = line.split(' ')[4];
    if (field === undefined) return;
    const path = unescapeMountPath(field);
    if (path === base || path.startsWith(`${base}/`)) found.push({ path, order });
  });
  const depth = (p: string): number => p.split('/').length;
  return found.sort((a, b) => depth(b.path) - depth(a.path) || b.order - a.order).map((m) => m.path);
}

/** Mount points at or below `dir` in this process's mount namespace, in unmount order. */
export function mountsUnder(dir: string): string[] {
  try {
    return mountPointsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), dir);
  } catch {
    return [];
  }
}

/** Unmounts everything at or below `dir` (lazily when busy). Never throws; returns what it unmounted. */
export async function unmountUnder(dir: string, runner: CommandRunner): Promise<string[]> {
  const mounts = mountsUnder(dir);
  for (const mount of mounts) {
    const r = await runner.run('umount', [mount], { allowFailure: true });
    if (r.code !== 0) await runner.run('umount', ['-l', mount], { allowFailure: true });
  }
  return mounts;
}
