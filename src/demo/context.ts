/**
 * What every demo step shares: the lab, the CLI driver, the narration, and the result the steps
 * fill in as they prove things (returned by runDemo, so a test can assert on facts as well as on
 * the printed lines).
 */
import type { CommandResult } from '../os/runner.js';
import type { Lab, LabHost } from '../lab/index.js';
import type { LoomCli } from './loom-cli.js';
import { addressOf, type ContainerPids, type DemoContainer } from './containers.js';
import { LoomError } from '../core/errors.js';

export interface DemoResult {
  /** The lab's namespace prefix (`lm<6 hex>`). */
  prefix: string;
  converged: boolean;
  /** Container-to-container pings by address across the mesh. */
  pings: { ok: number; total: number };
  /** With UDP blocked between h1 and h3: how h1 reaches h3 (the peer name it relays through). */
  relay: { via: string | null; viaHost: string | null; switchMs: number | null; pingsOk: number; pingsTotal: number };
  /**
   * service2's address on h2, then after the move to h3, as service1 resolved it by name; and how
   * many of service1's pings in between got no answer.
   */
  service2: { before: string | null; after: string | null; roundsWithoutReply: number };
  /** Every container PID and router PID the demo started. */
  containerPids: number[];
  routerPids: number[];
  kept: boolean;
}

export interface DemoContext {
  lab: Lab;
  cli: LoomCli;
  /** The hosts that run a router (h1..h3). */
  routers: LabHost[];
  /** The host of the upstream DNS server (no router). */
  dnsHost: LabHost;
  say: (line: string) => void;
  /** Host name -> the peer name of its router. */
  peerNames: Map<string, string>;
  containers: ContainerPids;
  result: DemoResult;
  convergeTimeoutMs: number;
}

export interface DemoStep {
  title: string;
  run(ctx: DemoContext): Promise<void>;
}

export function indent(text: string, by = '    '): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `${by}${l}`)
    .join('\n');
}

/** Prints `h1$ loom ARGS` and then what it printed, as a person at that host would see it. */
export async function showLoom(ctx: DemoContext, host: LabHost, args: readonly string[], options: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<CommandResult> {
  ctx.say(`  ${host.name}$ loom ${args.join(' ')}`);
  const r = await ctx.cli.run(host, args, options);
  const out = (r.stdout + r.stderr).trimEnd();
  if (out) ctx.say(indent(out));
  return r;
}

/** The host's peer name, or the name itself when it is none of ours. */
export function hostOfPeer(ctx: DemoContext, peer: string): string | undefined {
  for (const [host, name] of ctx.peerNames) if (name === peer) return host;
  return undefined;
}

/** The host's containers (remembering their PIDs for teardown). */
export async function containersOn(ctx: DemoContext, host: LabHost): Promise<DemoContainer[]> {
  const list = await ctx.cli.containers(host);
  for (const c of list) ctx.containers.add(c.pid);
  return list;
}

/** The running container `name` on `host`, with its address, or ERR_NOT_FOUND. */
export async function containerNamed(ctx: DemoContext, host: LabHost, name: string): Promise<DemoContainer & { ip: string }> {
  const c = (await containersOn(ctx, host)).find((x) => x.name === name && x.alive);
  if (!c) throw new LoomError('ERR_NOT_FOUND', `no running container ${name} on ${host.name}`);
  return { ...c, ip: addressOf(c) };
}
