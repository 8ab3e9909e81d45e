/**
 * What the DNS subsystem says over the API: `/dns/status`, the `dns` section of `/report`, and the
 * answers of the record endpoints. Types only, shared by the daemon side and the API client.
 */
import type { DnsStats } from './server.js';
import type { CountedQueryType } from './query-types.js';
import type { UpstreamStats } from './upstream.js';

export interface DnsRecordRow {
  name: string;
  address: string;
  containerId: string;
  /** Peer name of the host whose container this is. */
  origin: string;
  /** Its nickname, when the mesh knows it. */
  originNickname?: string;
  version: number;
}

export interface DnsListenerStatus {
  address: string;
  /** "host:port" actually bound. */
  udp?: string;
  tcp?: string;
  /**
   * How UDP is served once bound: "native" (the responder thread answers the cache's hot path),
   * "batched" (recvmmsg/sendmmsg from JS) or "dgram" (the fallback).
   */
  udpPath?: 'native' | 'batched' | 'dgram';
}

export interface DnsReport {
  domain: string;
  ttlSeconds: number;
  /** The resolv.conf forwarded queries go to. */
  resolvConf: string;
  listeners: DnsListenerStatus[];
  /** Visible live records, sorted by name then address. */
  records: DnsRecordRow[];
  counts: { live: number; hidden: number; tombstones: number };
  /** Summed over every listener since start. */
  stats: DnsQueryStats;
}

/** The server's counters (DnsServer.stats), summed over listeners for the report. */
export type DnsQueryStats = DnsStats;

export interface DnsAddResult {
  /** False when exactly this record was already there. */
  added: boolean;
  record: { name: string; address: string; containerId: string };
}

export interface DnsRemoveResult {
  removed: number;
}

export interface DnsLookupResult {
  name: string;
  addresses: string[];
}

/** What the DNS metrics read at each scrape (DnsSubsystem.metricsSnapshot): the report and the counters it does not show. */
export interface DnsMetricsSnapshot {
  report: DnsReport;
  /** Questions answered or forwarded, by type, summed over listeners since start. */
  queryTypes: Record<CountedQueryType, number>;
  upstream: UpstreamStats;
}
