/**
 * The `kube` subsystem as the daemon sees it before --kube-peers is known to be on: this file
 * imports only types, and the watcher, client and reclaim code load at `start` (the one daemon
 * in a hundred that runs in Kubernetes pays for them; the others never parse them).
 */
import type { Subsystem } from '../core/subsystem.js';
import { KUBE_SUBSYSTEM } from './launch-options.js';
import type { KubeReport, KubeSubsystem, KubeSubsystemComponents, KubeSubsystemInit } from './subsystem.js';

export class LazyKubeSubsystem implements Subsystem {
  readonly name = KUBE_SUBSYSTEM;
  private inner: KubeSubsystem | null = null;

  constructor(
    private readonly components: KubeSubsystemComponents,
    private readonly init: KubeSubsystemInit,
  ) {}

  async start(): Promise<void> {
    if (this.inner) return;
    const { KubeSubsystem } = await import('./subsystem.js');
    this.inner = new KubeSubsystem(this.components, this.init);
    await this.inner.start();
  }

  async stop(): Promise<void> {
    await this.inner?.stop();
  }

  report(): KubeReport | { loaded: false } {
    return this.inner?.report() ?? { loaded: false };
  }
}
