import { LoomError } from '../../core/errors.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';
import { parseAddressesAndContainer } from '../dns-args.js';

export const dnsRemoveCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('dns-remove'))
      .description("remove this host's DNS records matching everything given (addresses, container, -h NAME)")
      .usage('[ADDRESS...] [CONTAINER] [-h NAME]')
      .helpOption('--help', 'display help for command')
      .argument('[args...]', 'IPv4 addresses, then optionally a container id')
      .option('-h, --hostname <name>', 'only records of this name')
      .action(async (args: string[], opts: { httpAddr?: string; hostname?: string }) => {
        const { addresses, containerId } = parseAddressesAndContainer(args);
        if (addresses.length === 0 && containerId === undefined && opts.hostname === undefined) {
          throw new LoomError('ERR_INVALID_ARGUMENT', 'say which records to remove: addresses, a container or -h NAME');
        }
        const common = { ...(opts.hostname === undefined ? {} : { name: opts.hostname }), ...(containerId === undefined ? {} : { containerId }) };
        const client = await clientFor(ctx, opts);
        if (addresses.length === 0) await client.dnsRemove(common);
        for (const address of addresses) await client.dnsRemove({ ...common, address });
      });
  },
};
