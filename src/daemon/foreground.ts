import { ApiServer, type ApiListenAddress } from '../api/server.js';
import { registerRouterRoutes } from '../api/router-routes.js';
import { systemClock, type Clock } from '../core/clock.js';
import { toLoomError } from '../core/errors.js';
import { randomPeerUid } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { PeerIdentity, RouterApi } from '../mesh/types.js';
import type { LaunchConfig } from './options.js';
import { StateDir } from './state-dir.js';
import { registerCliExec, type CliExecutor } from './cli-exec.js';
import type { SubsystemFactory, SubsystemRegistry } from './subsystem.js';
import { SubsystemSet } from './subsystem-set.js';
import { createSubsystems } from './subsystems.js';

/**
 * Builds the (not yet started) router for a config; the daemon owns its lifecycle from then on.
 * `logger` is the daemon's root logger: the router and transport bind their own `component`.
 */
export type RouterFactory = (config: LaunchConfig, identity: PeerIdentity, logger: Logger) => RouterApi;

export interface DaemonComponents {
  logger: Logger;
  createRouter: RouterFactory;
  /** For the subsystems' timers; default the system clock (tests pass the router's fake clock). */
  clock?: Clock;
  /** Default: every subsystem, wired by the composition root (createSubsystems in src/daemon/subsystems.ts). */
  subsystems?: readonly SubsystemFactory[];
  /** Runs a hot command's whole command line for the native `loom` front (`POST /cli/exec`, ./cli-exec.ts); absent: no such route. */
  cliExec?: CliExecutor;
}

export interface RunningDaemon {
  readonly identity: PeerIdentity;
  readonly router: RouterApi;
  readonly api: ApiServer;
  /** The subsystems that run (a disabled one is absent), for wiring one to another. */
  readonly subsystems: SubsystemRegistry;
  /** Where the API actually listens (the port is real even when the config said 0; socket: its abstract name, or null). */
  readonly apiAddress: ApiListenAddress;
  /** Closes the API, stops the subsystems (reverse order) and the router (goodbyes), releases the pid file. Idempotent. */
  stop(): Promise<void>;
  /** Resolves once `stop` (from a call, `/stop` or a signal) has finished. */
  readonly stopped: Promise<void>;
}

/**
 * Starts a daemon in this process: claims the state dir, builds the router and the subsystems
 * (which open their gossip channels and register their API parts), starts the router, then each
 * subsystem, then opens the API, so an API that answers means everything is ready. On any
 * failure everything already started is undone and the error (a LoomError) is thrown.
 */
export async function startDaemon(components: DaemonComponents, launchConfig: LaunchConfig): Promise<RunningDaemon> {
  const { logger } = components;
  // In Kubernetes without --ipalloc-init: the cluster size for IPAM's consensus is the node count (loaded only then).
  let config = launchConfig;
  if (config.kube?.sizeFromNodes) {
    const nodes = await (await import('../kube/cluster-size.js')).clusterSizeFromNodes(config.kube, logger);
    config = { ...config, ipam: { ...config.ipam, init: `consensus=${nodes}` } };
  }
  const stateDir = new StateDir(config.stateDir);
  stateDir.ensure();
  stateDir.acquire();
  let router: RouterApi | null = null;
  let api: ApiServer | null = null;
  let subsystems: SubsystemSet | null = null;
  try {
    const identity: PeerIdentity = { name: stateDir.peerName(config.name), nickname: config.nickname, uid: randomPeerUid() };
    router = components.createRouter(config, identity, logger);
    api = new ApiServer({ logger: logger.child({ component: 'api' }) }, { host: config.httpHost, port: config.httpPort, socket: config.apiSocket });
    subsystems = new SubsystemSet(components.subsystems ?? createSubsystems(), { router, api, logger, clock: components.clock ?? systemClock, stateDir, config });
    let stopping: Promise<void> | null = null;
    let markStopped: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (markStopped = resolve));
    const startedRouter = router;
    const startedApi = api;
    const startedSubsystems = subsystems;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        logger.info({ component: 'daemon' }, 'stopping');
        await startedApi.close();
        await startedSubsystems.stopAll();
        try {
          await startedRouter.stop();
        } catch (err) {
          logger.error({ component: 'daemon', err: toLoomError(err).message }, 'router did not stop cleanly');
        }
        stateDir.release();
        logger.info({ component: 'daemon' }, 'stopped');
        markStopped();
      })());
    registerRouterRoutes(api, router, { onStop: () => void stop() });
    if (components.cliExec !== undefined) registerCliExec(api, components.cliExec);
    await router.start();
    await subsystems.startAll();
    const apiAddress = await api.listen();
    logger.info(
      { component: 'daemon', name: identity.name, nickname: identity.nickname, port: config.port, api: `${apiAddress.host}:${apiAddress.port}`, apiSocket: apiAddress.socket === null ? null : `@${apiAddress.socket}`, subsystems: subsystems.names() },
      'router ready',
    );
    return { identity, router, api, subsystems, apiAddress, stop, stopped };
  } catch (err) {
    await api?.close();
    await subsystems?.stopAll();
    await router?.stop().catch(() => {});
    stateDir.release();
    throw toLoomError(err);
  }
}

/**
 * Foreground mode's tail: SIGTERM/SIGINT (or `/stop`) => orderly stop. Resolves when stopped;
 * the caller then exits 0. Handlers are removed afterwards.
 */
export async function runUntilStopped(daemon: RunningDaemon, logger: Logger): Promise<void> {
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ component: 'daemon', signal }, 'signal received');
    void daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await daemon.stopped;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
