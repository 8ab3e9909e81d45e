import { LoomError } from '../../core/errors.js';
import type { Attachment } from '../../containers/daemon.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

/** A PID (digits) or an absolute netns path (/run/netns/NAME, /proc/PID/ns/net). */
export function parseNetnsTarget(text: string): { pid: number } | { netns: string } {
  if (/^\d{1,7}$/.test(text)) return { pid: Number(text) };
  if (text.startsWith('/') && text.length <= 255 && !text.includes('\0')) return { netns: text };
  throw new LoomError('ERR_INVALID_ARGUMENT', `invalid target "${text.slice(0, 40)}": a PID or a netns path like /run/netns/NAME`);
}

export const attachCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('attach'))
      .description("plug a running process's network namespace into Loom; prints the interface's MAC")
      .argument('<cidr>', 'address with prefix, e.g. 10.32.0.9/12')
      .argument('<target>', 'PID or netns path (/run/netns/NAME)')
      .action(async (cidr: string, target: string, opts: { httpAddr?: string }) => {
        const a = await clientFor(ctx, opts).call<Attachment>('POST', '/containers/attach', { cidr, ...parseNetnsTarget(target) });
        ctx.out(`${a.mac}\n`);
      });
  },
};
