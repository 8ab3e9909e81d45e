import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

export const exposeCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('expose'))
      .description('give this host an address on the Loom network (on the loom bridge); prints it')
      .argument('[address]', "a.b.c.d/n (static), net:a.b.c.d/n or net:default; none = the host's own address")
      .action(async (address: string | undefined, opts: { httpAddr?: string }) => {
        const r = await (await clientFor(ctx, opts)).hostAddress.expose(address === undefined ? {} : { address });
        ctx.out(`${r.cidr}\n`);
      });
  },
};

export const hideCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('hide'))
      .description('remove an extra address given to this host by `loom expose` (and release it)')
      .argument('<cidr>', 'the exposed address, a.b.c.d/n')
      .action(async (cidr: string, opts: { httpAddr?: string }) => {
        const r = await (await clientFor(ctx, opts)).hostAddress.hide({ cidr });
        ctx.out(`${r.cidr}\n`);
      });
  },
};
