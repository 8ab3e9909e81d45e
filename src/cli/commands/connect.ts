import { parsePeerTarget } from '../../api/validate.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

export const connectCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('connect'))
      .description('add peers to connect to')
      .argument('<peers...>', 'host[:port]')
      .option('--replace', 'forget every other target')
      .action(async (peers: string[], opts: { httpAddr?: string; replace?: boolean }) => {
        await clientFor(ctx, opts).connect(peers.map(parsePeerTarget), opts.replace ?? false);
      });
  },
};
