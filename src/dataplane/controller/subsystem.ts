/**
 * The data plane as a daemon subsystem: the controller over the real kernel (LinuxDataplane in
 * the router's network namespace) and the user-space relay on the router's data port (UDP, the
 * same number as the TCP port, all addresses), report section "dataplane".
 *
 * Contracts:
 * - The gossip channel opens when the factory runs (before the router starts).
 * - `start` binds the relay (a taken port fails the daemon: ERR_CONFLICT), then applies once and
 *   waits for it, so the bridge exists before containers attach; an apply failure there is
 *   logged and retried, not fatal (status shows it as lastError).
 * - `stop` closes the relay but leaves bridge, vxlan device and FDB in place (fast-path flows
 *   survive a router restart or crash; relayed ones resume when the relay is back).
 * - Egress (forwarding + the masquerade table, egress.ts): applied in `start` after the bridge,
 *   left in place by `stop` (see controller/egress.ts); report section `dataplane.egress`.
 * - Relayed frames meet the kernel through the relay's TAP device `tap-loom` on the bridge
 *   (opened in `start`, gone with the process), or, with LOOM_RELAY_PATH=vxlan-port or without
 *   /dev/net/tun, through kernel VXLAN FDB entries to one local UDP port per peer (the first
 *   design, kept as a fallback: one frame per datagram both ways, no TSO).
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { Clock } from '../../core/clock.js';
import type { EventSink } from '../../core/events.js';
import type { Subsystem } from '../../core/subsystem.js';
import type { RouterApi } from '../../mesh/types.js';
import { systemRunner } from '../../os/runner.js';
import { TapDevice } from '../../os/tap.js';
import { LinuxDataplane } from '../linux/linux-dataplane.js';
import { LinuxEgress } from '../linux/egress.js';
import { applyGuard, type GuardSpec } from '../linux/guard.js';
import { validateEgressSpec } from '../egress.js';
import { Relay } from '../relay/relay.js';
import { ETHERNET_HEADER_BYTES, VXLAN_HEADER_BYTES } from '../relay/wire.js';
import { DataplaneController, type DataplaneStatus } from './controller.js';
import { EgressController, type EgressStatus } from './egress.js';
import type { DataplaneLaunchConfig, DataplaneMode, RelayPath } from './launch-options.js';
import { fileMemory } from './memory.js';
import type { DataplaneMetricsSnapshot } from './metrics.js';
import { RelayDriver } from './relay-driver.js';
import { TAP_NAME, VXLAN_OVERHEAD, VXLAN_PORT } from './settings.js';
import { parseTrustedSubnets } from './trusted-subnets.js';

/** Ethernet header (14) + VXLAN header (8) around a container's IP packet on the relay. */
const RELAY_FRAME_OVERHEAD_BYTES = ETHERNET_HEADER_BYTES + VXLAN_HEADER_BYTES;
/** With probes every 200 ms and 4 failures to go down (relay-driver.ts): a blocked path is noticed within 1.2 s. */
const RELAY_PROBE_TIMEOUT_MS = 400;

export const DATAPLANE_SUBSYSTEM = 'dataplane';
/** How many of a peer's container MACs the report lists (the count is always whole). */
export const REPORT_MACS_PER_PEER = 64;

/** The `guard` part of the data plane's report (../linux/guard.ts). */
export interface GuardStatus {
  applied: boolean;
  lastError: string | null;
}

export class DataplaneSubsystem implements Subsystem {
  readonly name = DATAPLANE_SUBSYSTEM;
  private tap: TapDevice | null = null;
  private guardStatus: GuardStatus = { applied: false, lastError: null };

  constructor(
    readonly controller: DataplaneController,
    readonly relay: Relay | null = null,
    readonly driver: RelayDriver | null = null,
    /** The TAP device to open for the relay, or null (vxlan-port path). */
    private readonly tapName: string | null = null,
    /** Forwarding and masquerade for containers' traffic to the outside; null = leave them alone. */
    readonly egress: EgressController | null = null,
    /** The control ports closed to the bridge, and the VXLAN port closed to the network with a password; null = none. */
    private readonly guard: { spec: GuardSpec; apply: (spec: GuardSpec) => Promise<void>; logger: Logger } | null = null,
  ) {}

  async start(): Promise<void> {
    if (this.relay && this.driver) {
      await this.relay.start();
      if (this.tapName !== null && this.tap === null) {
        const relay = this.relay;
        this.tap = TapDevice.open(this.tapName, relay.onDeviceFrame, { onBatchEnd: relay.onDeviceBatchEnd });
        relay.attachDevice(this.tap);
      }
      await this.driver.start();
    }
    this.controller.start();
    await this.controller.applyNow();
    await this.egress?.start();
    await this.applyGuard();
  }

  /** Once, at start; a failure (no nft) is logged loudly and shown in the report, never fatal. */
  private async applyGuard(): Promise<void> {
    if (this.guard === null) return;
    try {
      await this.guard.apply(this.guard.spec);
      this.guardStatus = { applied: true, lastError: null };
      this.guard.logger.info({ spec: this.guard.spec }, 'guard applied: control ports closed to the bridge');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.guardStatus = { applied: false, lastError: message };
      this.guard.logger.error({ err: message }, 'guard NOT applied: containers may reach the control ports through the overlay');
    }
  }

  /** What `/metrics` reads at each scrape (metrics.ts): the controller's rows, the relay's counters and neighbours. */
  metricsSnapshot(nicknameOf: (peer: PeerName) => string | undefined): DataplaneMetricsSnapshot {
    const status = this.controller.status();
    const relay = this.relay && this.driver ? { stats: this.relay.stats(), neighbours: this.driver.status().neighbours } : null;
    return { peers: status.peers, applies: status.applies, failing: status.lastError !== null, relay, nicknameOf };
  }

  /**
   * The `dataplane` section of `/report`; `remoteMacs`: every other peer's container MACs as
   * gossiped (the first REPORT_MACS_PER_PEER of each, and how many in all), for the live page.
   */
  report(): DataplaneStatus & { egress?: EgressStatus; guard?: GuardStatus; remoteMacs: Array<{ peer: string; count: number; macs: string[] }> } {
    const self = this.controller.gossip.self;
    const remoteMacs = this.controller.gossip
      .entries()
      .filter((e) => e.peer !== self && e.macs.length > 0)
      .map((e) => ({ peer: e.peer, count: e.macs.length, macs: e.macs.slice(0, REPORT_MACS_PER_PEER) }));
    return { ...this.controller.status(), ...(this.egress ? { egress: this.egress.status() } : {}), ...(this.guard ? { guard: this.guardStatus } : {}), remoteMacs };
  }

  async stop(): Promise<void> {
    this.egress?.stop();
    await this.controller.stop();
    await this.driver?.stop();
    await this.relay?.stop();
    this.relay?.attachDevice(null);
    this.tap?.close();
    this.tap = null;
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
 * Whether the data plane runs, and why not. `auto` is on, except (1) without root, which cannot
 * create links, and (2) in the host's initial network namespace under the node test runner
 * (`underTestRunner`, NODE_TEST_CONTEXT read in launch-options.ts): a backstop so that a unit test which forgets `--dataplane off` never
 * creates links in the root namespace of the machine running the tests. A real `loom launch` in
 * a host's root namespace is the normal case and gets the data plane.
 */
export function dataplaneEnabled(
  mode: DataplaneMode,
  underTestRunner: boolean,
  initial: () => boolean = inInitialNetns,
  uid: number | undefined = process.getuid?.(),
): { on: boolean; why: string } {
  if (mode === 'on') return { on: true, why: '--dataplane on' };
  if (mode === 'off') return { on: false, why: '--dataplane off' };
  if (uid !== undefined && uid !== 0) return { on: false, why: 'auto: not root (cannot create links)' };
  if (underTestRunner && initial()) return { on: false, why: 'auto: a test run in the initial network namespace' };
  return { on: true, why: 'auto' };
}

export interface DataplaneBuildComponents {
  /** Constructed, not yet started. */
  router: RouterApi;
  logger: Logger;
  clock: Clock;
  /** Path changes go here (the daemon's event log). */
  events?: EventSink;
}

export interface DataplaneBuildInit {
  options: DataplaneLaunchConfig;
  /** The router's port: the relay's UDP data port has the same number. */
  port: number;
  /** The mesh has a password: the relay seals. */
  encrypted: boolean;
  stateDir: string;
  /** The Loom allocation range (--ipalloc-range): what egress masquerades. */
  egressRange: string;
  /** The TCP port of the read-only API listener (--http-addr), closed to the bridge; 0 = none. */
  apiPort: number;
}

/**
 * The daemon's data plane, or null when `dataplaneEnabled` says no (logged). Called by the
 * composition root (src/daemon/subsystems.ts); the gossip channel opens here.
 */
export function createDataplaneSubsystem({ router, logger, clock, events }: DataplaneBuildComponents, init: DataplaneBuildInit): DataplaneSubsystem | null {
  const options = init.options;
  const enabled = dataplaneEnabled(options.mode, options.underTestRunner);
  if (!enabled.on) {
    logger.warn({ reason: enabled.why }, 'kernel data plane and relay off');
    return null;
  }
  const encrypted = init.encrypted;
  // The relay carries frames up to the segment MTU (+ Ethernet 14 + VXLAN 8 bytes) and answers a
  // bigger DF frame with ICMP fragmentation-needed, so a container with a larger MTU adapts.
  // Every peer uses the same --mtu (one MTU per segment), hence the same limit.
  const path = options.relayPath;
  const relay = new Relay(
    { clock, logger },
    {
      self: router.mesh.self,
      dataPort: init.port,
      encrypt: encrypted,
      maxPayloadBytes: options.mtu + RELAY_FRAME_OVERHEAD_BYTES,
      maxFrameBytes: options.mtu + ETHERNET_HEADER_BYTES,
      probeTimeoutMs: RELAY_PROBE_TIMEOUT_MS,
    },
  );
  let controller: DataplaneController | null = null;
  const driver = new RelayDriver(
    { router, relay, clock, logger, onChange: () => controller?.schedule() },
    { encrypted, path, openProbeBytes: options.mtu + VXLAN_OVERHEAD },
  );
  controller = new DataplaneController(
    {
      router,
      dataplane: new LinuxDataplane({ runner: systemRunner, logger }),
      clock,
      logger,
      memory: fileMemory(join(init.stateDir, 'dataplane.json')),
      relay: () => driver.facts(),
      relayForwarding: (table) => relay.setForwarding(table),
      relayStatus: () => ({ ...driver.status(), stats: relay.stats() }),
      ...(events ? { events } : {}),
    },
    { mtu: options.mtu, policy: { forceRelay: !options.fastdp, trustedSubnets: parseTrustedSubnets(options.trustedSubnets) } },
  );
  const egressLogger = logger.child({ component: 'egress' });
  const egress = new EgressController(
    { applier: new LinuxEgress({ runner: systemRunner, logger: egressLogger }), clock, logger: egressLogger },
    validateEgressSpec({ range: init.egressRange, bridge: controller.settings.bridge, masquerade: options.masquerade }),
  );
  const guard: GuardSpec = {
    bridge: controller.settings.bridge,
    tcpPorts: [init.port, init.apiPort].filter((p) => p > 0),
    udpPorts: [init.port, VXLAN_PORT],
    vxlanPort: VXLAN_PORT,
    sealed: encrypted,
    trustedSubnets: options.trustedSubnets,
  };
  logStart(logger, options.mtu, encrypted, options.fastdp, options.trustedSubnets, path);
  return new DataplaneSubsystem(controller, relay, driver, path === 'tap' ? TAP_NAME : null, egress, { spec: guard, apply: (spec) => applyGuard(systemRunner, spec), logger: logger.child({ component: 'guard' }) });
}

function logStart(logger: Logger, mtu: number, encrypted: boolean, fastdp: boolean, trusted: string[], relayPath: RelayPath): void {
  logger.info({ mtu, encrypted, fastdp, trustedSubnets: trusted, relayPath }, 'data plane: kernel VXLAN + user-space relay');
}
