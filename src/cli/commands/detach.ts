import type { ContainerRecord } from '../../containers/types.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

export const detachCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('detach'))
      .description('take a container off the Loom network (all addresses, or one); it keeps running')
      .argument('<container>', 'id or name')
      .argument('[cidr]', 'only this address')
      .action(async (container: string, cidr: string | undefined, opts: { httpAddr?: string }) => {
        const r = await clientFor(ctx, opts).call<ContainerRecord>('POST', '/containers/detach', { id: container, ...(cidr === undefined ? {} : { cidr }) });
        ctx.out(`${r.id}\n`);
      });
  },
};
