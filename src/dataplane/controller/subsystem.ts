/**
 * The data plane as a daemon subsystem: the controller over the real kernel (LinuxDataplane in
 * the router's network namespace), report section "dataplane".
 *
 * Contracts:
 * - The gossip channel opens when the factory runs (before the router starts).
 * - `start` applies once and waits for it, so the bridge exists before containers attach; a
 *   failure there is logged and retried, not fatal (status shows it as lastError).
 * - `stop` leaves bridge, vxlan device and FDB in place (flows survive a router restart or crash).
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { LoomError } from '../../core/errors.js';
import type { Subsystem, SubsystemFactory } from '../../daemon/subsystem.js';
import { systemRunner } from '../../os/runner.js';
import { LinuxDataplane } from '../linux/linux-dataplane.js';
import { DataplaneController } from './controller.js';
import { fileMemory } from './memory.js';
import { join } from 'node:path';
import { segmentMtu } from './settings.js';

export const DATAPLANE_SUBSYSTEM = 'dataplane';

export class DataplaneSubsystem implements Subsystem {
  readonly name = DATAPLANE_SUBSYSTEM;
  constructor(readonly controller: DataplaneController) {}

  async start(): Promise<void> {
    this.controller.start();
    await this.controller.applyNow();
  }

  stop(): Promise<void> {
    return this.controller.stop();
  }
}

/**
 * True if this process is (as far as we can tell) in the host's own network namespace: the same
 * as PID 1's; or, where PID 1's cannot be read (sandboxes), not any namespace named by `ip netns`.
 */
export function inInitialNetns(): boolean {
  let self: string;
  try {
    self = readlinkSync('/proc/self/ns/net');
  } catch {
    return true;
  }
  try {
    return self === readlinkSync('/proc/1/ns/net');
  } catch {
    // Fall through: PID 1 is not ours to inspect.
  }
  try {
    const ino = statSync('/proc/self/ns/net').ino;
    return !readdirSync('/run/netns').some((name) => {
      try {
        return statSync(join('/run/netns', name)).ino === ino;
      } catch {
        return false;
      }
    });
  } catch {
    return true;
  }
}

/**
 * LOOM_DATAPLANE: 'on', 'off', or 'auto' (default): on, except in the host's initial network
 * namespace, where it must be asked for. Reason: daemons started by unit tests run there, and
 * they must never create links in the root namespace of the machine running the tests.
 * (To become a `loom launch --dataplane=on|off|auto` flag in LaunchConfig.)
 */
export function dataplaneEnabled(env: NodeJS.ProcessEnv = process.env, initial: () => boolean = inInitialNetns): boolean {
  const mode = env['LOOM_DATAPLANE'] ?? 'auto';
  if (mode === 'on') return true;
  if (mode === 'off') return false;
  if (mode !== 'auto') throw new LoomError('ERR_INVALID_ARGUMENT', `invalid LOOM_DATAPLANE "${mode.slice(0, 20)}": on, off or auto`);
  return !initial();
}

export const dataplaneSubsystemFactory: SubsystemFactory = {
  name: DATAPLANE_SUBSYSTEM,
  create({ router, api, logger, clock, config, stateDir }) {
    if (!dataplaneEnabled()) {
      logger.warn({}, 'kernel data plane off (LOOM_DATAPLANE; auto = off in the initial network namespace)');
      return null;
    }
    // `mtu` joins LaunchConfig with `loom launch --mtu`; until then LOOM_MTU sets it.
    const mtu = segmentMtu((config as { mtu?: unknown }).mtu);
    const controller = new DataplaneController(
      { router, dataplane: new LinuxDataplane({ runner: systemRunner, logger }), clock, logger, memory: fileMemory(join(stateDir.path, 'dataplane.json')) },
      { mtu },
    );
    api.registerReportSection(DATAPLANE_SUBSYSTEM, () => controller.status());
    return new DataplaneSubsystem(controller);
  },
};
