/**
 * The shared record of which Loom peer runs on which node: one ConfigMap (default
 * kube-system/loom-peers) that every router reads and changes with optimistic concurrency.
 *
 *   data.peers    JSON [{"peer":"8a:3f:00:12:9c:01","node":"node-1"}, ...]
 *   data.reclaim  JSON {"peer":..., "node":..., "by":..., "since":<ms since 1970>}: who is reclaiming
 *                 whose space right now (absent = nobody). At most one at a time.
 *
 * Every change is read-modify-write: GET (with its resourceVersion), change, PUT with that
 * resourceVersion; the API server refuses a PUT made from an older version with 409 Conflict,
 * and we start again from a fresh GET. A missing ConfigMap is created (POST; 409 AlreadyExists
 * when another router created it first: start again). So two routers can never both believe
 * they changed the same version: that is what makes the reclaim lock exclusive.
 */
import { LoomError } from '../core/errors.js';
import { isPeerName, type PeerName } from '../core/ids.js';
import { type KubeApi, statusMessage } from './client.js';
import { isObjectName } from './launch-options.js';

export interface PeerRecord {
  peer: PeerName;
  node: string;
}

export interface ReclaimLock {
  /** The peer whose space is being reclaimed, and its node. */
  peer: PeerName;
  node: string;
  /** The reclaiming peer. */
  by: PeerName;
  /** Wall-clock ms when the lock was taken (routers' clocks are assumed NTP-close). */
  since: number;
}

export interface RegistryState {
  peers: PeerRecord[];
  reclaim: ReclaimLock | null;
}

const MAX_ATTEMPTS = 20;
const MAX_PEERS = 10_000;

export class PeerRegistry {
  private readonly path: string;

  constructor(
    private readonly api: KubeApi,
    private readonly init: { namespace: string; name: string },
  ) {
    this.path = `/api/v1/namespaces/${init.namespace}/configmaps`;
  }

  async read(): Promise<RegistryState> {
    return (await this.get())?.state ?? { peers: [], reclaim: null };
  }

  /**
   * Applies `change` to the current state and writes it, retrying from a fresh read on 409.
   * `change` returns the new state, or null to write nothing (the state is then returned as
   * read). `change` may run several times: keep it pure. Resolves with what was written (or read).
   */
  async update(change: (state: RegistryState) => RegistryState | null): Promise<{ state: RegistryState; written: boolean }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get();
      const before = current?.state ?? { peers: [], reclaim: null };
      const after = change(before);
      if (after === null) return { state: before, written: false };
      const body = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: this.init.name, namespace: this.init.namespace, ...(current ? { resourceVersion: current.resourceVersion } : {}) },
        data: encodeState(after),
      };
      const res = current ? await this.api.request('PUT', `${this.path}/${this.init.name}`, body) : await this.api.request('POST', this.path, body);
      if (res.status === 200 || res.status === 201) return { state: after, written: true };
      if (res.status === 409) continue; // someone else changed (or created) it first
      throw new LoomError('ERR_UNAVAILABLE', `write ConfigMap ${this.init.namespace}/${this.init.name}: ${res.status} ${statusMessage(res.body)}`);
    }
    throw new LoomError('ERR_CONFLICT', `ConfigMap ${this.init.namespace}/${this.init.name} kept changing under us (${MAX_ATTEMPTS} conflicts)`);
  }

  private async get(): Promise<{ state: RegistryState; resourceVersion: string } | null> {
    const res = await this.api.request('GET', `${this.path}/${this.init.name}`);
    if (res.status === 404) return null;
    if (res.status !== 200) throw new LoomError('ERR_UNAVAILABLE', `read ConfigMap ${this.init.namespace}/${this.init.name}: ${res.status} ${statusMessage(res.body)}`);
    const obj = res.body as { metadata?: { resourceVersion?: unknown }; data?: unknown } | null;
    const rv = obj?.metadata?.resourceVersion;
    if (typeof rv !== 'string' || rv.length === 0) throw new LoomError('ERR_PROTOCOL', 'ConfigMap without metadata.resourceVersion');
    return { state: decodeState(obj?.data), resourceVersion: rv };
  }
}

/**
 * Reads the ConfigMap's data. An entry that does not parse is dropped (a human may have edited
 * it); a lock that does not parse counts as no lock.
 */
export function decodeState(data: unknown): RegistryState {
  const d = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
  const peers: PeerRecord[] = [];
  const list = parseJsonField(d['peers']);
  if (Array.isArray(list)) {
    for (const item of list.slice(0, MAX_PEERS)) {
      const r = item as Partial<Record<string, unknown>> | null;
      const peer = typeof r?.['peer'] === 'string' ? r['peer'].toLowerCase() : undefined;
      if (isPeerName(peer) && isObjectName(r?.['node'])) peers.push({ peer, node: r['node'] });
    }
  }
  const l = parseJsonField(d['reclaim']) as Partial<Record<string, unknown>> | null;
  const reclaim =
    l !== null && typeof l === 'object' && isPeerName(l['peer']) && isPeerName(l['by']) && isObjectName(l['node']) && typeof l['since'] === 'number' && Number.isFinite(l['since'])
      ? { peer: l['peer'], node: l['node'], by: l['by'], since: l['since'] }
      : null;
  return { peers, reclaim };
}

export function encodeState(state: RegistryState): Record<string, string> {
  return {
    peers: JSON.stringify(state.peers.map((p) => ({ peer: p.peer, node: p.node }))),
    ...(state.reclaim ? { reclaim: JSON.stringify(state.reclaim) } : {}),
  };
}

/** Our record added or moved to our node; null when it is already there (nothing to write). Pure. */
export function withSelf(state: RegistryState, self: PeerRecord): RegistryState | null {
  if (state.peers.some((p) => p.peer === self.peer && p.node === self.node)) return null;
  return { ...state, peers: [...state.peers.filter((p) => p.peer !== self.peer), self] };
}

function parseJsonField(value: unknown): unknown {
  if (typeof value !== 'string' || value.length > 4 * 1024 * 1024) return null;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return null;
  }
}
