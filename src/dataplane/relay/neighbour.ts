import type { TimerHandle } from '../../core/clock.js';
import { peerNameToBytes, type PeerName } from '../../core/ids.js';
import type { SessionKeys } from '../../mesh/types.js';
import type { UdpAddress } from './address.js';
import { deriveDataKeys, type DataKeys } from './keys.js';
import { ReplayWindow } from './replay-window.js';
import { peerKeyOf } from './wire.js';

export interface PendingProbe {
  sentAt: number;
  timer: TimerHandle;
  /** Sent from the check port (Relay.probe). */
  unsolicited: boolean;
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
  readonly pendingProbes = new Map<number, PendingProbe>();

  constructor(
    readonly name: PeerName,
    public address: UdpAddress,
    readonly sessionKeys: SessionKeys | null,
  ) {
    this.key = peerKeyOf(name);
    this.nameBytes = Buffer.from(peerNameToBytes(name));
    this.dataKeys = sessionKeys ? deriveDataKeys(sessionKeys) : null;
  }

  cancelProbes(): void {
    for (const p of this.pendingProbes.values()) p.timer.cancel();
    this.pendingProbes.clear();
  }
}
