import { LoomError } from '../../core/errors.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

const STOP_WAIT_MS = 10_000;

/**
 * `loom reset`, like `weave reset`: hand this peer's address space to a live peer, stop the
 * router, and remove its state (IPAM database and peer name, removed by the daemon as it stops),
 * so the next launch is a new peer. Refused while containers hold addresses, unless --force
 * (their records stay, for `loom rm`).
 */
export const resetCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('reset'))
      .description('leave the network for good: give this peer\'s address space to a live peer, stop the router, remove its IPAM state and peer name')
      .option('--force', 'even while containers hold addresses')
      .action(async (opts: { httpAddr?: string; force?: boolean }) => {
        const client = await clientFor(ctx, opts);
        const result = await client.ipam.reset(opts.force ? { force: true } : {});
        ctx.out(result.heir === null ? 'no address space to hand over\n' : `${result.moved} IPs handed to ${result.heir}\n`);
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
