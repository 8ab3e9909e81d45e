import type { ContainerListJson } from '../../client/index.js';
import { containersFor, withHttpAddr, type CliCommand } from '../command.js';

/** `loom ps`: one line per container (id name mac cidr pid), then attached namespaces. */
export function formatContainers(list: ContainerListJson): string {
  const rows = [['ID', 'NAME', 'MAC', 'CIDR', 'PID']];
  for (const c of list.containers) rows.push([c.id, c.name, c.mac, c.cidrs.join(',') || '-', c.alive ? String(c.pid) : `${c.pid} (dead)`]);
  for (const a of list.attachments) rows.push(['-', 'pid' in a.target ? `pid:${a.target.pid}` : a.target.path, a.mac, a.cidr, 'pid' in a.target ? String(a.target.pid) : '-']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ') + '\n').join('');
}

export const psCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('ps'))
      .description('list containers on this host: id, name, MAC, addresses, PID')
      .action(async (opts: { httpAddr?: string }) => {
        ctx.out(formatContainers(await (await containersFor(ctx, opts)).list()));
      });
  },
};
