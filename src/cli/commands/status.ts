import { LoomError } from '../../core/errors.js';
import type { Report } from '../../client/index.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';
import type { DnsReport } from '../../dns/daemon-types.js';
import { formatDns } from '../format-dns.js';
import { formatIpam } from './ipam-status.js';
import type { IpamStatus } from '../../ipam/daemon-types.js';
import { formatDataplanePaths } from '../format-dataplane.js';
import type { DataplaneStatus } from '../../dataplane/controller/controller.js';
import { formatConnections, formatPeers, formatSummary, formatTargets } from '../format-status.js';
import { formatLive, formatRecentEvents, type LiveReport } from '../format-live.js';
import { watchReports } from '../watch.js';

/** `loom status <view>`; later subsystems add views here (ipam, dns). */
export const STATUS_VIEWS: Record<string, (report: Report) => string> = {
  peers: (r) => formatPeers(r.router),
  connections: (r) => formatConnections(r.router) + formatDataplanePaths(r['dataplane'] as DataplaneStatus | undefined),
  targets: (r) => formatTargets(r.router),
  ipam: (r) => formatIpam(section<IpamStatus>(r, 'ipam', 'IPAM does not run in this router')),
  dns: (r) => formatDns(section<DnsReport>(r, 'dns', 'DNS is off in this router (launched with --no-dns)')),
  events: (r) => formatRecentEvents(section<NonNullable<LiveReport['events']>>(r, 'events', 'this router keeps no event log').recent ?? [], 100),
};

/** `loom status` without a view: the summary, the data path to each peer (PMTU, RTT) and recent events. */
export function formatStatus(report: Report): string {
  return formatSummary(report.router, report.version) + formatLive(report);
}

/** A subsystem's report section; ERR_UNAVAILABLE when that subsystem does not run. */
function section<T>(report: Report, name: string, whenAbsent: string): T {
  const value = report[name];
  if (value === undefined || value === null) throw new LoomError('ERR_UNAVAILABLE', whenAbsent);
  return value as T;
}

export const statusCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('status'))
      .description(`summary of the router; or one view: ${Object.keys(STATUS_VIEWS).join(', ')}`)
      .argument('[view]', 'what to show in detail')
      .option('-w, --watch', 'redraw as the router changes (at least every 2 s; Ctrl-C stops); without a terminal, print each snapshot')
      .action(async (view: string | undefined, opts: { httpAddr?: string; watch?: boolean }) => {
        const render = view === undefined ? formatStatus : STATUS_VIEWS[view];
        if (!render) throw new LoomError('ERR_INVALID_ARGUMENT', `unknown status view "${view?.slice(0, 40) ?? ''}": use one of ${Object.keys(STATUS_VIEWS).join(', ')}`);
        const client = await clientFor(ctx, opts);
        if (opts.watch === true) {
          await watchReports(client, (report) => render(report), { out: (text) => ctx.out(text), tty: process.stdout.isTTY });
          return;
        }
        ctx.out(render(await client.report()));
      });
  },
};
