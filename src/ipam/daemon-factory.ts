import { join } from 'node:path';
import type { SubsystemFactory } from '../daemon/subsystem.js';
import { IPAM_SUBSYSTEM, IpamSubsystem, type IpamSubsystemInit } from './daemon.js';
import { registerIpamApi } from './daemon-api.js';
import { IPAM_DB_FILES, SqliteStore, type SqliteStoreOptions } from './store-sqlite.js';

/** What the launch options do not set: timers for tests, store options for the bench. */
export type IpamFactoryOverrides = Pick<IpamSubsystemInit, 'releaseGraceMs' | 'allocateTimeoutMs' | 'donationTimeoutMs' | 'consensusSettleMs' | 'statsDelayMs'> & {
  store?: SqliteStoreOptions;
};

/**
 * The daemon's IPAM: the ring on gossip channel "ipam", state in STATE_DIR/ipam.db (WAL,
 * group commit), and its API. A bare `consensus` expects 1 + the peers given at launch, as
 * Weave does.
 */
export function createIpamSubsystemFactory(overrides: IpamFactoryOverrides = {}): SubsystemFactory {
  const { store: storeOptions, ...timers } = overrides;
  return {
    name: IPAM_SUBSYSTEM,
    create({ router, api, logger, clock, stateDir, config }) {
      const options = config.ipam;
      const store = new SqliteStore(stateDir.path, { groupCommit: true, ...storeOptions });
      try {
        const ipam = new IpamSubsystem(
          { router, clock, logger, store, stateFiles: [...IPAM_DB_FILES.map((f) => join(stateDir.path, f)), stateDir.peerNameFile] },
          {
            ...timers,
            range: options.range,
            ...(options.defaultSubnet === undefined ? {} : { defaultSubnet: options.defaultSubnet }),
            bootstrap: options.init,
            expectedPeers: config.peers.length + 1,
          },
        );
        registerIpamApi(api, ipam);
        return ipam;
      } catch (err) {
        store.close();
        throw err;
      }
    },
  };
}

export const ipamSubsystemFactory: SubsystemFactory = createIpamSubsystemFactory();
