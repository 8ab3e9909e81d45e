import { LoomError } from '../../core/errors.js';
import { containersFor, withHttpAddr, type CliCommand } from '../command.js';

/** "KEY=VALUE" from `-e`, collected in order; a later KEY wins. */
function collectEnv(pair: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid -e "${pair.slice(0, 40)}": expected KEY=VALUE`);
  return { ...previous, [pair.slice(0, eq)]: pair.slice(eq + 1) };
}

/** An address spec (net:..., or a.b.c.d/n) looks like nothing a command is called. */
const ADDRESS_SPEC_RE = /^(net:\S+|\d{1,3}(\.\d{1,3}){3}\/\d{1,2})$/;

/** `[ADDRESS] CMD...`: the first argument is the address when it has the shape of one. */
export function splitAddress(args: readonly string[]): { cidr: string; cmd: string[] } {
  const first = args[0];
  const hasAddress = first !== undefined && ADDRESS_SPEC_RE.test(first);
  const cmd = hasAddress ? args.slice(1) : [...args];
  if (cmd.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'missing the command to run: loom run --name NAME [ADDRESS] -- CMD [ARGS...]');
  return { cidr: hasAddress ? first : '', cmd };
}

export const runCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('run'))
      .description('start a container on the Loom network: loom run --name NAME [ADDRESS] -- CMD [ARGS...]; prints its id')
      .requiredOption('--name <name>', 'container name (also its hostname and DNS name)')
      .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collectEnv)
      .argument('<args...>', '[ADDRESS] CMD [ARGS...]: ADDRESS is a.b.c.d/n (static), net:a.b.c.d/n or net:default; none = net:default (from IPAM)')
      .action(async (args: string[], opts: { httpAddr?: string; name: string; env?: Record<string, string> }) => {
        const { cidr, cmd } = splitAddress(args);
        const body = { name: opts.name, cidr, cmd, ...(opts.env ? { env: opts.env } : {}) };
        const record = await (await containersFor(ctx, opts)).run(body);
        ctx.out(`${record.id}\n`);
      });
  },
};
