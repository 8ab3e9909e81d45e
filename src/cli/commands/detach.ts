import type { RequestOf } from '../../api/contract.js';
import type { CONTAINER_ROUTES } from '../../containers/api.js';
import { containersFor, withHttpAddr, type CliCommand } from '../command.js';
import { parseNetnsTarget } from './attach.js';

/**
 * A netns path or a PID (1-7 digits) names an attached namespace; anything else a container (a
 * container id is 12 characters, so a short all-digit text is never one of ours).
 */
export function detachBody(target: string, cidr: string | undefined): RequestOf<typeof CONTAINER_ROUTES.detach> {
  const which = target.startsWith('/') || /^\d{1,7}$/.test(target) ? parseNetnsTarget(target) : { id: target };
  return { ...which, ...(cidr === undefined ? {} : { cidr }) };
}

export const detachCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('detach'))
      .description('take a container or an attached namespace off the Loom network (all addresses, or one); it keeps running')
      .argument('<container>', 'container id or name, or the PID / netns path given to `loom attach`')
      .argument('[cidr]', 'only this address')
      .action(async (target: string, cidr: string | undefined, opts: { httpAddr?: string }) => {
        const r = await (await containersFor(ctx, opts)).detach(detachBody(target, cidr));
        ctx.out('detached' in r ? r.detached.map((a) => `${a.cidr}\n`).join('') : `${r.id}\n`);
      });
  },
};
