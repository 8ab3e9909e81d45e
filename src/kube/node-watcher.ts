/**
 * Keeps the set of the cluster's nodes current: list, then watch from the list's
 * resourceVersion with bookmarks, the way an informer does.
 *
 * - A watch that the server ends (its timeoutSeconds) is resumed at once from the last
 *   resourceVersion seen (an event's or a bookmark's): nothing is missed, nothing re-listed.
 * - 410 Gone (as the HTTP status or as an ERROR event in the stream) means that version is too
 *   old: list again and replace the whole set (nodes deleted meanwhile disappear then).
 * - A dropped connection or a failed list waits a backoff (full jitter, 0.5 s .. 30 s) first.
 * `onChange` runs after every change of the set (not for bookmarks); `synced` is true once a
 * list has succeeded: only then does the absence of a node mean anything.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { Backoff } from '../mesh/backoff.js';
import { type KubeApi, KubeStatusError, statusMessage } from './client.js';
import { type KubeNode, parseNodeList, parseNodeWatchEvent } from './nodes.js';

export const NODES_PATH = '/api/v1/nodes';
/** How long the server keeps one watch open (it picks a random time near this if it caps it). */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;

export interface NodeWatcherComponents {
  api: KubeApi;
  clock: Clock;
  logger: Logger;
}

export interface NodeWatcherInit {
  onChange: (nodes: ReadonlyMap<string, KubeNode>) => void;
  watchTimeoutSeconds?: number;
  backoff?: Backoff;
}

export interface NodeWatcherStatus {
  synced: boolean;
  nodes: number;
  resourceVersion: string | null;
  lists: number;
  watches: number;
  /** 410 Gone answers that made us list again. */
  relists: number;
  /** Watches that broke (connection dropped, bad answer) rather than ended. */
  watchFailures: number;
  lastError: string | null;
}

class Gone extends Error {}

export class NodeWatcher {
  private readonly api: KubeApi;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onChange: NodeWatcherInit['onChange'];
  private readonly watchTimeoutSeconds: number;
  private readonly backoff: Backoff;
  private readonly current = new Map<string, KubeNode>();
  private abort = new AbortController();
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeTimer: TimerHandle | null = null;
  private wake: (() => void) | null = null;
  private readonly stats: NodeWatcherStatus = { synced: false, nodes: 0, resourceVersion: null, lists: 0, watches: 0, relists: 0, watchFailures: 0, lastError: null };

  constructor(components: NodeWatcherComponents, init: NodeWatcherInit) {
    this.api = components.api;
    this.clock = components.clock;
    this.logger = components.logger;
    this.onChange = init.onChange;
    this.watchTimeoutSeconds = init.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    this.backoff = init.backoff ?? new Backoff({ baseMs: 500, capMs: 30_000, minMs: 200 });
  }

  get nodes(): ReadonlyMap<string, KubeNode> {
    return this.current;
  }

  get synced(): boolean {
    return this.stats.synced;
  }

  status(): NodeWatcherStatus {
    return { ...this.stats, nodes: this.current.size };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.run();
  }

  /** Ends the watch and waits for the loop to finish. Idempotent. */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.wakeTimer?.cancel();
    this.wake?.();
    await this.loop;
    this.loop = null;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.list();
      } catch (err) {
        await this.failed('list', err);
        continue;
      }
      // Watch until the version is gone (relist) or we stop.
      while (this.running) {
        const started = this.clock.now();
        try {
          await this.watchFrom();
          this.backoff.reset();
          // A server that ends watches at once would make this a busy loop.
          if (this.clock.now() - started < 1_000) await this.sleep(this.backoff.next());
        } catch (err) {
          if (err instanceof Gone) {
            this.stats.relists++;
            this.logger.info({ resourceVersion: this.stats.resourceVersion }, 'node watch: resourceVersion too old (410 Gone), listing again');
            break;
          }
          this.stats.watchFailures++;
          await this.failed('watch', err);
        }
      }
    }
  }

  private async list(): Promise<void> {
    const res = await this.api.request('GET', NODES_PATH);
    if (res.status !== 200) throw new LoomError('ERR_UNAVAILABLE', `list nodes: ${res.status} ${statusMessage(res.body)}`);
    const list = parseNodeList(res.body);
    this.stats.lists++;
    this.current.clear();
    for (const node of list.nodes) this.current.set(node.name, node);
    this.stats.synced = true;
    this.stats.resourceVersion = list.resourceVersion;
    this.backoff.reset();
    this.logger.info({ nodes: this.current.size, resourceVersion: list.resourceVersion }, 'listed nodes');
    this.onChange(this.current);
  }

  /**
   * One watch from the last resourceVersion seen (`stats.resourceVersion`, moved by every event
   * and bookmark, so a watch that breaks resumes where it was); resolves when the server ends it.
   */
  private async watchFrom(): Promise<void> {
    const rv = this.stats.resourceVersion ?? '';
    const query = new URLSearchParams({ watch: '1', resourceVersion: rv, allowWatchBookmarks: 'true', timeoutSeconds: String(this.watchTimeoutSeconds) });
    this.stats.watches++;
    await this.api
      .watch(`${NODES_PATH}?${query.toString()}`, (raw) => {
        const event = parseNodeWatchEvent(raw);
        switch (event.type) {
          case 'ADDED':
          case 'MODIFIED':
            this.current.set(event.node.name, event.node);
            break;
          case 'DELETED':
            this.current.delete(event.node.name);
            break;
          case 'BOOKMARK':
            this.stats.resourceVersion = event.resourceVersion;
            return;
          case 'ERROR':
            // Thrown out of the stream: the client ends the watch and rejects with it.
            if (event.code === 410) throw new Gone();
            throw new LoomError('ERR_UNAVAILABLE', `node watch error ${event.code}: ${event.message}`);
          default:
            return assertNever(event);
        }
        if (event.resourceVersion !== undefined) this.stats.resourceVersion = event.resourceVersion;
        this.onChange(this.current);
      }, this.abort.signal)
      .catch((err: unknown) => {
        throw err instanceof KubeStatusError && err.status === 410 ? new Gone() : err;
      });
  }

  private async failed(what: string, err: unknown): Promise<void> {
    if (!this.running) return;
    const message = toLoomError(err).message;
    this.stats.lastError = `${what}: ${message}`;
    const delay = this.backoff.next();
    this.logger.warn({ err: message, retryInMs: delay }, `node ${what} failed`);
    await this.sleep(delay);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (!this.running) return resolve();
      this.wake = resolve;
      this.wakeTimer = this.clock.setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
    });
  }
}

function assertNever(x: never): never {
  throw new LoomError('ERR_INTERNAL', `unhandled watch event ${JSON.stringify(x)}`);
}
