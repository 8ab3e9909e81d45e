/**
 * Durable IPAM state: the ring and this peer's allocations. The contract every store keeps:
 * a ring change survives a kill of the process (and, for the SQLite store, a power loss) when
 * `saveRing` returns; an allocation change survives a kill once `durable()` has resolved (a
 * store without group commit is durable when the method returns). IPAM writes before it
 * gossips, and the daemon awaits `durable()` before it answers, so nothing told is lost.
 */
export interface StoredAllocation {
  containerId: string;
  /** The subnet the address was taken from, as "a.b.c.d/n". */
  subnet: string;
  address: number;
  /** Released but possibly still inside its grace period. */
  released: boolean;
}

export interface IpamState {
  ring: Uint8Array | null;
  allocations: StoredAllocation[];
}

export interface IpamStore {
  load(): IpamState;
  saveRing(bytes: Uint8Array): void;
  putAllocation(a: StoredAllocation): void;
  deleteAllocation(containerId: string, subnet: string): void;
  /** Drops every allocation (used by reset). */
  clearAllocations(): void;
  /** Resolves once every change made so far survives a kill of the process. */
  durable(): Promise<void>;
  close(): void;
}

/** In-memory store for simulations; survives "restarts" by being handed to the next instance. */
export class MemoryStore implements IpamStore {
  private ring: Uint8Array | null = null;
  private readonly allocations = new Map<string, StoredAllocation>();

  load(): IpamState {
    return { ring: this.ring ? this.ring.slice() : null, allocations: [...this.allocations.values()].map((a) => ({ ...a })) };
  }

  saveRing(bytes: Uint8Array): void {
    this.ring = bytes.slice();
  }

  putAllocation(a: StoredAllocation): void {
    this.allocations.set(`${a.containerId}|${a.subnet}`, { ...a });
  }

  deleteAllocation(containerId: string, subnet: string): void {
    this.allocations.delete(`${containerId}|${subnet}`);
  }

  clearAllocations(): void {
    this.allocations.clear();
  }

  durable(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {}
}
