/**
 * Durable IPAM state: the ring and this peer's allocations. The contract every store keeps:
 * when a method returns, the change survives a kill of the process (and, for the SQLite store,
 * a power loss). IPAM writes before it answers or gossips, so nothing it has told anyone is lost.
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

  close(): void {}
}
