/**
 * The data plane on Linux, in the calling process's network namespace (the router's): a bridge,
 * one vxlan device enslaved to it, the vxlan FDB, and in tap mode the relay's tap as a second
 * port with the bridge's static entries pinning remote MACs to the two. `apply(desired)` is declarative and
 * idempotent: it reads the kernel state, plans, and runs only the missing steps, so it may be
 * called again and again (after a crash half-way, too). Nothing here touches containers' veths.
 */
import type { Logger } from '../../core/logger.js';
import type { CommandRunner } from '../../os/runner.js';
import { getVxlanLocalBypass, setVxlanLocalBypass } from '../../os/netlink.js';
import { parseBridgeFdb, parseFdb, parseLinks } from '../parse.js';
import { plan, planTeardown } from '../plan.js';
import type { BridgeFdbEntry, CurrentDataplane, DataplaneOp, DesiredDataplane } from '../types.js';
import { commandFor } from './commands.js';

/** The part of rtnetlink the data plane needs; tests pass a fake. */
export interface VxlanNetlink {
  getLocalBypass(name: string): boolean | null;
  setLocalBypass(name: string, enabled: boolean): void;
}

export const kernelVxlanNetlink: VxlanNetlink = { getLocalBypass: getVxlanLocalBypass, setLocalBypass: setVxlanLocalBypass };

export interface LinuxDataplaneComponents {
  runner: CommandRunner;
  logger: Logger;
  /** Default: the real kernel over koffi. */
  netlink?: VxlanNetlink;
}

export interface DataplaneNames {
  bridge: string;
  vxlan: string;
  /** The relay's tap (tap mode): its link and the bridge's static entries are read too. */
  tap?: string;
}

export class LinuxDataplane {
  private readonly runner: CommandRunner;
  private readonly logger: Logger;
  private readonly netlink: VxlanNetlink;
  private warnedNoBypass = false;

  constructor(components: LinuxDataplaneComponents) {
    this.runner = components.runner;
    this.logger = components.logger;
    this.netlink = components.netlink ?? kernelVxlanNetlink;
  }

  /** What exists now of the bridge, vxlan device and tap named in `names`. */
  async readCurrent(names: DataplaneNames): Promise<CurrentDataplane> {
    const linksOut = await this.runner.run('ip', ['-j', '-d', 'link', 'show']);
    const links = parseLinks(linksOut.stdout, new Set([names.bridge, names.vxlan, ...(names.tap === undefined ? [] : [names.tap])]));
    const bridgeFdb = names.tap !== undefined && links.get(names.bridge)?.kind === 'bridge' ? await this.readBridgeFdb(names.bridge, new Set([names.vxlan, names.tap])) : [];
    const vxlan = links.get(names.vxlan);
    if (!vxlan || vxlan.kind !== 'vxlan') return { links, fdb: [], bridgeFdb };
    if (vxlan.vxlan && vxlan.vxlan.localBypass === null) vxlan.vxlan.localBypass = this.netlink.getLocalBypass(names.vxlan);
    const fdbOut = await this.runner.run('bridge', ['-j', 'fdb', 'show', 'dev', names.vxlan]);
    return { links, fdb: parseFdb(fdbOut.stdout), bridgeFdb };
  }

  private async readBridgeFdb(bridge: string, ports: ReadonlySet<string>): Promise<BridgeFdbEntry[]> {
    const out = await this.runner.run('bridge', ['-j', 'fdb', 'show', 'br', bridge]);
    return parseBridgeFdb(out.stdout, ports);
  }

  /** Brings the kernel to `desired` (already validated). Returns the ops it ran; [] when nothing changed. */
  async apply(desired: DesiredDataplane): Promise<DataplaneOp[]> {
    const current = await this.readCurrent({ bridge: desired.bridge.name, vxlan: desired.vxlan.name, ...(desired.tap ? { tap: desired.tap.name } : {}) });
    const ops = plan(current, desired);
    await this.execute(ops);
    if (ops.length > 0) this.logger.info({ ops: ops.length, peers: desired.peers.length, remoteMacs: desired.remoteMacs.length }, 'dataplane applied');
    // Only the port mode sends to the relay at 127.0.0.1 through the vxlan device.
    if (!this.warnedNoBypass && desired.tap === null && current.links.get(desired.vxlan.name)?.vxlan?.localBypass === null) {
      this.warnedNoBypass = true;
      this.logger.warn({ dev: desired.vxlan.name }, 'kernel does not report vxlan local bypass (< 6.6): the user-space relay path will not work');
    }
    return ops;
  }

  /** Removes the vxlan device and the bridge (not the tap: the relay's). Idempotent. */
  async teardown(names: DataplaneNames): Promise<DataplaneOp[]> {
    const ops = planTeardown(await this.readCurrent(names), names);
    await this.execute(ops);
    return ops;
  }

  private async execute(ops: readonly DataplaneOp[]): Promise<void> {
    for (const op of ops) {
      const command = commandFor(op);
      if (command.kind === 'netlink-local-bypass') this.netlink.setLocalBypass(command.name, command.enabled);
      else await this.runner.run(command.cmd, command.args);
      this.logger.debug({ op }, 'dataplane op');
    }
  }
}
