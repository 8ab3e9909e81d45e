import { join } from 'node:path';
import type { EventSink } from '../core/events.js';
import type { ApiServer } from '../api/server.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RouterApi } from '../mesh/types.js';
import { IpamSubsystem, type IpamSubsystemInit } from './daemon.js';
import { registerIpamApi } from './daemon-api.js';
import type { IpamLaunchConfig } from './daemon-options.js';
import { IPAM_DB_FILES, SqliteStore, type SqliteStoreOptions } from './store-sqlite.js';

/** What the launch options do not set: timers for tests, store options for the bench. */
export type IpamFactoryOverrides = Pick<IpamSubsystemInit, 'releaseGraceMs' | 'allocateTimeoutMs' | 'donationTimeoutMs' | 'consensusSettleMs' | 'statsDelayMs'> & {
  store?: SqliteStoreOptions;
};

export interface IpamBuildComponents {
  /** Constructed, not yet started. */
  router: RouterApi;
  /** Not yet listening: the IPAM routes and metrics are added here. */
  api: ApiServer;
  logger: Logger;
  clock: Clock;
  events?: EventSink;
}

export interface IpamBuildInit {
  options: IpamLaunchConfig;
  stateDir: string;
  /** The state dir's peer-name file: a reset removes it with the database. */
  peerNameFile: string;
  /** A bare `consensus` expects this many peers (1 + the peers given at launch, as Weave does). */
  expectedPeers: number;
  overrides?: IpamFactoryOverrides;
}

/**
 * The daemon's IPAM: the ring on gossip channel "ipam", state in STATE_DIR/ipam.db (WAL, group
 * commit), and its API routes and metrics. Called by the composition root (src/daemon/subsystems.ts).
 */
export function createIpamSubsystem(components: IpamBuildComponents, init: IpamBuildInit): IpamSubsystem {
  const { store: storeOptions, ...timers } = init.overrides ?? {};
  const { router, api, logger, clock, events } = components;
  const options = init.options;
  const store = new SqliteStore(init.stateDir, { groupCommit: true, ...storeOptions });
  try {
    const ipam = new IpamSubsystem(
      { router, clock, logger, store, ...(events ? { events } : {}), stateFiles: [...IPAM_DB_FILES.map((f) => join(init.stateDir, f)), init.peerNameFile] },
      {
        ...timers,
        range: options.range,
        ...(options.defaultSubnet === undefined ? {} : { defaultSubnet: options.defaultSubnet }),
        bootstrap: options.init,
        expectedPeers: init.expectedPeers,
      },
    );
    registerIpamApi(api, ipam);
    return ipam;
  } catch (err) {
    store.close();
    throw err;
  }
}
