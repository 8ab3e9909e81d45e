/**
 * Several sources of local container MACs (Loom's own containers and attachments, Docker
 * endpoints, CNI attachments) feeding the one data plane sink, which takes the whole set at
 * once: each source replaces its own part, and the sink gets the union.
 */
import type { LocalMacSink } from '../containers/daemon.js';

export class LocalMacSources {
  private readonly parts = new Map<string, ReadonlySet<string>>();

  constructor(private readonly sink: LocalMacSink | undefined) {}

  /** A sink for one source; its `setLocalMacs` replaces that source's MACs only. */
  source(name: string): LocalMacSink {
    return {
      setLocalMacs: (macs: Iterable<string>) => {
        this.parts.set(name, new Set(macs));
        this.publish();
      },
    };
  }

  private publish(): void {
    if (!this.sink) return;
    const all = new Set<string>();
    for (const part of this.parts.values()) for (const mac of part) all.add(mac);
    this.sink.setLocalMacs(all);
  }
}
