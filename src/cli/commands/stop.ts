import { LoomError } from '../../core/errors.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

const STOP_WAIT_MS = 10_000;

export const stopCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('stop'))
      .description('stop the router; returns once its API is gone')
      .action(async (opts: { httpAddr?: string }) => {
        const client = await clientFor(ctx, opts);
        await client.stop();
        const deadline = Date.now() + STOP_WAIT_MS;
        for (let i = 0; i < 500 && Date.now() < deadline; i++) {
          if (!(await client.healthy())) return;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        throw new LoomError('ERR_TIMEOUT', `the router accepted the stop but still answers after ${STOP_WAIT_MS / 1000} s`);
      });
  },
};
