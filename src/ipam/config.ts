/**
 * What an Ipam is built from: the components it uses (`IpamComponents`) and its options
 * (`IpamInit`), resolved once, with their defaults and bounds, into `IpamSettings`.
 */
import type { EventSink } from '../core/events.js';
import type { Clock } from '../core/clock.js';
import { LoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DEFAULT_IPALLOC_RANGE } from '../core/net.js';
import type { GossipChannel, Gossiper, MeshView } from '../mesh/types.js';
import { type BootstrapMode, parseBootstrap } from './bootstrap.js';
import { type Cidr, cidrWithin, formatCidr, parseCidr } from './cidr.js';
import type { IpamStore } from './store.js';

export interface IpamComponents {
  mesh: MeshView;
  /** The router (or a test fake); IPAM registers itself as the "ipam" gossiper. */
  router: { newGossipChannel(name: string, gossiper: Gossiper): GossipChannel };
  clock: Clock;
  logger: Logger;
  store: IpamStore;
  /** Where claims and conflicts are told (the daemon's event log); default nowhere. */
  events?: EventSink;
}

export interface IpamInit {
  /** The whole allocation range; every peer must use the same. Default DEFAULT_IPALLOC_RANGE (10.32.0.0/12, core/net.ts). */
  range?: string;
  /** Subnet used when `allocate` is given none. Default: the whole range. */
  defaultSubnet?: string;
  /** `seed=NAME,...`, `consensus[=N]` or `observer`. Default `consensus`. */
  bootstrap?: string;
  /** N for a bare `consensus`: the daemon passes 1 + its initial targets. Default 1. */
  expectedPeers?: number;
  /** How long a released address stays reserved for the same container. Default 30 s. */
  releaseGraceMs?: number;
  /** How long `allocate` waits for a ring or a donation before failing. Default 30 s. */
  allocateTimeoutMs?: number;
  /** How long to wait for one donor's answer before asking the next. Default 5 s. */
  donationTimeoutMs?: number;
  /** How long the set of consensus participants must stay the same before proposing. Default 2 s. */
  consensusSettleMs?: number;
  /** Delay before broadcasting our changed free/in-use numbers (they are advisory). Default 1 s. */
  statsDelayMs?: number;
}

/** `IpamInit` parsed and with every default filled in. */
export interface IpamSettings {
  range: Cidr;
  defaultSubnet: Cidr;
  mode: BootstrapMode;
  expectedPeers: number;
  releaseGraceMs: number;
  allocateTimeoutMs: number;
  donationTimeoutMs: number;
  consensusSettleMs: number;
  statsDelayMs: number;
}

/** Throws ERR_INVALID_ARGUMENT for a range, subnet, bootstrap or duration that cannot be used. */
export function resolveIpamSettings(init: IpamInit): IpamSettings {
  const range = parseCidr(init.range ?? DEFAULT_IPALLOC_RANGE);
  const defaultSubnet = init.defaultSubnet === undefined ? range : parseCidr(init.defaultSubnet);
  if (!cidrWithin(defaultSubnet, range)) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `default subnet ${formatCidr(defaultSubnet)} is not inside the range ${formatCidr(range)}`);
  }
  const mode = parseBootstrap(init.bootstrap ?? 'consensus');
  return {
    range,
    defaultSubnet,
    mode,
    expectedPeers: positive(init.expectedPeers ?? 1, 'expectedPeers'),
    releaseGraceMs: nonNegative(init.releaseGraceMs ?? 30_000, 'releaseGraceMs'),
    allocateTimeoutMs: positive(init.allocateTimeoutMs ?? 30_000, 'allocateTimeoutMs'),
    donationTimeoutMs: positive(init.donationTimeoutMs ?? 5_000, 'donationTimeoutMs'),
    consensusSettleMs: nonNegative(init.consensusSettleMs ?? 2_000, 'consensusSettleMs'),
    statsDelayMs: nonNegative(init.statsDelayMs ?? 1_000, 'statsDelayMs'),
  };
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new LoomError('ERR_INVALID_ARGUMENT', `${name} must be a positive number`);
  return n;
}

function nonNegative(n: number, name: string): number {
  if (!Number.isFinite(n) || n < 0) throw new LoomError('ERR_INVALID_ARGUMENT', `${name} must not be negative`);
  return n;
}
