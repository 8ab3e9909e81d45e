/**
 * Turns the cluster's nodes into the router's peer targets: every other node's address (InternalIP, else ExternalIP) on the
 * mesh port. Only the targets this module added are ever forgotten again, so peers given on the
 * command line or through `loom connect` are left alone. `sync` is idempotent: calling it again
 * with the same nodes changes nothing.
 */
import type { RouterApi } from '../mesh/types.js';
import type { KubeNode } from './nodes.js';

/** "ip:port" of every node but ours that has an address. Pure. */
export function desiredTargets(nodes: Iterable<KubeNode>, selfNode: string | undefined, port: number): Set<string> {
  const out = new Set<string>();
  for (const node of nodes) {
    if (node.name === selfNode || node.address === undefined) continue;
    out.add(`${node.address}:${port}`);
  }
  return out;
}

export class PeerTargets {
  private readonly ours = new Set<string>();

  constructor(
    private readonly router: Pick<RouterApi, 'connect' | 'forget'>,
    private readonly init: { selfNode: string | undefined; port: number },
  ) {}

  /** What this module asked the router to dial, sorted. */
  targets(): string[] {
    return [...this.ours].sort();
  }

  /** Connects to new nodes and forgets removed ones; returns what changed. */
  sync(nodes: Iterable<KubeNode>): { added: string[]; removed: string[] } {
    const want = desiredTargets(nodes, this.init.selfNode, this.init.port);
    const added = [...want].filter((t) => !this.ours.has(t)).sort();
    const removed = [...this.ours].filter((t) => !want.has(t)).sort();
    if (removed.length > 0) {
      this.router.forget(removed);
      for (const t of removed) this.ours.delete(t);
    }
    if (added.length > 0) {
      this.router.connect(added);
      for (const t of added) this.ours.add(t);
    }
    return { added, removed };
  }
}
