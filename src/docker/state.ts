/**
 * What the Docker integration must not forget across a router restart, in one JSON file
 * (STATE_DIR/docker.json, written with writeFileDurable after every change, before Docker gets
 * its answer): the Loom networks Docker created, their endpoints (address, MAC, veth, the
 * container and name once learned), the IPAM id behind each address handed to Docker, and the
 * containers of other networks put on Loom by `loom attach`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileDurable } from '../os/durable-file.js';

export interface DockerNetwork {
  id: string;
  /** Its IPv4 pools as Docker reports them (0.0.0.0/0 for Loom's default subnet). */
  pools: string[];
  /** Created with -o loom.no-gateway-service=true (see plugin.ts). */
  noGatewayService?: boolean;
}

export interface DockerEndpoint {
  id: string;
  networkId: string;
  /** "a.b.c.d/n", as Docker's IPAM (ours) gave it. */
  cidr: string;
  mac: string;
  /** Host end of the veth pair, once joined (the other end went to Docker). */
  hostVeth: string | null;
  /** Learned from Docker's events/inspect after the join. */
  containerId: string | null;
  name: string | null;
  /** When it joined (ms since the epoch); a resync never frees an endpoint that joined just now. */
  joinedAt?: number;
}

/** A container of another Docker network put on Loom by `loom attach` (followed through restarts). */
export interface DockerAttachment {
  containerId: string;
  name: string;
  /** The IPAM id its address is held under (stable across `docker restart`). */
  ipamId: string;
  cidr: string;
  mac: string;
}

export interface DockerStateData {
  networks: Record<string, DockerNetwork>;
  endpoints: Record<string, DockerEndpoint>;
  /** Address (no prefix) handed to Docker -> the IPAM id it is held under. */
  addresses: Record<string, string>;
  attachments: Record<string, DockerAttachment>;
}

export interface DockerStateStore {
  load(): DockerStateData;
  save(data: DockerStateData): void;
}

export function emptyState(): DockerStateData {
  return { networks: {}, endpoints: {}, addresses: {}, attachments: {} };
}

function record(value: unknown): Record<string, never> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, never>) : {};
}

/** The file store. A missing or unreadable file is an empty state (logged by the caller's first save). */
export function fileStateStore(path: string): DockerStateStore {
  return {
    load() {
      try {
        const raw = record(JSON.parse(readFileSync(path, 'utf8')));
        return { networks: record(raw['networks']), endpoints: record(raw['endpoints']), addresses: record(raw['addresses']), attachments: record(raw['attachments']) };
      } catch {
        return emptyState();
      }
    },
    save(data) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileDurable(path, JSON.stringify(data, null, 2) + '\n', 0o600);
    },
  };
}

/** In memory, for tests. */
export function memoryStateStore(initial: DockerStateData = emptyState()): DockerStateStore & { saves: number } {
  let data = structuredClone(initial);
  const store = {
    saves: 0,
    load: () => structuredClone(data),
    save: (d: DockerStateData) => {
      data = structuredClone(d);
      store.saves++;
    },
  };
  return store;
}
