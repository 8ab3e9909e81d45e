import { LoomError } from '../../core/errors.js';
import { clientFor, containersFor, withHttpAddr, type CliCommand } from '../command.js';

/** A PID (digits) or an absolute netns path (/run/netns/NAME, /proc/PID/ns/net). */
export function parseNetnsTarget(text: string): { pid: number } | { netns: string } {
  if (/^\d{1,7}$/.test(text)) return { pid: Number(text) };
  if (text.startsWith('/') && text.length <= 255 && !text.includes('\0')) return { netns: text };
  throw new LoomError('ERR_INVALID_ARGUMENT', `invalid target "${text.slice(0, 40)}": a PID or a netns path like /run/netns/NAME`);
}

/**
 * `[ADDRESS] TARGET`: one argument is the target (address = net:default, from IPAM); two are the
 * address (a.b.c.d/n, net:a.b.c.d/n, net:default) and the target, as in `loom attach CIDR TARGET`.
 */
export function attachBody(first: string, second: string | undefined): { cidr: string } & ({ pid: number } | { netns: string }) {
  if (second === undefined) return { cidr: '', ...parseNetnsTarget(first) };
  return { cidr: first, ...parseNetnsTarget(second) };
}

/** A Docker container id or name: what is neither a PID nor a path. */
const DOCKER_REF_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The target of `loom attach`: a namespace (PID, path), or else a Docker container id or name. */
export function attachTarget(text: string): { pid: number } | { netns: string } | { docker: string } {
  if (/^\d{1,7}$/.test(text) || text.startsWith('/')) return parseNetnsTarget(text);
  if (DOCKER_REF_RE.test(text)) return { docker: text };
  throw new LoomError('ERR_INVALID_ARGUMENT', `invalid target "${text.slice(0, 40)}": a PID, a netns path like /run/netns/NAME, or a Docker container id or name`);
}

export const attachCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('attach'))
      .description("plug a running process's network namespace into Loom; prints the address and the interface's MAC")
      .argument('<address-or-target>', 'ADDRESS (a.b.c.d/n static, net:a.b.c.d/n or net:default; none = net:default), then the target')
      .argument('[target]', 'PID, netns path (/run/netns/NAME), or a Docker container id or name (followed through docker restart)')
      .action(async (first: string, second: string | undefined, opts: { httpAddr?: string }) => {
        const target = attachTarget(second ?? first);
        const cidr = second === undefined ? '' : first;
        if ('docker' in target) {
          const d = await (await clientFor(ctx, opts)).docker.attach({ container: target.docker, cidr });
          ctx.out(`${d.cidr} ${d.mac}\n`);
          return;
        }
        const a = await (await containersFor(ctx, opts)).attach(attachBody(first, second));
        ctx.out(`${a.cidr} ${a.mac}\n`);
      });
  },
};
