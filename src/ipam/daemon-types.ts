/**
 * What the IPAM subsystem says over the API: `/ipam/status` (and `ipam` in `/report`) is an
 * IpamStatus; these are the answers of the other endpoints. Types only, shared by the daemon
 * side and the CLI.
 */
import type { AllocationResult } from './status.js';

export type { IpamStatus, IpamPeerStatus, RangeMismatch } from './status.js';

/** POST /ipam/allocate and /ipam/claim: an AllocationResult as JSON (without the parsed `value`). */
export type IpamAllocateResult = Omit<AllocationResult, 'value'>;

export interface IpamReleaseResult {
  /** Addresses released (0 when the container held none: release is idempotent). */
  released: number;
}

export interface IpamLookupResult {
  containerId: string;
  /** "a.b.c.d/n", one per subnet, in subnet order. */
  cidrs: string[];
}

export interface IpamRmpeerResult {
  /** Peer names removed (nicknames resolved). */
  removed: string[];
  /** Who took over their space. */
  heir: string;
  /** Addresses moved. */
  moved: number;
}

export interface IpamResetResult {
  /** Who received our space; null when we owned none. */
  heir: string | null;
  moved: number;
}
