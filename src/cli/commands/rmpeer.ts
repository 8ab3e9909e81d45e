import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

/** `loom rmpeer NAME|NICKNAME...`: take over the address space of peers that are gone for good. */
export const rmpeerCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('rmpeer'))
      .description('take over the address space of peers that are gone for good (name them all at once); prints the addresses moved')
      .argument('<peers...>', 'peer names or nicknames')
      .option('--force', 'even while other owners of space are unreachable (risk: two heirs in two partitions)')
      .action(async (peers: string[], opts: { httpAddr?: string; force?: boolean }) => {
        const result = await (await clientFor(ctx, opts)).ipam.rmpeer({ peers, ...(opts.force ? { force: true } : {}) });
        ctx.out(`${result.moved} IPs taken over by ${result.heir} from ${result.removed.join(', ')}\n`);
      });
  },
};
