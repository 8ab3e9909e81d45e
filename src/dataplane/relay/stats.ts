import type { PeerName } from '../../core/ids.js';
import { DROP_REASONS, type DropReason } from './wire.js';

/** Counters only: the hot path increments, `Relay.stats()` hands out a copy. */
export interface RelayCounters {
  /** VXLAN datagrams the kernel handed us (one per peer port, broadcasts included). */
  fromKernel: number;
  bytesFromKernel: number;
  /** Messages handed to the kernel on the data port: a UDP GSO train of equal-size datagrams to one neighbour counts once. */
  batches: number;
  /** Datagrams sent to neighbours: our own frames, forwarded ones and probes. */
  toNeighbours: number;
  bytesToNeighbours: number;
  /** Datagrams received on the data port, before any check. */
  fromNeighbours: number;
  bytesFromNeighbours: number;
  /** Data packets for another peer, re-sealed and passed on. */
  forwarded: number;
  /** Frames written into the local kernel VXLAN port. */
  toKernel: number;
  probesSent: number;
  probesAnswered: number;
  probeRepliesReceived: number;
  /** Neighbour data addresses changed by an authenticated probe (NAT mapping). */
  addressesLearned: number;
  /** Frames read from the TAP device (the bridge's frames for relayed peers; super-frames count once). */
  fromDevice: number;
  bytesFromDevice: number;
  /** Frames written into the TAP device (received for our containers). */
  toDevice: number;
  /** ICMP "fragmentation needed" answers injected for over-size DF frames (each also dropped as 'oversized'). */
  fragNeededSent: number;
  /** Datagrams cut from frames too big for the path (TCP segments or IPv4 fragments). */
  segmentsSent: number;
}

export interface NeighbourStats {
  peer: PeerName;
  /** "ip:port" we send to: as configured, or as learned from its probes. */
  address: string;
  authenticated: boolean;
  sent: number;
  /** Datagram bytes sent to it, and received from it and accepted (every kind: data, forwarded, probes). */
  bytesSent: number;
  bytesReceived: number;
  /** Path MTU used now (underlay IP packet bytes), and whether a probe confirmed it. */
  pmtu: number;
  pmtuVerified: boolean;
}

export interface RelayStats extends RelayCounters {
  /** Received segments merged into super-frames before the device. */
  coalescedSegments: number;
  drops: Record<DropReason, number>;
  neighbours: NeighbourStats[];
  /** Whether the data port sends with UDP GSO (false after the kernel refused it). */
  gso: boolean;
}

export function zeroCounters(): RelayCounters {
  return {
    fromKernel: 0,
    bytesFromKernel: 0,
    batches: 0,
    toNeighbours: 0,
    bytesToNeighbours: 0,
    fromNeighbours: 0,
    bytesFromNeighbours: 0,
    forwarded: 0,
    toKernel: 0,
    probesSent: 0,
    probesAnswered: 0,
    probeRepliesReceived: 0,
    addressesLearned: 0,
    fromDevice: 0,
    bytesFromDevice: 0,
    toDevice: 0,
    fragNeededSent: 0,
    segmentsSent: 0,
  };
}

export function zeroDrops(): Record<DropReason, number> {
  const drops = {} as Record<DropReason, number>;
  for (const reason of DROP_REASONS) drops[reason] = 0;
  return drops;
}
