import { LoomError } from '../../core/errors.js';
import type { ContainerRecord } from '../../containers/types.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

/** "KEY=VALUE" from `-e`, collected in order; a later KEY wins. */
function collectEnv(pair: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid -e "${pair.slice(0, 40)}": expected KEY=VALUE`);
  return { ...previous, [pair.slice(0, eq)]: pair.slice(eq + 1) };
}

export const runCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('run'))
      .description('start a container on the Loom network: loom run --name NAME CIDR -- CMD [ARGS...]; prints its id')
      .requiredOption('--name <name>', 'container name (also its hostname and DNS name)')
      .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collectEnv)
      .argument('<cidr>', 'address with prefix, e.g. 10.32.0.5/12')
      .argument('<cmd...>', 'command and arguments (after --)')
      .action(async (cidr: string, cmd: string[], opts: { httpAddr?: string; name: string; env?: Record<string, string> }) => {
        const body = { name: opts.name, cidr, cmd, ...(opts.env ? { env: opts.env } : {}) };
        const record = await clientFor(ctx, opts).call<ContainerRecord>('POST', '/containers', body);
        ctx.out(`${record.id}\n`);
      });
  },
};
