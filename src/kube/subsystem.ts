/**
 * The `kube` subsystem (`loom launch --kube-peers`): peers from the Kubernetes API and the
 * reclaim of deleted nodes' address space. Loaded only with --kube-peers (./lazy.ts).
 *
 *   NodeWatcher --nodes--> PeerTargets  -> router.connect/forget (every other node, InternalIP or ExternalIP, on our port)
 *               --nodes--> ReclaimLoop  -> Reclaimer -> ConfigMap registry (CAS) + ipam.rmpeer
 *
 * Starts after the router and IPAM (so the mesh knows who is reachable and rmpeer works); stop
 * ends the watch and waits for a reclaim pass in flight.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem } from '../core/subsystem.js';
import type { RouterApi } from '../mesh/types.js';
import { type KubeApi, KubeClient } from './client.js';
import { KUBE_SUBSYSTEM, type KubeLaunchConfig } from './launch-options.js';
import { NodeWatcher, type NodeWatcherStatus } from './node-watcher.js';
import { PeerRegistry } from './peer-registry.js';
import type { KubeNode } from './nodes.js';
import { PeerTargets } from './peer-targets.js';
import { DEFAULT_RECLAIM_INTERVAL_MS, ReclaimLoop, Reclaimer, type PeerSpaceReclaimer, type ReclaimerStatus } from './reclaim.js';

export { KUBE_SUBSYSTEM };

export interface KubeSubsystemComponents {
  router: Pick<RouterApi, 'connect' | 'forget' | 'mesh'>;
  /** Absent: no reclaim (IPAM is off). */
  ipam?: PeerSpaceReclaimer;
  clock: Clock;
  logger: Logger;
  /** Default: a KubeClient for `config.apiUrl` (tests pass their own). */
  api?: KubeApi;
  wallNow?: () => number;
}

export interface KubeSubsystemInit {
  config: KubeLaunchConfig;
  /** The mesh port peers listen on (ours: every router of a DaemonSet uses the same). */
  port: number;
  watchTimeoutSeconds?: number;
  reclaimIntervalMs?: number;
  reclaimLeaseMs?: number;
}

export interface KubeReport {
  node: string | null;
  watcher: NodeWatcherStatus;
  targets: string[];
  reclaim: ReclaimerStatus | null;
}

export class KubeSubsystem implements Subsystem {
  readonly name = KUBE_SUBSYSTEM;
  private readonly api: KubeApi;
  private readonly ownsApi: KubeClient | null;
  private readonly watcher: NodeWatcher;
  private readonly targets: PeerTargets;
  private readonly reclaimer: Reclaimer | null;
  private readonly reclaimLoop: ReclaimLoop | null;
  private readonly logger: Logger;
  private readonly nodeName: string | undefined;
  /** Null until the first list: then a pass runs at once (registers us, reclaims what went while we were away). */
  private lastNodes: Set<string> | null = null;

  constructor(c: KubeSubsystemComponents, init: KubeSubsystemInit) {
    const { config } = init;
    this.logger = c.logger;
    this.nodeName = config.nodeName;
    this.ownsApi = c.api ? null : new KubeClient({ apiUrl: config.apiUrl, tokenFile: config.tokenFile, caFile: config.caFile, extraCaFile: config.extraCaFile });
    this.api = c.api ?? this.ownsApi!;
    this.targets = new PeerTargets(c.router, { selfNode: config.nodeName, port: init.port });
    this.watcher = new NodeWatcher(
      { api: this.api, clock: c.clock, logger: c.logger },
      { onChange: (nodes) => this.nodesChanged(nodes.values()), ...(init.watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds: init.watchTimeoutSeconds }) },
    );
    if (config.reclaim && config.nodeName !== undefined && c.ipam) {
      this.reclaimer = new Reclaimer(
        {
          registry: new PeerRegistry(this.api, { namespace: config.namespace, name: config.configMap }),
          api: this.api,
          ipam: c.ipam,
          mesh: c.router.mesh,
          logger: c.logger,
          ...(c.wallNow ? { wallNow: c.wallNow } : {}),
        },
        { selfNode: config.nodeName, ...(init.reclaimLeaseMs === undefined ? {} : { leaseMs: init.reclaimLeaseMs }) },
      );
      this.reclaimLoop = new ReclaimLoop(
        { reclaimer: this.reclaimer, clock: c.clock, liveNodes: () => (this.watcher.synced ? new Set(this.watcher.nodes.keys()) : null) },
        init.reclaimIntervalMs ?? DEFAULT_RECLAIM_INTERVAL_MS,
      );
    } else {
      this.reclaimer = null;
      this.reclaimLoop = null;
      if (config.reclaim) this.logger.info({ node: config.nodeName ?? null, ipam: c.ipam !== undefined }, 'reclaim of deleted nodes is off: it needs the node name and IPAM');
    }
  }

  async start(): Promise<void> {
    this.watcher.start();
    this.reclaimLoop?.start();
  }

  /** Closing the client first ends a list, watch or ConfigMap write in flight at once (no waiting out its timeout). */
  async stop(): Promise<void> {
    const stopping = [this.watcher.stop(), this.reclaimLoop?.stop() ?? Promise.resolve()];
    this.ownsApi?.close();
    await Promise.all(stopping);
  }

  report(): KubeReport {
    return { node: this.nodeName ?? null, watcher: this.watcher.status(), targets: this.targets.targets(), reclaim: this.reclaimer?.status() ?? null };
  }

  private nodesChanged(nodes: Iterable<KubeNode>): void {
    const list = [...nodes];
    const { added, removed } = this.targets.sync(list);
    if (added.length > 0 || removed.length > 0) this.logger.info({ added, removed }, 'peers from Kubernetes nodes');
    const names = new Set(list.map((n) => n.name));
    const someGone = this.lastNodes === null || [...this.lastNodes].some((n) => !names.has(n));
    this.lastNodes = names;
    if (someGone) this.reclaimLoop?.poke();
  }
}
