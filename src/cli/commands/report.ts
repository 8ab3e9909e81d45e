import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

export const reportCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('report'))
      .description('everything the router knows, as JSON')
      .action(async (opts: { httpAddr?: string }) => {
        ctx.out(JSON.stringify(await (await clientFor(ctx, opts)).report(), null, 2) + '\n');
      });
  },
};
