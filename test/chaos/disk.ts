/**
 * Chaos scenario "disk" (issue 12, Faults): a router whose state directory is a small tmpfs that
 * fills up, then becomes read-only under it, then is read-only when the router starts. Two lab
 * hosts; h1's state dir (LOOM_STATE_DIR, where ipam.db, the containers store, dataplane.json,
 * peer-name and loom.log live) is a tmpfs mounted before its router starts. Invariants:
 * - disk full: every `loom run` on h1 either succeeds or fails with ERR_STORAGE and a message
 *   naming the state dir and the full disk; the router stays up and keeps serving: `loom status`,
 *   DNS answers for existing names, the data path between existing containers;
 * - the log says so once, not once per failed request (error-level ERR_STORAGE lines), and tells
 *   how many log lines the full disk swallowed once it has room again;
 * - once space is freed, `loom run` works again without a restart;
 * - read-only while running: the kernel refuses `mount -o remount,ro` while the router holds files
 *   open for writing (EBUSY, recorded), so the scenario lays a read-only bind mount over the state
 *   dir in the router's mount namespace (what every new open sees); the same checks as for a full
 *   disk, the message naming the read-only file system;
 * - after a restart the state is consistent: the same containers with the same addresses, IPAM's
 *   lookups agree, SQLite's integrity_check is "ok", no temp file or unparsable JSON is left;
 * - a router started on a read-only state dir (a read-only bind mount over it: the containers'
 *   logs keep the tmpfs busy for a remount) refuses to start with ERR_STORAGE naming it (the
 *   choice: it cannot keep its pid file, peer name or log), and starts once it is writable.
 * Bounded: every wait has a deadline; the tmpfs and the containers go at the end, however it ends.
 */
import Database from 'better-sqlite3';
import { closeSync, openSync, readFileSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { ContainerPids } from '../../src/demo/containers.js';
import { pollUntil } from '../../src/demo/poll.js';
import { isAlive, type Lab, type LabHost } from '../../src/lab/index.js';
import { systemRunner } from '../../src/os/runner.js';

export interface DiskOptions {
  /** Size of h1's state-dir tmpfs. */
  tmpfsMb: number;
  /** `loom run` attempts on h1 while its disk is full, and again while it is read-only. */
  attempts: number;
  log: (line: string) => void;
}

export interface DiskPhase {
  name: string;
  /** `loom run` outcomes: 'ok' or the error line. */
  runs: string[];
  /** Error-level log lines about ERR_STORAGE written during the phase, and by component. */
  storageLogLines: number;
  storageLogComponents?: Record<string, number>;
}

export interface DiskResult {
  phases: DiskPhase[];
  remountRo: string;
  startOnReadOnly: string;
  integrity: string;
  problems: string[];
}

/** Files anywhere under `dir` (bounded depth). */
function filesUnder(dir: string, depth = 0): string[] {
  if (depth > 4) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, depth + 1));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Writes `path` until the file system says ENOSPC (bounded by `limitBytes`); returns the bytes written. */
function fill(path: string, limitBytes: number): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      while (written < limitBytes) {
        try {
          written += writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/** Addresses IPAM holds for this peer's containers (released ones in their grace period not counted). */
async function ipamAllocations(cli: LoomCli, h: LabHost): Promise<number> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { ipam?: { allocations?: unknown } };
  return typeof report.ipam?.allocations === 'number' ? report.ipam.allocations : -1;
}

export async function diskChaos(lab: Lab, cli: LoomCli, options: DiskOptions): Promise<DiskResult> {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const dir = cli.stateDir(h1);
  const filler = join(dir, 'filler');
  const problems: string[] = [];
  const phases: DiskPhase[] = [];
  const pids = new ContainerPids();
  let serial = 0;
  let mounted = false;
  let overmountIn: number | null = null;
  let rootOvermount = false;

  const sh = (cmd: string, args: string[]) => systemRunner.run(cmd, args, { allowFailure: true, timeoutMs: 15_000 });
  const logText = (): string => {
    try {
      return readFileSync(join(dir, 'loom.log'), 'utf8');
    } catch {
      return '';
    }
  };
  /** Error-level lines about ERR_STORAGE, by component (api, ipam...). */
  const storageErrorLines = (text: string): Map<string, number> => {
    const by = new Map<string, number>();
    for (const l of text.split('\n')) {
      if (!l.includes('"ERR_STORAGE"') || !l.includes('"level":50')) continue;
      const component = /"component":"([^"]+)"/.exec(l)?.[1] ?? '?';
      by.set(component, (by.get(component) ?? 0) + 1);
    }
    return by;
  };
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const track = async (h: LabHost): Promise<void> => {
    for (const c of await cli.containers(h)) pids.add(c.pid);
  };
  const run = async (h: LabHost, name: string): Promise<{ ok: boolean; text: string }> => {
    const r = await cli.run(h, ['run', '--name', name, '--', 'sleep', '3600'], { allowFailure: true, timeoutMs: 60_000 });
    await track(h).catch(() => undefined);
    return { ok: r.code === 0, text: (r.code === 0 ? r.stdout : r.stderr || r.stdout).trim().split('\n')[0] ?? '' };
  };
  /** The router is alive and serves status, DNS for an existing name, and the data path d1 -> d2. */
  const serving = async (what: string): Promise<void> => {
    const pid = cli.pid(h1);
    if (pid === null || !isAlive(pid)) {
      problems.push(`${what}: h1's router is gone`);
      return;
    }
    const status = await cli.run(h1, ['status'], { allowFailure: true, timeoutMs: 10_000 });
    if (status.code !== 0) problems.push(`${what}: loom status failed: ${status.stderr.trim().slice(0, 200)}`);
    const dns = await cli.run(h1, ['dns-lookup', 'd2'], { allowFailure: true, timeoutMs: 10_000 });
    if (dns.code !== 0 || !/\d+\.\d+\.\d+\.\d+/.test(dns.stdout)) problems.push(`${what}: loom dns-lookup d2 on h1 failed: ${(dns.stdout + dns.stderr).trim().slice(0, 200)}`);
    const ping = await cli.run(h1, ['exec', 'd1', '--', 'ping', '-c', '1', '-W', '2', d2Address], { allowFailure: true, timeoutMs: 15_000 });
    if (ping.code !== 0) problems.push(`${what}: d1 on h1 no longer reaches d2 on h2`);
  };
  /** `attempts` runs on h1 in a degraded state: each succeeds or fails with ERR_STORAGE naming the state dir and `reason`. */
  const degraded = async (name: string, reason: RegExp): Promise<void> => {
    const logBefore = logText().length;
    const runs: string[] = [];
    for (let i = 0; i < options.attempts; i++) {
      const r = await run(h1, `x${serial++}`);
      runs.push(r.ok ? 'ok' : r.text);
      if (!r.ok && !(r.text.includes('ERR_STORAGE') && r.text.includes(dir) && reason.test(r.text))) problems.push(`${name}: loom run failed without a clear storage error: ${r.text.slice(0, 300)}`);
    }
    await serving(name);
    phases.push({ name, runs, storageLogLines: 0 });
    // The log lines of this phase are counted once the disk takes them again (see below).
    phaseLogStart.set(name, logBefore);
  };
  const phaseLogStart = new Map<string, number>();
  let d2Address = '';

  try {
    await sh('mkdir', ['-p', dir]);
    const m = await sh('mount', ['-t', 'tmpfs', '-o', `size=${options.tmpfsMb}m,mode=0755`, 'loom-chaos-disk', dir]);
    if (m.code !== 0) throw new Error(`cannot mount a tmpfs on ${dir}: ${m.stderr.trim()}`);
    mounted = true;
    await cli.launch(h1);
    await cli.launch(h2, { peers: [h1.address] });
    for (const [h, name] of [[h1, 'd1'], [h2, 'd2']] as const) {
      const r = await run(h, name);
      if (!r.ok) throw new Error(`loom run ${name} failed: ${r.text}`);
    }
    d2Address = (await cli.containers(h2)).find((c) => c.name === 'd2')!.cidrs[0]!.split('/')[0]!;
    await pollUntil(async () => ((await cli.run(h1, ['exec', 'd1', '--', 'ping', '-c', '1', '-W', '1', d2Address], { allowFailure: true })).code === 0 ? true : undefined), {
      what: 'd1 -> d2',
      timeoutMs: 45_000,
      intervalMs: 300,
    });
    const before = new Map((await cli.containers(h1)).map((c) => [c.name, c.cidrs.join(',')]));

    // 1. Disk full.
    const allocationsBefore = await ipamAllocations(cli, h1);
    const filled = fill(filler, options.tmpfsMb * 2 * (1 << 20));
    options.log(`h1's state dir (${options.tmpfsMb} MB tmpfs) filled with ${(filled / (1 << 20)).toFixed(1)} MB`);
    await degraded('disk full', /disk is full/);
    const allocationsAfter = await ipamAllocations(cli, h1);
    if (allocationsAfter !== allocationsBefore) problems.push(`IPAM holds ${allocationsAfter} allocations after the failed runs on a full disk, ${allocationsBefore} before (a failed run keeps an address)`);
    unlinkSync(filler);
    const again = await run(h1, `x${serial++}`);
    if (!again.ok) problems.push(`after freeing space, loom run still fails: ${again.text}`);

    // 2. Read-only while running.
    const pid = cli.pid(h1)!;
    const remount = await sh('nsenter', ['--target', String(pid), '--mount', '--', 'mount', '-o', 'remount,ro', dir]);
    const remountRo = remount.code === 0 ? 'accepted' : `refused: ${remount.stderr.trim().split('\n')[0] ?? ''}`;
    if (remount.code === 0) overmountIn = null;
    else {
      const bind = await sh('nsenter', ['--target', String(pid), '--mount', '--', 'mount', '--bind', '-o', 'ro', dir, dir]);
      if (bind.code !== 0) throw new Error(`cannot lay a read-only bind mount over ${dir}: ${bind.stderr.trim()}`);
      overmountIn = pid;
    }
    options.log(`mount -o remount,ro of the state dir under the running router: ${remountRo}`);
    await degraded('read-only', /read-only/);
    if (overmountIn !== null) await sh('nsenter', ['--target', String(overmountIn), '--mount', '--', 'umount', dir]);
    else await sh('nsenter', ['--target', String(pid), '--mount', '--', 'mount', '-o', 'remount,rw', dir]);
    overmountIn = null;
    const again2 = await run(h1, `x${serial++}`);
    if (!again2.ok) problems.push(`after the state dir is writable again, loom run still fails: ${again2.text}`);

    // The log, now that it has room again: at most one error line per outage about ERR_STORAGE, and word of lost lines.
    const log = logText();
    for (const phase of phases) {
      const start = phaseLogStart.get(phase.name) ?? 0;
      const next = phases[phases.indexOf(phase) + 1];
      const end = next === undefined ? log.length : (phaseLogStart.get(next.name) ?? log.length);
      const lines = storageErrorLines(log.slice(start, end));
      phase.storageLogLines = total(lines);
      phase.storageLogComponents = Object.fromEntries(lines);
      const failed = phase.runs.filter((r) => r !== 'ok').length;
      for (const [component, n] of lines) if (failed > 1 && n > 1) problems.push(`${phase.name}: ${n} error lines about ERR_STORAGE from ${component} for ${failed} failed runs (once per outage expected)`);
      if (failed > 0 && lines.size === 0 && !/log lines were lost/.test(log.slice(start, end))) problems.push(`${phase.name}: ${failed} runs failed and the log says nothing about it`);
    }
    const lostNote = /log lines were lost/.test(log);
    if (!lostNote && total(storageErrorLines(log)) === 0) problems.push('the log says nothing about the full disk or the read-only state dir');

    // 3. Restart: the state is consistent.
    const expected = new Map((await cli.containers(h1)).map((c) => [c.name, c.cidrs.join(',')]));
    for (const [name, cidrs] of before) if (expected.get(name) !== cidrs) problems.push(`${name} changed from ${cidrs} to ${expected.get(name) ?? 'nothing'} during the outages`);
    await cli.stop(h1);
    const files = filesUnder(dir);
    const temps = files.filter((f) => f.endsWith('.tmp'));
    if (temps.length > 0) problems.push(`temp files left in the state dir: ${temps.join(', ')}`);
    for (const f of files.filter((p) => p.endsWith('.json'))) {
      try {
        JSON.parse(readFileSync(f, 'utf8'));
      } catch {
        problems.push(`${f} is not JSON (size ${statSync(f).size})`);
      }
    }
    const db = new Database(join(dir, 'ipam.db'));
    let integrity: string;
    try {
      integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
    } finally {
      db.close();
    }
    if (integrity !== 'ok') problems.push(`ipam.db integrity_check: ${integrity}`);
    await cli.launch(h1);
    const after = new Map((await cli.containers(h1)).map((c) => [c.name, c.cidrs.join(',')]));
    for (const [name, cidrs] of expected) if (after.get(name) !== cidrs) problems.push(`after the restart ${name} has ${after.get(name) ?? 'no record'}, before ${cidrs}`);
    for (const name of after.keys()) if (!expected.has(name)) problems.push(`after the restart an unknown container ${name} appeared`);
    for (const c of await cli.containers(h1)) {
      const url = `http://127.0.0.1:6784/ipam/lookup?containerId=${encodeURIComponent(c.id)}`;
      const out = await lab.exec(h1, process.execPath, ['-e', `fetch(${JSON.stringify(url)}).then(r=>r.text()).then(t=>process.stdout.write(t))`], { timeoutMs: 10_000 });
      const cidrs = ((JSON.parse(out.stdout) as { cidrs?: string[] }).cidrs ?? []).join(',');
      if (cidrs !== c.cidrs.join(',')) problems.push(`after the restart IPAM gives ${c.name} ${cidrs || 'nothing'}, its record ${c.cidrs.join(',')}`);
    }
    await serving('after the restart');

    // 4. Start on a read-only state dir.
    await cli.stop(h1);
    // The containers' logs stay open for writing on the tmpfs, so a remount,ro is refused here too:
    // a read-only bind mount over the dir (before the launch copies the mount table) does it.
    const ro = await sh('mount', ['--bind', '-o', 'ro', dir, dir]);
    if (ro.code !== 0) throw new Error(`cannot lay a read-only bind mount over ${dir}: ${ro.stderr.trim()}`);
    rootOvermount = true;
    const start = await cli.run(h1, ['launch', '--state-dir', dir, '--nickname', h1.name], { allowFailure: true, timeoutMs: 30_000 });
    const startOnReadOnly = start.code === 0 ? 'started' : `refused: ${start.stderr.trim().split('\n')[0] ?? ''}`;
    if (start.code === 0) {
      const p = cli.pid(h1);
      if (p !== null) lab.track(p);
      problems.push('a router started on a read-only state dir (expected a clear refusal)');
    } else if (!/ERR_STORAGE/.test(start.stderr) || !start.stderr.includes(dir) || !/read-only/.test(start.stderr)) {
      problems.push(`a start on a read-only state dir failed without a clear storage error: ${start.stderr.trim().slice(0, 300)}`);
    }
    await sh('umount', [dir]);
    rootOvermount = false;
    if (start.code !== 0) await cli.launch(h1);
    const final = new Map((await cli.containers(h1)).map((c) => [c.name, c.cidrs.join(',')]));
    for (const [name, cidrs] of expected) if (final.get(name) !== cidrs) problems.push(`after the read-only start ${name} has ${final.get(name) ?? 'no record'}, before ${cidrs}`);

    options.log(
      `${phases.map((p) => `${p.name}: runs ${p.runs.map((r) => (r === 'ok' ? 'ok' : r.replace(/^.*(ERR_[A-Z_]+).*$/, '$1'))).join(', ')}, ${p.storageLogLines} error-level ERR_STORAGE log line(s) ${JSON.stringify(p.storageLogComponents ?? {})}`).join('; ')}; ` +
        `log tells of lost lines: ${lostNote}; after restart: ${after.size} containers as before, ipam.db integrity_check ${integrity}, ${temps.length} temp files; start on a read-only dir: ${startOnReadOnly}`,
    );
    if (phases[0]) options.log(`disk-full error as the user sees it: ${phases[0].runs.find((r) => r !== 'ok') ?? '(every run succeeded)'}`);
    if (phases[1]) options.log(`read-only error as the user sees it: ${phases[1].runs.find((r) => r !== 'ok') ?? '(every run succeeded)'}`);
    return { phases, remountRo, startOnReadOnly, integrity, problems };
  } catch (err) {
    options.log(`h1's loom.log, last lines:\n${cli.logTail(h1, 30)}`);
    throw err;
  } finally {
    pids.killAll();
    if (overmountIn !== null) await sh('nsenter', ['--target', String(overmountIn), '--mount', '--', 'umount', dir]);
    if (rootOvermount) await sh('umount', [dir]);
    if (mounted) {
      // The routers hold the mount in their namespaces; the lab stops them, this removes ours.
      try {
        unlinkSync(filler);
      } catch {
        // freed already
      }
      const u = await sh('umount', [dir]);
      if (u.code !== 0) await sh('umount', ['-l', dir]);
    }
  }
}
