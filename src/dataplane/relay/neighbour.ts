import type { TimerHandle } from '../../core/clock.js';
import { peerNameToBytes, type PeerName } from '../../core/ids.js';
import type { SessionKeys } from '../../mesh/types.js';
import type { UdpAddress } from './address.js';
import { deriveDataKeys, type DataKeys } from './keys.js';
import { PathMtu } from './pmtu.js';
import { ReplayWindow } from './replay-window.js';
import { ipv4ToU32 } from '../../os/udp-endpoint.js';
import { peerKeyOf, RELAY_HEADER_BYTES, RELAY_TAG_BYTES } from './wire.js';

/** IPv4 (20) + UDP (8) in front of every relay datagram on the underlay. */
export const UNDERLAY_OVERHEAD_BYTES = 28;

export type ProbeKind = 'direct' | 'open' | 'pmtu';

export interface PendingProbe {
  sentAt: number;
  /** Reachability probes time out alone; path MTU probes end with their round. */
  timer: TimerHandle | null;
  kind: ProbeKind;
  /** Underlay IP packet size of the probe. */
  size: number;
}

/**
 * What the relay keeps per neighbour. A new set of session keys (a new mesh connection) starts a
 * new state: counters and the replay window belong to one key.
 */
export class NeighbourState {
  readonly key: number;
  readonly nameBytes: Buffer;
  readonly dataKeys: DataKeys | null;
  readonly window = new ReplayWindow();
  /** Next counter we send under `dataKeys.send`. */
  sendCounter = 0;
  sent = 0;
  /** Bytes of the datagrams sent to it and accepted from it (after the replay check), for the live page's rates. */
  bytesSent = 0;
  bytesReceived = 0;
  readonly pendingProbes = new Map<number, PendingProbe>();
  readonly pmtu: PathMtu;
  /** The largest relay datagram (header + body + tag) the path carries now; follows `pmtu`. */
  maxDatagramBytes = 0;
  /** Path MTU probing: when the next round is due, and the open round (probe ids) if any. */
  nextPmtuRoundAt = 0;
  pmtuRound: number[] = [];
  pmtuRoundEndsAt = 0;
  private addr: UdpAddress;
  /** `address.ip` as a number, compared per datagram instead of the string. */
  ipNumber: number;

  constructor(
    readonly name: PeerName,
    address: UdpAddress,
    readonly sessionKeys: SessionKeys | null,
    mtuLimit?: number,
  ) {
    this.key = peerKeyOf(name);
    this.nameBytes = Buffer.from(peerNameToBytes(name));
    this.dataKeys = sessionKeys ? deriveDataKeys(sessionKeys) : null;
    this.addr = address;
    this.ipNumber = ipv4ToU32(address.ip);
    this.pmtu = new PathMtu(mtuLimit);
    this.mtuChanged();
  }

  get address(): UdpAddress {
    return this.addr;
  }

  set address(address: UdpAddress) {
    this.addr = address;
    this.ipNumber = ipv4ToU32(address.ip);
  }

  /** Recomputes what follows from the path MTU; call after every PathMtu change. */
  mtuChanged(): void {
    this.maxDatagramBytes = this.pmtu.current() - UNDERLAY_OVERHEAD_BYTES;
  }

  /** The largest body (what follows the header) one datagram to this neighbour may carry. */
  maxBodyBytes(sealed: boolean): number {
    return this.maxDatagramBytes - RELAY_HEADER_BYTES - (sealed ? RELAY_TAG_BYTES : 0);
  }

  cancelProbes(): void {
    for (const p of this.pendingProbes.values()) p.timer?.cancel();
    this.pendingProbes.clear();
    this.pmtuRound = [];
  }
}
