/**
 * IPAM's consensus needs the expected cluster size; in Kubernetes it is the number of nodes.
 * Listed once before IPAM starts. A node added later finds a ring already made and takes its
 * share through gossip, so the count only has to be right at the cluster's first start. No
 * answer from the API fails the launch (the DaemonSet restarts us): guessing 1 would let every
 * node make a ring of its own.
 */
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { KubeClient, statusMessage } from './client.js';
import type { KubeLaunchConfig } from './launch-options.js';
import { parseNodeList } from './nodes.js';
import { NODES_PATH } from './node-watcher.js';
import { MAX_CLUSTER_SIZE } from '../ipam/bootstrap.js';

export async function countNodes(client: KubeClient, attempts = 5, delayMs = 1_000): Promise<number> {
  let last = '';
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, delayMs * i));
    try {
      const res = await client.request('GET', NODES_PATH);
      if (res.status === 200) return parseNodeList(res.body).nodes.length;
      last = `${res.status} ${statusMessage(res.body)}`;
    } catch (err) {
      last = toLoomError(err).message;
    }
  }
  throw new LoomError('ERR_UNAVAILABLE', `cannot list the Kubernetes nodes to size IPAM's consensus (${last}); give --ipalloc-init to start without`);
}

/** The node count (at least 1), for `--ipalloc-init consensus=<count>`. */
export async function clusterSizeFromNodes(config: KubeLaunchConfig, logger: Logger): Promise<number> {
  const client = new KubeClient({ apiUrl: config.apiUrl, tokenFile: config.tokenFile, caFile: config.caFile, extraCaFile: config.extraCaFile, requestTimeoutMs: 10_000 });
  try {
    const nodes = Math.min(MAX_CLUSTER_SIZE, Math.max(1, await countNodes(client)));
    logger.info({ component: 'kube', nodes }, `IPAM consensus sized from the Kubernetes nodes: consensus=${nodes}`);
    return nodes;
  } finally {
    client.close();
  }
}
