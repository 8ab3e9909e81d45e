/**
 * Helpers for end-to-end tests in network namespaces: whether the lab can run here, and a lab
 * per test that is always torn down, with the routers' logs shown when the test fails and a
 * check that none of the run's namespaces outlive it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { Lab, type LabOptions, cleanupStale, parseNetnsList, labProcesses } from '../../src/lab/index.js';
import { systemRunner } from '../../src/os/runner.js';
import { LoomCli } from '../../src/demo/loom-cli.js';

/** Why lab tests cannot run here, or null when they can. Cached: the answer does not change. */
let skipReason: string | null | undefined;
export function labSkipReason(): string | null {
  if (skipReason !== undefined) return skipReason;
  if (process.getuid?.() !== 0) skipReason = 'needs root (network namespaces)';
  else if (spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status !== 0) skipReason = '`ip netns` is not available (install iproute2)';
  else if (spawnSync('nft', ['--version'], { stdio: 'ignore' }).status !== 0) skipReason = '`nft` is not available (bash scripts/install.sh)';
  else skipReason = null;
  return skipReason;
}

const BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/** Why a lab test that also runs these commands cannot run here (labSkipReason, or the missing ones), or false. */
export function labSkipFor(tools: readonly string[]): string | false {
  const missing = tools.filter((c) => !BIN_DIRS.some((d) => existsSync(`${d}/${c}`)));
  return labSkipReason() ?? (missing.length > 0 ? `missing ${missing.join(', ')}` : false);
}

let staleCleaned = false;

/**
 * Runs `body` with a fresh lab and a CLI driver. Always destroys the lab; on failure prints each
 * host's loom.log tail as test diagnostics; after a passing body asserts that `ip netns list`
 * holds none of the lab's namespaces.
 */
export async function withLab(
  t: TestContext,
  options: Omit<LabOptions, 'runner'>,
  body: (lab: Lab, cli: LoomCli) => Promise<void>,
): Promise<void> {
  if (!staleCleaned) {
    staleCleaned = true;
    await cleanupStale();
  }
  const lab = await Lab.create(options);
  const cli = new LoomCli(lab);
  let passed = false;
  try {
    await body(lab, cli);
    passed = true;
  } catch (err) {
    for (const h of lab.hosts) {
      const tail = cli.logTail(h, 30);
      if (tail) t.diagnostic(`--- ${h.name} (${h.address}) loom.log ---\n${tail}`);
    }
    throw err;
  } finally {
    await lab.destroy();
  }
  if (passed) {
    const left = parseNetnsList((await systemRunner.run('ip', ['netns', 'list'])).stdout).filter((ns) => ns.startsWith(`${lab.prefix}-`));
    assert.deepEqual(left, [], 'the lab left namespaces behind');
    assert.deepEqual(labProcesses(lab.prefix, []), [], 'the lab left processes behind (containers included)');
  }
}

/**
 * SIGKILLs each PID (a test's container processes: they live in namespaces of their own, where the
 * lab's process sweep may not look); one already gone is skipped. For a test's exit handler too.
 */
export function killPids(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL'); // `unshare --kill-child` then exits too
    } catch {
      // already gone
    }
  }
}
