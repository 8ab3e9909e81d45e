/** DNS for container names: the replicated records (gossip channel "dns") and the server. */
export { DnsRecordStore, DEFAULT_TOMBSTONE_LIFETIME_MS, type DnsStoreComponents, type DnsStoreInit, type DnsStatusRow } from './store.js';
export { DnsServer, type DnsServerComponents, type DnsServerInit, type DnsListen, type DnsStats, type DnsUdpStats, type Endpoint, type UdpPath, type UdpPathSetting } from './server.js';
export { RecordSet, supersedes, recordKey, type DnsRecord } from './records.js';
export { decodeRecords } from './codec.js';
export { DEFAULT_DOMAIN, parseName, qualifyName } from './names.js';
export { parseResolvConf } from './resolv-conf.js';

/** Name of the gossip channel the router carries the records on. */
export const DNS_GOSSIP_CHANNEL = 'dns';

// The daemon subsystem (src/dns/daemon*.ts): wiring, API, options, hooks for containers.
export { DnsSubsystem, DNS_SUBSYSTEM, EXTERN_CONTAINER_ID, type ContainerDnsHooks, type DnsSubsystemComponents, type DnsSubsystemInit, type RemoveFilter } from './daemon.js';
export { createDnsSubsystem, type DnsBuildComponents, type DnsFactoryOverrides } from './daemon-factory.js';
export { parseDnsOptions, dnsArgs, findResolvConf, type DnsLaunchConfig, type RawDnsOptions } from './daemon-options.js';
export type { DnsReport, DnsRecordRow, DnsListenerStatus, DnsQueryStats, DnsAddResult, DnsRemoveResult, DnsLookupResult } from './daemon-types.js';
