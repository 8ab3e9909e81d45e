/** One DNS record as replicated between peers (the CRDT element of records.ts, the unit of codec.ts). */
import type { ContainerId, PeerName } from '../core/ids.js';

export interface DnsRecord {
  /** Canonical FQDN, see names.ts. */
  readonly name: string;
  /** Dotted IPv4. */
  readonly address: string;
  readonly containerId: ContainerId;
  /** The peer whose container this is; the only peer that changes this key. */
  readonly origin: PeerName;
  /** 1..2^32-1 */
  readonly version: number;
  readonly tombstone: boolean;
}
