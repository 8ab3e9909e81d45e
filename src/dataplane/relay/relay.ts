/**
 * The user-space relay ("sleeve"): carries containers' frames between hosts over UDP when the
 * kernel fast path cannot, sealed per hop with keys derived from the mesh connections, never in a
 * datagram bigger than the path MTU (docs/DATAPLANE.md, "The relay on real networks").
 *
 *   TAP device --> device-egress.ts (MAC -> peer; split to the path MTU) --> transmit.ts (seal in
 *   place, GSO trains, one sendmmsg per turn) --> UDP (DF) --> receive.ts (checks, open in place)
 *   --> coalesce.ts (segments back into super-frames) --> TAP device, or on to the next hop
 *
 * This file is the relay's configuration and lifecycle; the parts share one RelayState
 * (state.ts). Probes and path MTU discovery live in probes.ts and pmtu.ts, the VXLAN-port path
 * (no TAP) in port-path.ts.
 *
 * Hot path contract: no logging, no promises or closures per packet, counters only; every bad
 * datagram is dropped and counted under one DropReason, never thrown.
 */
import type { Clock } from '../../core/clock.js';
import { LoomError } from '../../core/errors.js';
import { parsePeerName, type PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { SessionKeys } from '../../mesh/types.js';
import type { UdpEndpointOptions } from '../../os/udp-endpoint.js';
import { formatUdpAddress, parseUdpAddress, type UdpAddress } from './address.js';
import { Coalescer } from './coalesce.js';
import { DeviceEgress, type FrameDevice, type RelayForwarding } from './device-egress.js';

export type { FrameDevice };
import { openUdpEndpoint, type DatagramEndpoint, type EndpointFactory } from './endpoint.js';
import { sameSessionKeys } from './keys.js';
import { NeighbourState } from './neighbour.js';
import { PortPath } from './port-path.js';
import { Prober, type ReachabilityListener } from './probes.js';
import { Receiver } from './receive.js';
import { createRelaySocket, type SocketFactory } from './socket.js';
import { RelayState } from './state.js';
import type { RelayStats } from './stats.js';
import { ETHERNET_HEADER_BYTES, MAX_BATCH_BYTES, MAX_BODY_BYTES, VNET_HEADER_BYTES, VXLAN_HEADER_BYTES } from './wire.js';

export type { ReachabilityListener } from './probes.js';
export type { RelayForwarding } from './device-egress.js';

export interface RelayComponents {
  clock: Clock;
  logger: Logger;
  /** node:dgram sockets of the VXLAN-port path (default: udp4, 4 MiB buffers). */
  socketFactory?: SocketFactory;
  /** The data and check ports (default: src/os/udp-endpoint.ts); tests wrap it to record the wire. */
  endpointFactory?: EndpointFactory;
}

export interface RelayInit {
  self: PeerName;
  /** UDP port between relays on the underlay (default 6783, the router's data port); 0 = any. */
  dataPort?: number;
  /** Address the data port binds (default '0.0.0.0'). */
  bindAddress?: string;
  /** Seal data with ChaCha20-Poly1305. Probes are sealed whenever a neighbour has keys. */
  encrypt: boolean;
  /** The kernel VXLAN port in this network namespace, where received frames are injected (default 4789). */
  localVxlanPort?: number;
  /** Largest VXLAN datagram carried on the VXLAN-port path (default 9216); larger ones are dropped as 'oversized'. */
  maxPayloadBytes?: number;
  /**
   * Largest Ethernet frame (not a GSO super-frame) taken from the TAP device (default
   * maxPayloadBytes - 8): the segment MTU + 14. Bigger ones are dropped; IPv4 with DF set gets
   * ICMP fragmentation-needed back. Each neighbour's path MTU may cut lower.
   */
  maxFrameBytes?: number;
  /** A reachability probe without an answer after this long reports unreachable (default 1000 ms). */
  probeTimeoutMs?: number;
  /**
   * Small frames of one turn to one neighbour share a datagram up to this many body bytes (and
   * never past the path MTU), 0..MAX_BATCH_BYTES (default DEFAULT_BATCH_BYTES); 0 = one frame per
   * datagram.
   */
  batchBytes?: number;
  /** The largest underlay IP packet this host can send (its underlay interface MTU), when known. */
  underlayMtu?: number;
}

export const DEFAULT_BATCH_BYTES = 8192;

export interface NeighbourConfig {
  /** The neighbour's data address, "ip:port". */
  address: string;
  /** The mesh connection's session keys; null only when not encrypting. */
  keys: SessionKeys | null;
}

export class Relay {
  private readonly state: RelayState;
  private readonly endpointFactory: EndpointFactory;
  private readonly dataPort: number;
  private readonly bindAddress: string;
  private readonly underlayMtu: number | undefined;
  private readonly prober: Prober;
  private readonly receiver: Receiver;
  private readonly egress: DeviceEgress;
  private readonly portPath: PortPath;
  private readonly coalescer: Coalescer;
  private device: FrameDevice | null = null;
  /** The address each neighbour was configured with; a probe-learned address wins until this changes. */
  private readonly configuredAddresses = new Map<PeerName, string>();
  private dataEndpoint: DatagramEndpoint | null = null;
  /** Sends unsolicited probes (a port no peer has heard from) and receives their answers. */
  private checkEndpoint: DatagramEndpoint | null = null;
  private running = false;

  constructor(components: RelayComponents, init: RelayInit) {
    const logger = components.logger.child({ component: 'relay' });
    const self = parsePeerName(init.self);
    this.state = new RelayState(self, init.encrypt, components.clock, logger);
    this.endpointFactory = components.endpointFactory ?? openUdpEndpoint;
    this.dataPort = checkPort(init.dataPort ?? 6783, 'dataPort', true);
    this.bindAddress = init.bindAddress ?? '0.0.0.0';
    const localVxlanPort = checkPort(init.localVxlanPort ?? 4789, 'localVxlanPort', false);
    const maxPayloadBytes = init.maxPayloadBytes ?? 9216;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < VXLAN_HEADER_BYTES + ETHERNET_HEADER_BYTES || maxPayloadBytes > 65_000) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'maxPayloadBytes must be an integer in 22..65000');
    }
    const batchBytes = init.batchBytes ?? DEFAULT_BATCH_BYTES;
    if (!Number.isInteger(batchBytes) || batchBytes < 0 || batchBytes > MAX_BATCH_BYTES) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `batchBytes must be an integer in 0..${MAX_BATCH_BYTES}`);
    }
    const maxFrameBytes = init.maxFrameBytes ?? maxPayloadBytes - VXLAN_HEADER_BYTES;
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < ETHERNET_HEADER_BYTES || maxFrameBytes > MAX_BODY_BYTES - VNET_HEADER_BYTES) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `maxFrameBytes must be an integer in ${ETHERNET_HEADER_BYTES}..${MAX_BODY_BYTES - VNET_HEADER_BYTES}`);
    }
    if (init.underlayMtu !== undefined && (!Number.isInteger(init.underlayMtu) || init.underlayMtu < 576 || init.underlayMtu > 65_535)) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'underlayMtu must be an integer in 576..65535');
    }
    this.underlayMtu = init.underlayMtu;
    this.prober = new Prober(this.state, init.probeTimeoutMs ?? 1000);
    this.receiver = new Receiver(this.state, this.prober, maxPayloadBytes);
    this.egress = new DeviceEgress(this.state, maxFrameBytes);
    this.portPath = new PortPath(this.state, components.socketFactory ?? createRelaySocket, localVxlanPort, maxPayloadBytes, batchBytes);
    this.receiver.injectToKernel = this.portPath.injectToKernel;
    this.coalescer = new Coalescer(this.writeToDevice);
  }

  // ------------------------------------------------------------------------------------------
  // Configuration (the controller calls these; all idempotent)
  // ------------------------------------------------------------------------------------------

  /**
   * Adds or updates a neighbour. Same keys: counters, replay window and path MTU carry on, and an
   * address learned from the neighbour's probes is kept unless `address` differs from the last
   * one given. New keys (a new mesh connection): a fresh state.
   */
  setNeighbour(peer: PeerName, config: NeighbourConfig): void {
    const s = this.state;
    const name = parsePeerName(peer);
    if (name === s.self) throw new LoomError('ERR_INVALID_ARGUMENT', 'a relay is not its own neighbour');
    const address = parseUdpAddress(config.address);
    if (config.keys === null && s.encrypt) throw new LoomError('ERR_INVALID_ARGUMENT', `neighbour ${name} has no session keys but the relay encrypts`);
    const existing = s.neighbours.get(name);
    if (existing && sameSessionKeys(existing.sessionKeys, config.keys)) {
      if (this.configuredAddresses.get(name) !== config.address) {
        existing.address = address;
        this.configuredAddresses.set(name, config.address);
      }
      return;
    }
    existing?.cancelProbes();
    const state = new NeighbourState(name, address, config.keys, this.underlayMtu);
    s.neighbours.set(name, state);
    s.neighboursByKey.set(state.key, state);
    this.configuredAddresses.set(name, config.address);
    s.clearRoutes();
    this.prober.neighbourAdded(state);
    s.logger.info({ peer: name, address: config.address, keyed: config.keys !== null }, existing ? 'neighbour re-keyed' : 'neighbour added');
  }

  /** Idempotent. Pending probes to it are dropped without a report. */
  removeNeighbour(peer: PeerName): void {
    const s = this.state;
    const state = s.neighbours.get(peer);
    if (!state) return;
    state.cancelProbes();
    s.neighbours.delete(peer);
    s.neighboursByKey.delete(state.key);
    this.configuredAddresses.delete(peer);
    s.clearRoutes();
    s.logger.info({ peer }, 'neighbour removed');
  }

  /**
   * `nextHop(destination)` names the neighbour to send through (the destination itself when it is
   * a neighbour), or undefined. Called once per destination until the next configuration change.
   */
  setRoutes(nextHop: (destination: PeerName) => PeerName | undefined): void {
    this.state.nextHop = nextHop;
    this.state.clearRoutes();
  }

  /** VXLAN-port path: frames for `peer` arrive from the kernel on 127.0.0.1:`port` (0 = any; see localPortOf). */
  setLocalPort(peer: PeerName, port: number): Promise<void> {
    return this.portPath.setLocalPort(peer, port);
  }

  /** Idempotent. */
  removeLocalPort(peer: PeerName): Promise<void> {
    return this.portPath.removeLocalPort(peer);
  }

  /** The bound port of the listener for `peer`, or undefined when not open. */
  localPortOf(peer: PeerName): number | undefined {
    return this.portPath.localPortOf(peer);
  }

  /**
   * The TAP path's local end: frames for us are written here (coalesced). The owner feeds what
   * the device reads to `onDeviceFrame`. null detaches (frames for us are then dropped as
   * 'device-refused').
   */
  attachDevice(device: FrameDevice | null): void {
    this.device = device;
    this.egress.device = device;
    this.receiver.coalescer = device === null ? null : this.coalescer;
  }

  /**
   * The TAP path's forwarding table (replaces the last one; idempotent): a unicast frame from the
   * device goes to the peer owning its destination MAC; a group-addressed or unknown one to every
   * flood peer once (each writes it to its own bridge only, never on, so nobody gets it twice).
   */
  setForwarding(table: RelayForwarding): void {
    this.egress.setForwarding(table);
  }

  onReachability(listener: ReachabilityListener): void {
    this.prober.onReachability(listener);
  }

  /** A frame read from the TAP device (virtio-net header + Ethernet frame, up to a TSO super-frame); valid during the call only. */
  readonly onDeviceFrame = (frame: Buffer): void => this.egress.onFrame(frame);

  /** The device has been drained for now: send what its frames became without waiting for the end of the turn. */
  readonly onDeviceBatchEnd = (): void => this.state.transmitter.flush();

  // ------------------------------------------------------------------------------------------
  // Lifecycle
  // ------------------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.running) return;
    let data: DatagramEndpoint | null = null;
    let check: DatagramEndpoint | null = null;
    const open = (port: number, onReadable: () => void): DatagramEndpoint => {
      const options: UdpEndpointOptions = { address: this.bindAddress, port, onReadable };
      return this.endpointFactory(options);
    };
    try {
      data = open(this.dataPort, () => void this.receiver.drain(data!));
      check = open(0, () => void this.receiver.drain(check!));
      await this.portPath.start();
    } catch (err) {
      data?.close();
      check?.close();
      await this.portPath.stop();
      throw err;
    }
    this.dataEndpoint = data;
    this.checkEndpoint = check;
    this.state.transmitter.attach(data);
    this.prober.dataEndpoint = data;
    this.prober.checkEndpoint = check;
    this.prober.start();
    for (const n of this.state.neighbours.values()) this.prober.neighbourAdded(n);
    this.running = true;
    this.state.logger.info({ dataPort: data.port, encrypt: this.state.encrypt }, 'relay started');
  }

  /** Closes every socket and cancels probes. Idempotent; configuration is kept for a later start. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.prober.stop();
    this.state.transmitter.attach(null);
    this.prober.dataEndpoint = null;
    this.prober.checkEndpoint = null;
    this.dataEndpoint?.close();
    this.checkEndpoint?.close();
    this.dataEndpoint = null;
    this.checkEndpoint = null;
    await this.portPath.stop();
    this.state.logger.info({}, 'relay stopped');
  }

  /** The bound data address (useful with dataPort 0). Throws ERR_UNAVAILABLE when stopped. */
  dataAddress(): UdpAddress {
    if (!this.dataEndpoint) throw new LoomError('ERR_UNAVAILABLE', 'relay is not running');
    return { ip: this.bindAddress, port: this.dataEndpoint.port };
  }

  stats(): RelayStats {
    const s = this.state;
    const co = this.coalescer.stats();
    return {
      ...s.counters,
      coalescedSegments: co.merged,
      drops: { ...s.drops },
      neighbours: [...s.neighbours.values()].map((n) => ({
        peer: n.name,
        address: formatUdpAddress(n.address),
        authenticated: n.dataKeys !== null,
        sent: n.sent,
        bytesSent: n.bytesSent,
        bytesReceived: n.bytesReceived,
        pmtu: n.pmtu.current(),
        pmtuVerified: n.pmtu.isVerified(),
      })),
      gso: this.dataEndpoint?.stats().gso ?? false,
    };
  }

  // ------------------------------------------------------------------------------------------
  // Probes
  // ------------------------------------------------------------------------------------------

  /**
   * Sends one authenticated ping to the neighbour's data address; listeners hear
   * `(peer, true, rtt, unsolicited)` on the answer or `(peer, false, null, unsolicited)` after
   * probeTimeoutMs (at once when our own stack refuses it). `unsolicited`: sent from the check
   * port the peer never heard from, so a NAT or stateful firewall in front of the peer drops it as
   * it would drop the kernel's VXLAN packets. `size`: padded to this underlay IP packet size, with
   * DF (the fast path's full-size heartbeat).
   */
  probe(peer: PeerName, options: { unsolicited?: boolean; size?: number } = {}): void {
    if (!this.running) throw new LoomError('ERR_UNAVAILABLE', 'relay is not running');
    const n = this.state.neighbours.get(peer);
    if (!n) throw new LoomError('ERR_NOT_FOUND', `no neighbour ${String(peer).slice(0, 40)}`);
    this.prober.probe(n, options.unsolicited === true, options.size ?? 0);
  }

  private readonly writeToDevice = (frame: Uint8Array): boolean => {
    const device = this.device;
    if (device === null || !device.write(frame)) {
      this.state.drop('device-refused');
      return false;
    }
    this.state.counters.toDevice++;
    return true;
  };
}

function checkPort(port: number, what: string, zeroAllowed: boolean): number {
  if (!Number.isInteger(port) || port < (zeroAllowed ? 0 : 1) || port > 65535) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `${what} must be an integer port${zeroAllowed ? ' (0 = any)' : ''}`);
  }
  return port;
}
