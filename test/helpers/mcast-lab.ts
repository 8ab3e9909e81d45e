/**
 * Container plumbing shared by the broadcast/multicast and mobility e2e tests (the style of
 * test/e2e/dataplane-mesh.test.ts): start containers with `bin/loom run`, list them through the
 * API, wait until every host has programmed the others' MACs, and kill every container the run
 * started (by PID) however the test ends.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { labSkipReason, withLab } from './lab.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import type { ContainerList } from '../../src/containers/routes.js';
import type { DataplaneStatus } from '../../src/dataplane/controller/controller.js';

export const CONVERGE_MS = 45_000;

const binDirs = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];
const missingTools = ['ping', 'unshare', 'nsenter'].filter((c) => !binDirs.some((d) => existsSync(`${d}/${c}`)));
/** Why these e2e tests cannot run here, or false. */
export const containerLabSkip: string | false = labSkipReason() ?? (missingTools.length > 0 ? `missing ${missingTools.join(', ')}` : false);

const here = dirname(fileURLToPath(import.meta.url));
const isTs = import.meta.url.endsWith('.ts');
/**
 * `node` arguments that run test/helpers/mcast-agent (compiled, or through tsx from the sources).
 * tsx is given as a URL: inside a container the working directory is not the checkout.
 */
export const mcastAgentArgv: readonly string[] = [...(isTs ? ['--import', import.meta.resolve('tsx')] : []), join(here, `mcast-agent.${isTs ? 'ts' : 'js'}`)];

export interface Box {
  host: LabHost;
  name: string;
  ip: string;
}

/**
 * Runs `body` in a fresh lab of `hosts` hosts with a Loom router launched on each (h2 -> h1,
 * h3 -> h2, ...; discovery completes the mesh), converged over fastdp. Containers started through
 * the returned `ContainerTracker` are killed by PID when the test ends, also on process exit.
 */
export async function withRouters(
  t: TestContext,
  options: { hosts: number; subnet: string },
  body: (lab: Lab, cli: LoomCli, containers: ContainerTracker) => Promise<void>,
): Promise<void> {
  const tracker = new ContainerTracker();
  const onExit = () => tracker.killAll();
  process.on('exit', onExit);
  try {
    await withLab(t, options, async (lab, cli) => {
      tracker.cli = cli;
      let previous: LabHost | undefined;
      for (const h of lab.hosts) {
        await cli.launch(h, previous ? { peers: [previous.address] } : {});
        previous = h;
      }
      await tracker.waitProgrammed(lab, () => 0);
      await body(lab, cli, tracker);
      for (const h of lab.hosts) {
        const names = (await tracker.list(h)).containers.map((c) => c.name);
        if (names.length > 0) await cli.run(h, ['rm', ...names]);
      }
    });
  } finally {
    tracker.killAll();
    process.off('exit', onExit);
  }
}

export class ContainerTracker {
  /** Set by withRouters before the body runs. */
  cli: LoomCli | undefined;
  /** Containers live in PID namespaces the lab's process sweep does not search: we kill them. */
  private readonly pids = new Set<number>();

  private get loom(): LoomCli {
    if (!this.cli) throw new Error('ContainerTracker used outside withRouters');
    return this.cli;
  }

  killAll(): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL'); // unshare --kill-child then exits too
      } catch {
        // already gone
      }
    }
  }

  /** The daemon's container list (API JSON; `loom ps` is for people). Records the PIDs seen. */
  async list(h: LabHost): Promise<ContainerList> {
    const out = await this.loom.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
    const list = JSON.parse(out.stdout) as ContainerList;
    for (const c of list.containers) this.pids.add(c.pid);
    return list;
  }

  /** `loom run --name NAME IP/PREFIX -- CMD...` in the box's host. */
  async run(box: Box, prefix: number, cmd: string[]): Promise<void> {
    await this.loom.run(box.host, ['run', '--name', box.name, `${box.ip}/${prefix}`, '--', ...cmd]);
    await this.list(box.host);
  }

  /** Waits until every host programs all others via fastdp, with `remoteMacs(host)` remote MACs in total. */
  async waitProgrammed(lab: Lab, remoteMacs: (h: LabHost) => number): Promise<void> {
    await pollUntil(
      async () => {
        for (const h of lab.hosts) {
          const dp = await dataplaneOf(this.loom, h);
          if (dp.lastError !== null || dp.peers.length !== lab.hosts.length - 1) return undefined;
          if (!dp.peers.every((p) => p.path === 'fastdp' && p.reason === undefined)) return undefined;
          if (dp.peers.reduce((sum, p) => sum + p.macs, 0) !== remoteMacs(h)) return undefined;
        }
        return true;
      },
      { what: 'every host programs the others and their MACs', timeoutMs: CONVERGE_MS, intervalMs: 300 },
    );
  }
}

async function dataplaneOf(cli: LoomCli, h: LabHost): Promise<DataplaneStatus> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dataplane?: DataplaneStatus };
  if (!report.dataplane) throw new Error(`no dataplane section on ${h.name}`);
  return report.dataplane;
}
