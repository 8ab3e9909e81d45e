import { LoomError } from '../../../src/core/errors.js';
import type { DataPath } from '../types.js';

const notReady = async (): Promise<never> => {
  throw new LoomError('ERR_UNAVAILABLE', 'this Loom path is not built yet');
};

/**
 * Loom's own rows. Each becomes real by replacing `pending` + `setup` with a setup that launches
 * a Loom router in each lab host (`loom launch` with the host's address, peer = the other host),
 * attaches containers c1/c2 (`addContainer` is the hand-made equivalent), forces the wanted path
 * (fast path / relay plain / relay encrypted), waits for ping, and returns the routers' PIDs.
 */
export const loomPaths: DataPath[] = [
  {
    id: 'loom-fast',
    label: 'Loom fast path (kernel VXLAN, FDB by the router)',
    group: 'loom',
    encrypted: false,
    requires: [],
    pending: 'src/dataplane + src/containers not wired into the bench yet',
    target: { minMbpsVsVxlan: 0.9, maxRttVsVxlan: 1.2 },
    setup: notReady,
  },
  {
    id: 'loom-relay',
    label: 'Loom relay, plain (kernel encapsulates, Node relays)',
    group: 'loom',
    encrypted: false,
    requires: [],
    pending: 'the user-space relay does not exist yet',
    setup: notReady,
  },
  {
    id: 'loom-relay-enc',
    label: 'Loom relay, encrypted',
    group: 'loom',
    encrypted: true,
    requires: [],
    pending: 'the encrypted relay does not exist yet',
    target: { minMbpsVsBestPeer: 1.0 },
    setup: notReady,
  },
];
