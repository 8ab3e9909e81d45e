import { containersFor, withHttpAddr, type CliCommand } from '../command.js';

export const rmCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('rm'))
      .description('stop and remove containers')
      .argument('<containers...>', 'ids or names')
      .action(async (containers: string[], opts: { httpAddr?: string }) => {
        const client = await containersFor(ctx, opts);
        for (const id of containers) ctx.out(`${(await client.remove({ id })).id}\n`);
      });
  },
};
