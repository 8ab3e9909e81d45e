import type { DnsReport } from '../dns/daemon-types.js';
import { peerLabel, table } from './format-status.js';

/**
 * `loom status dns`: one line per record, as `weave status dns`: name, address, container,
 * and the peer whose container it is.
 */
export function formatDns(dns: DnsReport): string {
  return table(dns.records.map((r) => [r.name, r.address, r.containerId, r.originNickname === undefined ? r.origin : peerLabel(r.origin, r.originNickname)]));
}
