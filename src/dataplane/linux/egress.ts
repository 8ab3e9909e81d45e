/**
 * Egress on Linux, in the calling process's network namespace (the router's): forwarding on, and
 * Loom's nftables table (see ../egress.ts) brought to what the spec wants. `apply(spec)` reads the
 * table, plans and runs only the missing steps, so it is safe to call again and again (a router
 * restart, a crash half-way). `remove()` deletes the table; nothing else touches it.
 */
import { LoomError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { CommandRunner } from '../../os/runner.js';
import { EGRESS_FAMILY, EGRESS_TABLE, egressCommand, parseEgressTable, planEgress, type CurrentEgress, type EgressOp, type EgressSpec } from '../egress.js';

/** `nft list table` of a missing table exits 1 with this on stderr. */
const NO_TABLE_RE = /No such file or directory/;

export interface LinuxEgressComponents {
  runner: CommandRunner;
  logger: Logger;
}

export class LinuxEgress {
  private readonly runner: CommandRunner;
  private readonly logger: Logger;

  constructor(components: LinuxEgressComponents) {
    this.runner = components.runner;
    this.logger = components.logger;
  }

  /** Loom's table as the kernel has it, or null when there is none. ERR_OS_COMMAND when nft fails otherwise. */
  async readCurrent(): Promise<CurrentEgress | null> {
    const out = await this.runner.run('nft', ['-j', 'list', 'table', EGRESS_FAMILY, EGRESS_TABLE], { allowFailure: true });
    if (out.code === 0) return parseEgressTable(out.stdout);
    if (NO_TABLE_RE.test(out.stderr)) return null;
    throw new LoomError('ERR_OS_COMMAND', `nft list table ${EGRESS_FAMILY} ${EGRESS_TABLE} failed (exit ${out.code}): ${out.stderr.trim().slice(0, 300)}`);
  }

  /**
   * Forwarding on (net.ipv4.ip_forward, this namespace only; left on by `remove`, like any
   * router would), then the table as `spec` says. Returns the table ops it ran; [] when nothing changed.
   */
  async apply(spec: EgressSpec): Promise<EgressOp[]> {
    await this.runner.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    const ops = planEgress(await this.readCurrent(), spec);
    await this.execute(ops);
    if (ops.length > 0) this.logger.info({ ops: ops.length, range: spec.range, masquerade: spec.masquerade }, 'egress applied');
    return ops;
  }

  /** Deletes Loom's table if it exists. Idempotent. */
  async remove(): Promise<EgressOp[]> {
    const ops: EgressOp[] = (await this.readCurrent()) ? [{ op: 'delete-table', reason: 'removed' }] : [];
    await this.execute(ops);
    return ops;
  }

  private async execute(ops: readonly EgressOp[]): Promise<void> {
    for (const op of ops) {
      await this.runner.run('nft', egressCommand(op));
      this.logger.debug({ op }, 'egress op');
    }
  }
}
