/**
 * The demo's containers: the router's container list (GET /containers, untrusted JSON parsed with
 * the route's response schema, src/containers/api.ts) and the PIDs of every container the demo has seen. Containers live in network namespaces
 * of their own, where the lab's process sweep does not look, so the demo kills them itself, by
 * PID, before the lab goes. A PID is killed only while its start time is the one recorded, so a
 * reused PID is never hit.
 */
import { readdirSync } from 'node:fs';
import { CONTAINER_ROUTES, type ContainerRowJson } from '../containers/api.js';
import { LoomError } from '../core/errors.js';
import { hasLabMarker, isAlive, processStartTime, signal } from '../lab/index.js';

export type DemoContainer = ContainerRowJson;

export function parseContainerList(text: string): DemoContainer[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new LoomError('ERR_PROTOCOL', 'the container list is not JSON', { cause: err, detail: { text: text.slice(0, 200) } });
  }
  const parsed = CONTAINER_ROUTES.list.response.safeParse(json);
  if (!parsed.success) throw new LoomError('ERR_PROTOCOL', `the container list has an unexpected shape: ${parsed.error.message.slice(0, 300)}`);
  return parsed.data.containers;
}

/** The container's first address without its prefix length ("10.32.0.1"), or ERR_NOT_FOUND. */
export function addressOf(c: DemoContainer): string {
  const cidr = c.cidrs[0];
  if (cidr === undefined) throw new LoomError('ERR_NOT_FOUND', `container ${c.name} has no address`);
  return cidr.split('/')[0]!;
}

export class ContainerPids {
  private readonly seen = new Map<number, number | null>();

  /** Remembers a container's PID (idempotent). */
  add(pid: number): void {
    if (!Number.isInteger(pid) || pid <= 1 || this.seen.has(pid)) return;
    this.seen.set(pid, processStartTime(pid));
  }

  get pids(): number[] {
    return [...this.seen.keys()];
  }

  /** The remembered PIDs that still run the same process. */
  alive(): number[] {
    return this.pids.filter((pid) => isAlive(pid) && (this.seen.get(pid) ?? null) === processStartTime(pid));
  }

  /** SIGKILL to every remembered container still alive. Synchronous, so it also works in an 'exit' hook. */
  killAll(): number[] {
    const victims = this.alive();
    signal(victims, 'SIGKILL');
    return victims;
  }
}

/**
 * Every process in any namespace that carries the lab's marker (LOOM_LAB=<prefix>): the routers
 * hand it down to their containers, so this finds containers a user started in a kept lab too.
 */
export function markedProcesses(prefix: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid !== process.pid && hasLabMarker(pid, prefix) && isAlive(pid)) pids.push(pid);
  }
  return pids;
}
