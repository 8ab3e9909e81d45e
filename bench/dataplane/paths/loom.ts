/**
 * Loom's own rows: real routers (`bin/loom launch` in each lab host, each with its own state dir,
 * h2 -> h1) and the bench's container namespaces plugged in with `loom attach`, so the routers
 * program bridge, vxlan device and FDB exactly as in production. The three rows differ only in
 * launch flags: the default (kernel VXLAN fast path), `--no-fastdp` (every peer through the
 * user-space relay, plain) and `--password` (an encrypted mesh: every peer through the sealed relay).
 * The MTU is the product's default for the row (never fitted to the underlay by hand: finding the
 * path MTU is the router's job), read back from the container. Targets: ../conditions.ts.
 */
import { randomBytes } from 'node:crypto';
import { LoomError } from '../../../src/core/errors.js';
import { LoomCli } from '../../../src/demo/loom-cli.js';
import type { DataPath, PathContext, PathSession } from '../types.js';
import { L2_SUBNET_PREFIX, l2Address } from './addressing.js';

/** A container MTU whose frames (plus VXLAN) stay under the relay's 9216-byte maxPayloadBytes. */
const JUMBO_MTU = 8900;

interface LoomFlavour {
  /** Extra `loom launch` flags. */
  args: string[];
  encrypted: boolean;
}

/** The routers start detached; the harness counts their CPU and the lab's teardown stops them by PID. */
async function setupLoom(ctx: PathContext, flavour: LoomFlavour): Promise<PathSession> {
  const [h1, h2] = ctx.hosts;
  const cli = new LoomCli(ctx.lab);
  const password = flavour.encrypted ? randomBytes(18).toString('base64url') : undefined;
  const launch = { args: flavour.args, ...(password === undefined ? {} : { password }) };
  const r1 = await cli.launch(h1, launch);
  const r2 = await cli.launch(h2, { ...launch, peers: [h1.address] });
  const containers: string[] = [];
  for (const [host, n] of [[h1, 1], [h2, 2]] as const) {
    const ns = await ctx.addNetns(`c${n}`);
    await cli.run(host, ['attach', `${l2Address(n)}/${L2_SUBNET_PREFIX}`, `/run/netns/${ns}`]);
    containers.push(ns);
  }
  const [c1, c2] = containers as [string, string];
  try {
    await ctx.waitForPing(c1, l2Address(2), 30_000);
  } catch (err) {
    throw new LoomError('ERR_TIMEOUT', `containers cannot ping across Loom: ${(await cli.status(h1, 'connections').catch(() => '')).trim().slice(0, 400)}`, { cause: err });
  }
  return {
    clientNs: c1,
    serverNs: c2,
    serverIp: l2Address(2),
    pids: [r1.pid, r2.pid],
    mtu: await containerMtu(ctx, c1),
    async teardown() {
      for (const h of [h2, h1]) await cli.stop(h).catch(() => undefined);
    },
  };
}

/** The MTU of the container's one non-loopback interface (what `loom attach` configured). */
async function containerMtu(ctx: PathContext, ns: string): Promise<number> {
  const links = JSON.parse((await ctx.exec(ns, 'ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname?: string; mtu?: number }>;
  const mtu = links.find((l) => l.ifname !== 'lo')?.mtu;
  if (typeof mtu !== 'number') throw new LoomError('ERR_NOT_FOUND', `no container interface in ${ns}`);
  return mtu;
}

export const loomPaths: DataPath[] = [
  {
    id: 'loom-fast',
    label: 'Loom fast path (kernel VXLAN, FDB by the router)',
    group: 'loom',
    encrypted: false,
    requires: ['bridge'],
    setup: (ctx) => setupLoom(ctx, { args: [], encrypted: false }),
  },
  {
    id: 'loom-relay',
    label: 'Loom relay, plain (TAP with TSO, Node relays)',
    group: 'loom',
    encrypted: false,
    requires: ['bridge'],
    setup: (ctx) => setupLoom(ctx, { args: ['--no-fastdp'], encrypted: false }),
  },
  {
    id: 'loom-relay-enc',
    label: 'Loom relay, encrypted (--password)',
    group: 'loom',
    encrypted: true,
    requires: ['bridge'],
    setup: (ctx) => setupLoom(ctx, { args: [], encrypted: true }),
  },
  {
    // Not a default: what an all-relay mesh gains from jumbo container frames when its underlay
    // passes IP fragments (docs/DATAPLANE.md, "Relay performance"). Informative, no target;
    // only with --only.
    id: 'loom-relay-enc-jumbo',
    label: `Loom relay, encrypted, --mtu ${JUMBO_MTU} (tuning)`,
    group: 'loom',
    encrypted: true,
    requires: ['bridge'],
    optIn: true,
    setup: (ctx) => setupLoom(ctx, { args: ['--mtu', String(JUMBO_MTU)], encrypted: true }),
  },
];
