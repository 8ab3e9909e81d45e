import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

export const forgetCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('forget'))
      .description('stop connecting to peers (established connections stay)')
      .argument('<peers...>', 'host[:port]')
      .action(async (peers: string[], opts: { httpAddr?: string }) => {
        const { parsePeerTarget } = await import('../../api/validate.js');
        await (await clientFor(ctx, opts)).forget(peers.map(parsePeerTarget));
      });
  },
};
