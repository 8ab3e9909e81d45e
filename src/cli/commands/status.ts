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

/** `loom status <view>`; later subsystems add views here (ipam, dns). */
export const STATUS_VIEWS: Record<string, (report: Report) => string> = {
  peers: (r) => formatPeers(r.router),
  connections: (r) => formatConnections(r.router) + formatDataplanePaths(r['dataplane'] as DataplaneStatus | undefined),
  targets: (r) => formatTargets(r.router),
  ipam: (r) => formatIpam(section<IpamStatus>(r, 'ipam', 'IPAM does not run in this router')),
  dns: (r) => formatDns(section<DnsReport>(r, 'dns', 'DNS is off in this router (launched with --no-dns)')),
};

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
      .action(async (view: string | undefined, opts: { httpAddr?: string }) => {
        const render = view === undefined ? undefined : STATUS_VIEWS[view];
        if (view !== undefined && !render) throw new LoomError('ERR_INVALID_ARGUMENT', `unknown status view "${view.slice(0, 40)}": use one of ${Object.keys(STATUS_VIEWS).join(', ')}`);
        const report = await (await clientFor(ctx, opts)).report();
        ctx.out(render ? render(report) : formatSummary(report.router, report.version));
      });
  },
};
