import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

export const connectCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('connect'))
      .description('add peers to connect to')
      .argument('<peers...>', 'host[:port]')
      .option('--replace', 'forget every other target')
      .action(async (peers: string[], opts: { httpAddr?: string; replace?: boolean }) => {
        const { parsePeerTarget } = await import('../../api/validate.js');
        await (await clientFor(ctx, opts)).connect(peers.map(parsePeerTarget), opts.replace ?? false);
      });
  },
};
