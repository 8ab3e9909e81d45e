import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

export const dnsLookupCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('dns-lookup'))
      .description('addresses of a container name across the mesh, one per line (exit 1 if none)')
      .argument('<name>', '"web" or "web.loom.local"')
      .action(async (name: string, opts: { httpAddr?: string }) => {
        const result = await (await clientFor(ctx, opts)).dnsLookup(name);
        ctx.out(result.addresses.map((a) => a + '\n').join(''));
      });
  },
};
