import { LoomError } from '../../core/errors.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';
import { parseAddressesAndContainer } from '../dns-args.js';

export const dnsAddCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('dns-add'))
      .description('add DNS records for this host: NAME -> each ADDRESS (for CONTAINER, if given)')
      .usage('ADDRESS [ADDRESS...] -h NAME [CONTAINER]')
      .helpOption('--help', 'display help for command')
      .argument('<args...>', 'IPv4 addresses, then optionally a container id')
      .requiredOption('-h, --hostname <name>', 'the name ("web" or "web.loom.local")')
      .action(async (args: string[], opts: { httpAddr?: string; hostname: string }) => {
        const { addresses, containerId } = parseAddressesAndContainer(args);
        if (addresses.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'give at least one IPv4 address');
        const client = await clientFor(ctx, opts);
        for (const address of addresses) await client.dnsAdd({ name: opts.hostname, address, ...(containerId === undefined ? {} : { containerId }) });
      });
  },
};
