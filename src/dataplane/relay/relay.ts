/**
 * The user-space relay ("sleeve"): carries VXLAN datagrams between hosts over UDP when the kernel
 * fast path cannot, sealed per hop with keys derived from the mesh connections.
 *
 *   kernel VXLAN --(FDB dst 127.0.0.1 port P_peer)--> local socket for peer --> next hop's data port
 *   data port --> [check, open, replay window] --> ours: 127.0.0.1:localVxlanPort, else next hop
 *
 * Hot path contract: no logging, no promises or closures per packet, counters only; every bad
 * datagram is dropped and counted under one DropReason, never thrown.
 *
 * Batching: the frames the kernel hands us for one peer during one event-loop turn travel as ONE
 * datagram (one AEAD call, one send, one receive), flushed at the end of the turn (setImmediate)
 * or when the next frame would not fit `batchBytes`. A lone frame goes as a plain `data` packet.
 * Per-frame costs that remain: the kernel's datagram to us, and our injection into the kernel.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import type { Clock } from '../../core/clock.js';
import { LoomError } from '../../core/errors.js';
import { parsePeerName, peerNameFromBytes, peerNameToBytes, type PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { SessionKeys } from '../../mesh/types.js';
import { formatUdpAddress, parseUdpAddress, type UdpAddress } from './address.js';
import { FRAG_NEEDED_MAX_FRAME_BYTES, fragNeededFor, MIN_FRAG_NEEDED_MTU } from './icmp.js';
import { sameSessionKeys } from './keys.js';
import { NeighbourState } from './neighbour.js';
import { ReplayVerdict } from './replay-window.js';
import { openPacket, sealBody } from './seal.js';
import { bindSocket, closeSocket, createRelaySocket, type SocketFactory } from './socket.js';
import { zeroCounters, zeroDrops, type RelayStats } from './stats.js';
import {
  BATCH_LENGTH_BYTES,
  checkHeader,
  countBatchFrames,
  isDataType,
  isTapType,
  macKeyOf,
  MAX_BATCH_BYTES,
  MAX_BODY_BYTES,
  MAX_DATAGRAM_BYTES,
  MIN_TAP_FRAME_BYTES,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_HEADER_BYTES,
  vnetHeaderOk,
  DEFAULT_TTL,
  ETHERNET_HEADER_BYTES,
  FLAG_SEALED,
  MAX_COUNTER,
  OFFSET,
  PacketType,
  PROBE_BODY_BYTES,
  peerKeyFromBytes,
  peerKeyOf,
  readCounter,
  RELAY_HEADER_BYTES,
  RELAY_TAG_BYTES,
  VXLAN_HEADER_BYTES,
  writeHeader,
  type DropReason,
} from './wire.js';

const LOOPBACK = '127.0.0.1';
/** Routes are looked up once per destination and cached; the cache is cleared when it grows past this. */
const ROUTE_CACHE_LIMIT = 4096;

export interface RelayComponents {
  clock: Clock;
  logger: Logger;
  /** Default: udp4 sockets with 4 MiB buffers. */
  socketFactory?: SocketFactory;
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
  /** Largest VXLAN datagram carried (default 9216: jumbo frames); larger ones are dropped as 'oversized'. */
  maxPayloadBytes?: number;
  /**
   * Largest Ethernet frame (not a GSO super-frame) taken from the TAP device (default
   * maxPayloadBytes - 8): the segment MTU + 14. Bigger ones, and super-frames whose segments
   * would be bigger, are dropped; IPv4 with DF set gets ICMP fragmentation-needed back.
   */
  maxFrameBytes?: number;
  /** A probe without an answer after this long reports unreachable (default 1000 ms). */
  probeTimeoutMs?: number;
  /**
   * Largest body of one batched datagram, 0..MAX_BATCH_BYTES (default DEFAULT_BATCH_BYTES);
   * 0 = one frame per datagram. Above the underlay MTU the kernel fragments it (docs/DATAPLANE.md).
   */
  batchBytes?: number;
}

/** Measured on the lab path (docs/DATAPLANE.md, "Performance"). */
export const DEFAULT_BATCH_BYTES = 8192;
/** Plain batches are carved from slabs this big (see takeBatchBuffer). */
const SLAB_BYTES = 256 * 1024;

export interface NeighbourConfig {
  /** The neighbour's data address, "ip:port". */
  address: string;
  /** The mesh connection's session keys; null only when not encrypting. */
  keys: SessionKeys | null;
}

/**
 * `rttMs` is null when the probe timed out. `unsolicited`: the probe was sent from a port that is
 * not our data port (see `probe`), so its answer proves the peer accepts UDP nobody asked for.
 */
export type ReachabilityListener = (peer: PeerName, ok: boolean, rttMs: number | null, unsolicited: boolean) => void;

/**
 * The local end of the TAP path: where frames for our containers are written (one frame per
 * call: virtio-net header + Ethernet frame). False when the device did not take it.
 */
export interface FrameDevice {
  write(frame: Uint8Array): boolean;
}

/** Which relayed peer owns which MAC, and the peers a broadcast or unknown frame goes to. */
export interface RelayForwarding {
  macs: ReadonlyArray<{ mac: string; peer: PeerName }>;
  floodPeers: readonly PeerName[];
}

/** Bit 0 of a probe body's second word: sent from a check port; answer it, never learn its address. */
const PROBE_FLAG_UNSOLICITED = 1;

interface LocalPort {
  peer: PeerName;
  port: number;
  key: number;
  nameBytes: Buffer;
  socket: Socket | null;
  /** Frames waiting for this turn's flush: `u16 length | frame` records in batch[0..batchUsed). */
  batch: Buffer | null;
  batchUsed: number;
  batchFrames: number;
  /** In `pendingPorts` already. */
  queued: boolean;
  /** Still configured: a flush of a removed port drops its frames. */
  active: boolean;
  /** Packet types: one frame alone, and a batch (VXLAN datagrams from a port, or TAP frames). */
  single: number;
  batched: number;
}

export class Relay {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly socketFactory: SocketFactory;
  private readonly self: PeerName;
  private readonly selfKey: number;
  private readonly selfBytes: Buffer;
  private readonly dataPort: number;
  private readonly bindAddress: string;
  private readonly encrypt: boolean;
  private readonly localVxlanPort: number;
  private readonly maxPayloadBytes: number;
  private readonly probeTimeoutMs: number;
  private readonly batchBytes: number;
  /** Largest datagram accepted from a neighbour, but for TAP frames (any UDP datagram: TSO super-frames). */
  private readonly maxDatagramBytes: number;
  private readonly maxFrameBytes: number;
  /** Next-hop MTU for over-size DF frames from the TAP device; 0 = no answer possible. */
  private readonly deviceFragMtu: number;
  private device: FrameDevice | null = null;
  /** TAP path: one egress per relayed peer, the MAC table, and the peers every flood goes to. */
  private devicePorts = new Map<PeerName, LocalPort>();
  private macTable = new Map<number, LocalPort>();
  private floodPorts: LocalPort[] = [];
  /** Next-hop MTU told to senders of over-size DF frames (largest inner IP packet); 0 = no answer possible. */
  private readonly fragNeededMtu: number;
  /** Local ports holding frames for the end-of-turn flush. */
  private readonly pendingPorts: LocalPort[] = [];
  private flushScheduled = false;
  private slab: Buffer = Buffer.alloc(0);
  private slabUsed = 0;

  private readonly neighbours = new Map<PeerName, NeighbourState>();
  private readonly neighboursByKey = new Map<number, NeighbourState>();
  /** The address each neighbour was configured with; a probe-learned address wins until this changes. */
  private readonly configuredAddresses = new Map<PeerName, string>();
  private readonly localPorts = new Map<PeerName, LocalPort>();
  /** Destination key -> neighbour to send through, or null for "no route". */
  private readonly routeCache = new Map<number, NeighbourState | null>();
  private nextHop: (destination: PeerName) => PeerName | undefined;
  private readonly reachabilityListeners: ReachabilityListener[] = [];
  private nextProbeId = 0;

  private readonly counters = zeroCounters();
  private readonly drops = zeroDrops();

  private dataSocket: Socket | null = null;
  private injectSocket: Socket | null = null;
  /** Sends unsolicited probes (a port no peer has heard from) and receives their answers. */
  private checkSocket: Socket | null = null;
  private running = false;

  constructor(components: RelayComponents, init: RelayInit) {
    this.clock = components.clock;
    this.logger = components.logger.child({ component: 'relay' });
    this.socketFactory = components.socketFactory ?? createRelaySocket;
    this.self = parsePeerName(init.self);
    this.selfKey = peerKeyOf(this.self);
    this.selfBytes = Buffer.from(peerNameToBytes(this.self));
    this.dataPort = checkPort(init.dataPort ?? 6783, 'dataPort', true);
    this.bindAddress = init.bindAddress ?? '0.0.0.0';
    this.encrypt = init.encrypt;
    this.localVxlanPort = checkPort(init.localVxlanPort ?? 4789, 'localVxlanPort', false);
    this.maxPayloadBytes = init.maxPayloadBytes ?? 9216;
    if (!Number.isInteger(this.maxPayloadBytes) || this.maxPayloadBytes < VXLAN_HEADER_BYTES + ETHERNET_HEADER_BYTES || this.maxPayloadBytes > 65_000) {
      throw new LoomError('ERR_INVALID_ARGUMENT', 'maxPayloadBytes must be an integer in 22..65000');
    }
    this.probeTimeoutMs = init.probeTimeoutMs ?? 1000;
    this.batchBytes = init.batchBytes ?? DEFAULT_BATCH_BYTES;
    if (!Number.isInteger(this.batchBytes) || this.batchBytes < 0 || this.batchBytes > MAX_BATCH_BYTES) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `batchBytes must be an integer in 0..${MAX_BATCH_BYTES}`);
    }
    this.maxDatagramBytes = RELAY_HEADER_BYTES + RELAY_TAG_BYTES + Math.max(this.maxPayloadBytes, MAX_BATCH_BYTES);
    const innerIpLimit = this.maxPayloadBytes - VXLAN_HEADER_BYTES - ETHERNET_HEADER_BYTES;
    this.fragNeededMtu = innerIpLimit >= MIN_FRAG_NEEDED_MTU ? innerIpLimit : 0;
    this.maxFrameBytes = init.maxFrameBytes ?? this.maxPayloadBytes - VXLAN_HEADER_BYTES;
    if (!Number.isInteger(this.maxFrameBytes) || this.maxFrameBytes < ETHERNET_HEADER_BYTES || this.maxFrameBytes > MAX_BODY_BYTES - VNET_HEADER_BYTES) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `maxFrameBytes must be an integer in ${ETHERNET_HEADER_BYTES}..${MAX_BODY_BYTES - VNET_HEADER_BYTES}`);
    }
    const deviceIpLimit = this.maxFrameBytes - ETHERNET_HEADER_BYTES;
    this.deviceFragMtu = deviceIpLimit >= MIN_FRAG_NEEDED_MTU ? deviceIpLimit : 0;
    this.nextHop = (destination) => (this.neighbours.has(destination) ? destination : undefined);
  }

  // ------------------------------------------------------------------------------------------
  // Configuration (the controller calls these; all idempotent)
  // ------------------------------------------------------------------------------------------

  /**
   * Adds or updates a neighbour. Same keys: counters and replay window carry on, and an address
   * learned from the neighbour's probes is kept unless `address` differs from the last one given.
   * New keys (a new mesh connection): a fresh state.
   */
  setNeighbour(peer: PeerName, config: NeighbourConfig): void {
    const name = parsePeerName(peer);
    if (name === this.self) throw new LoomError('ERR_INVALID_ARGUMENT', 'a relay is not its own neighbour');
    const address = parseUdpAddress(config.address);
    if (config.keys === null && this.encrypt) throw new LoomError('ERR_INVALID_ARGUMENT', `neighbour ${name} has no session keys but the relay encrypts`);
    const existing = this.neighbours.get(name);
    if (existing && sameSessionKeys(existing.sessionKeys, config.keys)) {
      if (this.configuredAddresses.get(name) !== config.address) {
        existing.address = address;
        this.configuredAddresses.set(name, config.address);
      }
      return;
    }
    existing?.cancelProbes();
    const state = new NeighbourState(name, address, config.keys);
    this.neighbours.set(name, state);
    this.neighboursByKey.set(state.key, state);
    this.configuredAddresses.set(name, config.address);
    this.routeCache.clear();
    this.logger.info({ peer: name, address: config.address, keyed: config.keys !== null }, existing ? 'neighbour re-keyed' : 'neighbour added');
  }

  /** Idempotent. Pending probes to it are dropped without a report. */
  removeNeighbour(peer: PeerName): void {
    const state = this.neighbours.get(peer);
    if (!state) return;
    state.cancelProbes();
    this.neighbours.delete(peer);
    this.neighboursByKey.delete(state.key);
    this.configuredAddresses.delete(peer);
    this.routeCache.clear();
    this.logger.info({ peer }, 'neighbour removed');
  }

  /**
   * `nextHop(destination)` names the neighbour to send through (the destination itself when it is
   * a neighbour), or undefined. Called once per destination until the next configuration change.
   */
  setRoutes(nextHop: (destination: PeerName) => PeerName | undefined): void {
    this.nextHop = nextHop;
    this.routeCache.clear();
  }

  /**
   * Frames for `peer` arrive from the kernel on 127.0.0.1:`port` (its FDB entries point there).
   * Idempotent for the same port; another port replaces the listener. Opens now when running.
   * Port 0 picks a free port (tests, benchmarks): see `localPortOf`.
   */
  async setLocalPort(peer: PeerName, port: number): Promise<void> {
    const name = parsePeerName(peer);
    if (name === this.self) throw new LoomError('ERR_INVALID_ARGUMENT', 'no local port for ourselves');
    checkPort(port, 'local port', true);
    const existing = this.localPorts.get(name);
    if (existing && existing.port === port) return;
    if (existing) await this.removeLocalPort(name);
    const local = newLocalPort(name, port, PacketType.data, PacketType.dataBatch);
    this.localPorts.set(name, local);
    if (this.running) await this.openLocalPort(local);
  }

  /** Idempotent. */
  async removeLocalPort(peer: PeerName): Promise<void> {
    const local = this.localPorts.get(peer);
    if (!local) return;
    this.localPorts.delete(peer);
    local.active = false;
    discardBatch(local);
    if (local.socket) await closeSocket(local.socket);
    local.socket = null;
  }

  /** The bound port of the listener for `peer`, or undefined when not open. */
  localPortOf(peer: PeerName): number | undefined {
    return this.localPorts.get(peer)?.socket?.address().port;
  }

  /**
   * The TAP path's local end: frames for us in `frame`/`frameBatch` packets are written here.
   * The owner feeds what the device reads to `onDeviceFrame`. null detaches (frames for us are
   * then dropped as 'device-refused').
   */
  attachDevice(device: FrameDevice | null): void {
    this.device = device;
  }

  /**
   * The TAP path's forwarding table (replaces the last one; idempotent): a unicast frame from the
   * device goes to the peer owning its destination MAC; a group-addressed or unknown one to every
   * flood peer once (each relays it to its own bridge only, never on, so nobody gets it twice).
   */
  setForwarding(table: RelayForwarding): void {
    const ports = new Map<PeerName, LocalPort>();
    const portOf = (peer: PeerName): LocalPort | null => {
      const name = parsePeerName(peer);
      if (name === this.self) return null;
      let port = ports.get(name);
      if (!port) {
        port = this.devicePorts.get(name) ?? newLocalPort(name, 0, PacketType.frame, PacketType.frameBatch);
        ports.set(name, port);
      }
      return port;
    };
    for (const peer of table.floodPeers) portOf(peer);
    const macs = new Map<number, LocalPort>();
    for (const { mac, peer } of table.macs) {
      const port = portOf(peer);
      if (port) macs.set(macKeyOf(mac), port);
    }
    for (const [peer, port] of this.devicePorts) {
      if (ports.has(peer)) continue;
      port.active = false;
      discardBatch(port);
    }
    this.devicePorts = ports;
    this.macTable = macs;
    this.floodPorts = [...ports.values()];
  }

  onReachability(listener: ReachabilityListener): void {
    this.reachabilityListeners.push(listener);
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle
  // ------------------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.running) return;
    const data = this.socketFactory();
    const inject = this.socketFactory();
    const check = this.socketFactory();
    try {
      await bindSocket(data, this.dataPort, this.bindAddress);
      await bindSocket(inject, 0, LOOPBACK);
      await bindSocket(check, 0, this.bindAddress);
    } catch (err) {
      await Promise.all([closeSocket(data), closeSocket(inject), closeSocket(check)]);
      throw err;
    }
    data.on('message', this.onUnderlayMessage);
    data.on('error', this.onSocketError);
    inject.on('error', this.onSocketError);
    check.on('message', this.onUnderlayMessage);
    check.on('error', this.onSocketError);
    this.dataSocket = data;
    this.injectSocket = inject;
    this.checkSocket = check;
    this.running = true;
    try {
      for (const local of this.localPorts.values()) await this.openLocalPort(local);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.logger.info({ dataPort: data.address().port, encrypt: this.encrypt }, 'relay started');
  }

  /** Closes every socket and cancels probes. Idempotent; configuration is kept for a later start. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const n of this.neighbours.values()) n.cancelProbes();
    const closing: Array<Promise<void>> = [];
    for (const local of this.localPorts.values()) {
      if (local.socket) closing.push(closeSocket(local.socket));
      local.socket = null;
      discardBatch(local);
    }
    for (const local of this.devicePorts.values()) discardBatch(local);
    if (this.dataSocket) closing.push(closeSocket(this.dataSocket));
    if (this.injectSocket) closing.push(closeSocket(this.injectSocket));
    if (this.checkSocket) closing.push(closeSocket(this.checkSocket));
    this.dataSocket = null;
    this.injectSocket = null;
    this.checkSocket = null;
    await Promise.all(closing);
    this.logger.info({}, 'relay stopped');
  }

  /** The bound data address (useful with dataPort 0). Throws ERR_UNAVAILABLE when stopped. */
  dataAddress(): UdpAddress {
    if (!this.dataSocket) throw new LoomError('ERR_UNAVAILABLE', 'relay is not running');
    const a = this.dataSocket.address();
    return { ip: a.address, port: a.port };
  }

  stats(): RelayStats {
    return {
      ...this.counters,
      drops: { ...this.drops },
      neighbours: [...this.neighbours.values()].map((n) => ({
        peer: n.name,
        address: formatUdpAddress(n.address),
        authenticated: n.dataKeys !== null,
        sent: n.sent,
      })),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Probes
  // ------------------------------------------------------------------------------------------

  /**
   * Sends one authenticated ping to the neighbour's data address; listeners hear
   * `(peer, true, rtt, unsolicited)` on the answer or `(peer, false, null, unsolicited)` after
   * probeTimeoutMs. `unsolicited`: sent from a separate check port the peer never heard from, so
   * a NAT or stateful firewall in front of the peer drops it as it would drop the kernel's VXLAN
   * packets; the peer answers it without learning the check port as our data address.
   */
  probe(peer: PeerName, options: { unsolicited?: boolean } = {}): void {
    if (!this.running) throw new LoomError('ERR_UNAVAILABLE', 'relay is not running');
    const n = this.neighbours.get(peer);
    if (!n) throw new LoomError('ERR_NOT_FOUND', `no neighbour ${String(peer).slice(0, 40)}`);
    this.nextProbeId = (this.nextProbeId + 1) >>> 0 || 1;
    const id = this.nextProbeId;
    const unsolicited = options.unsolicited === true;
    const timer = this.clock.setTimeout(() => this.finishProbe(n, id, false), this.probeTimeoutMs);
    n.pendingProbes.set(id, { sentAt: this.clock.now(), timer, unsolicited });
    const body = Buffer.alloc(PROBE_BODY_BYTES);
    body.writeUInt32BE(id, 0);
    body.writeUInt32BE(unsolicited ? PROBE_FLAG_UNSOLICITED : 0, 4);
    this.sendControl(n, PacketType.probe, body, n.address.ip, n.address.port, unsolicited ? this.checkSocket : this.dataSocket);
    this.counters.probesSent++;
  }

  private finishProbe(n: NeighbourState, id: number, ok: boolean): void {
    const pending = n.pendingProbes.get(id);
    if (!pending) return;
    n.pendingProbes.delete(id);
    pending.timer.cancel();
    const rttMs = ok ? this.clock.now() - pending.sentAt : null;
    for (const listener of this.reachabilityListeners) {
      try {
        listener(n.name, ok, rttMs, pending.unsolicited);
      } catch (err) {
        this.logger.warn({ err, peer: n.name }, 'reachability listener threw');
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Hot path
  // ------------------------------------------------------------------------------------------

  private readonly afterSend = (err: Error | null): void => {
    if (err) this.drops['send-failed']++;
  };

  private readonly onSocketError = (err: Error): void => {
    this.logger.warn({ err }, 'relay socket error');
  };

  private drop(reason: DropReason): void {
    this.drops[reason]++;
  }

  private async openLocalPort(local: LocalPort): Promise<void> {
    const socket = this.socketFactory();
    try {
      await bindSocket(socket, local.port, LOOPBACK);
    } catch (err) {
      await closeSocket(socket);
      throw err;
    }
    socket.on('message', (msg: Buffer) => this.onKernelFrame(local, msg));
    socket.on('error', this.onSocketError);
    local.socket = socket;
  }

  /** A VXLAN datagram from the kernel for `local.peer`: joins the peer's batch for this turn. */
  private onKernelFrame(local: LocalPort, msg: Buffer): void {
    const c = this.counters;
    const length = msg.length;
    c.fromKernel++;
    c.bytesFromKernel += length;
    if (length > this.maxPayloadBytes) return this.dropTooBig(msg);
    if (length < VXLAN_HEADER_BYTES + ETHERNET_HEADER_BYTES) return this.drop('malformed');
    this.enqueue(local, msg);
  }

  /**
   * A frame from the TAP device (virtio-net header + Ethernet frame, up to a TSO super-frame).
   * `frame` is the device's read buffer: valid until this returns, so whatever is kept is copied.
   */
  readonly onDeviceFrame = (frame: Buffer): void => {
    const c = this.counters;
    const length = frame.length;
    c.fromDevice++;
    c.bytesFromDevice += length;
    if (length < MIN_TAP_FRAME_BYTES) return this.drop('malformed');
    const gso = frame[1]! & ~VNET_GSO_ECN;
    if (gso === VNET_GSO_NONE ? length - VNET_HEADER_BYTES > this.maxFrameBytes : this.gsoSegmentTooBig(frame)) return this.dropTooBigFrame(frame);
    if (length > MAX_BODY_BYTES) return this.drop('oversized');
    if ((frame[VNET_HEADER_BYTES]! & 1) === 0) {
      const port = this.macTable.get(peerKeyFromBytes(frame, VNET_HEADER_BYTES));
      if (port !== undefined) return this.enqueue(port, frame);
    }
    const ports = this.floodPorts;
    if (ports.length === 0) return this.drop('no-route');
    for (let i = 0; i < ports.length; i++) this.enqueue(ports[i]!, frame);
  };

  /** Whether the segments of a GSO frame (IP + TCP headers + gso_size) exceed the segment MTU. */
  private gsoSegmentTooBig(frame: Buffer): boolean {
    if (this.deviceFragMtu === 0) return false;
    const gsoSize = frame[4]! | (frame[5]! << 8);
    const ip = VNET_HEADER_BYTES + ETHERNET_HEADER_BYTES;
    const etherType = (frame[ip - 2]! << 8) | frame[ip - 1]!;
    let ipHeader: number;
    if (etherType === 0x0800 && frame.length > ip) ipHeader = (frame[ip]! & 0x0f) * 4;
    else if (etherType === 0x86dd) ipHeader = 40;
    else return false;
    const tcp = ip + ipHeader;
    if (frame.length < tcp + 13) return false;
    return ipHeader + (frame[tcp + 12]! >> 4) * 4 + gsoSize > this.deviceFragMtu;
  }

  /** Like dropTooBig, for the TAP path: the ICMP answer goes back into the device. */
  private dropTooBigFrame(frame: Buffer): void {
    this.drop('oversized');
    const device = this.device;
    if (this.deviceFragMtu === 0 || device === null) return;
    // Behind a zeroed virtio-net header: no offloads.
    const answer = fragNeededAnswer(frame, VNET_HEADER_BYTES, this.deviceFragMtu, false);
    if (answer !== null && device.write(answer)) this.counters.fragNeededSent++;
  }

  /** Joins `local`'s batch for this turn, or goes alone when too big to batch. */
  private enqueue(local: LocalPort, msg: Buffer): void {
    const length = msg.length;
    const next = this.route(local.key, local.nameBytes, 0);
    if (next === null) return this.drop('no-route');
    if (BATCH_LENGTH_BYTES + length > this.batchBytes) {
      // Too big to batch: whatever waits goes first, so frames to one peer keep their order.
      this.flushPort(local);
      this.counters.batches++;
      // The device's read buffer is reused after this turn: a plain send must own its bytes.
      const body = local.single === PacketType.frame && !this.encrypt ? Buffer.from(msg) : msg;
      this.sendData(next, this.selfBytes, local.nameBytes, DEFAULT_TTL, body, local.single);
      return;
    }
    if (local.batchUsed + BATCH_LENGTH_BYTES + length > this.batchBytes) this.flushPort(local);
    const batch = local.batch ?? (local.batch = this.takeBatchBuffer());
    const at = local.batchUsed;
    batch[at] = length >>> 8;
    batch[at + 1] = length & 0xff;
    msg.copy(batch, at + BATCH_LENGTH_BYTES);
    local.batchUsed = at + BATCH_LENGTH_BYTES + length;
    local.batchFrames++;
    if (!local.queued) {
      local.queued = true;
      this.pendingPorts.push(local);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushPending);
    }
  }

  /**
   * A frame from the kernel over maxPayloadBytes is dropped; when it is IPv4 with DF set, its
   * sender gets ICMP "fragmentation needed" (./icmp.ts) injected into the local kernel with the
   * frame's own VXLAN header (same VNI), so its TCP lowers the path MTU instead of black-holing.
   * At most one answer per dropped frame, never sent onto the network.
   */
  private dropTooBig(msg: Buffer): void {
    this.drop('oversized');
    const inject = this.injectSocket;
    if (this.fragNeededMtu === 0 || inject === null) return;
    // Behind the frame's own VXLAN header; a fresh buffer, referenced by the queued send.
    const answer = fragNeededAnswer(msg, VXLAN_HEADER_BYTES, this.fragNeededMtu, true);
    if (answer === null) return;
    inject.send(answer, this.localVxlanPort, LOOPBACK, this.afterSend);
    this.counters.fragNeededSent++;
  }

  /** End of the turn: every peer's waiting frames go out, one datagram each. */
  private readonly flushPending = (): void => {
    this.flushScheduled = false;
    const ports = this.pendingPorts;
    for (let i = 0; i < ports.length; i++) {
      const local = ports[i]!;
      local.queued = false;
      this.flushPort(local);
    }
    ports.length = 0;
  };

  /**
   * A buffer of batchBytes for a port's next batch. Sealed, the port keeps it for good (sealing
   * copies). Plain, the send references it until the kernel takes it, so it is never rewritten:
   * plain batches are carved from shared slabs, one ArrayBuffer per ~SLAB_BYTES of traffic.
   */
  private takeBatchBuffer(): Buffer {
    if (this.encrypt) return Buffer.allocUnsafeSlow(this.batchBytes);
    if (this.slab.length - this.slabUsed < this.batchBytes) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, this.batchBytes));
      this.slabUsed = 0;
    }
    const batch = this.slab.subarray(this.slabUsed, this.slabUsed + this.batchBytes);
    this.slabUsed += this.batchBytes;
    return batch;
  }

  /** A plain batch of `used` bytes was sent: if it is the slab's last carving, its unused tail is free again. */
  private releaseBatchTail(batch: Buffer, used: number): void {
    if (batch.buffer !== this.slab.buffer || batch.byteOffset - this.slab.byteOffset + batch.length !== this.slabUsed) return;
    this.slabUsed -= batch.length - ((used + 7) & ~7);
  }

  private flushPort(local: LocalPort): void {
    const frames = local.batchFrames;
    if (frames === 0) return;
    const batch = local.batch!;
    const used = local.batchUsed;
    local.batchUsed = 0;
    local.batchFrames = 0;
    // Sealing copies into a fresh ciphertext, so the batch buffer can be reused; a plain send cannot.
    if (!this.encrypt) {
      local.batch = null;
      this.releaseBatchTail(batch, used);
    }
    const next = this.running && local.active ? this.route(local.key, local.nameBytes, 0) : null;
    if (next === null) {
      this.drops['no-route'] += frames;
      return;
    }
    this.counters.batches++;
    if (frames === 1) this.sendData(next, this.selfBytes, local.nameBytes, DEFAULT_TTL, batch.subarray(BATCH_LENGTH_BYTES, used), local.single);
    else this.sendData(next, this.selfBytes, local.nameBytes, DEFAULT_TTL, batch.subarray(0, used), local.batched);
  }

  private readonly onUnderlayMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const c = this.counters;
    const length = msg.length;
    c.fromNeighbours++;
    c.bytesFromNeighbours += length;
    if (length > (isTapType(msg[OFFSET.type]!) ? MAX_DATAGRAM_BYTES : this.maxDatagramBytes)) return this.drop('oversized');
    const bad = checkHeader(msg, length);
    if (bad !== null) return this.drop(bad);
    const n = this.neighboursByKey.get(peerKeyFromBytes(msg, OFFSET.hop));
    if (n === undefined) return this.drop('unknown-peer');
    const type = msg[OFFSET.type];
    const sealed = (msg[OFFSET.flags]! & FLAG_SEALED) !== 0;
    const fromKnownAddress = rinfo.port === n.address.port && rinfo.address === n.address.ip;
    const isData = isDataType(type!);
    if (isData || n.dataKeys === null) {
      // Only authenticated probes may come from a new address (a NAT mapping we learn).
      if (!fromKnownAddress) return this.drop(this.isNeighbourAddress(rinfo) ? 'forged-source' : 'non-peer-address');
    }
    if (isData ? sealed !== this.encrypt : sealed !== (n.dataKeys !== null)) return this.drop('policy-mismatch');
    if (peerKeyFromBytes(msg, OFFSET.source) === this.selfKey) return this.drop('forged-source');
    const counter = readCounter(msg);
    const verdict = n.window.check(counter);
    if (verdict !== ReplayVerdict.fresh) return this.drop(verdict === ReplayVerdict.replayed ? 'replayed' : 'too-old');
    let body: Buffer;
    if (sealed) {
      const opened = openPacket(n.dataKeys!.receive, msg, length);
      if (opened === null) return this.drop('auth-failed');
      body = opened;
    } else {
      body = msg.subarray(RELAY_HEADER_BYTES, length);
    }
    let frames = 1;
    if (type === PacketType.dataBatch) {
      frames = countBatchFrames(body, 0, body.length, this.maxPayloadBytes);
      if (frames < 0) return this.drop('malformed');
    } else if (type === PacketType.frameBatch) {
      frames = countBatchFrames(body, 0, body.length, MAX_BODY_BYTES, MIN_TAP_FRAME_BYTES);
      if (frames < 0) return this.drop('malformed');
    } else if (type === PacketType.data && body.length > this.maxPayloadBytes) {
      return this.drop('oversized');
    }
    n.window.accept(counter);
    if (isData) return this.deliverOrForward(msg, body, type!, frames);
    if (peerKeyFromBytes(msg, OFFSET.destination) !== this.selfKey) return this.drop('no-route');
    if (type === PacketType.probe) return this.answerProbe(n, body, rinfo, sealed);
    c.probeRepliesReceived++;
    this.finishProbe(n, body.readUInt32BE(0), true);
  };

  /** `frames` is 1 for `data`, the checked record count for `dataBatch`. */
  private deliverOrForward(msg: Buffer, body: Buffer, type: number, frames: number): void {
    const destinationKey = peerKeyFromBytes(msg, OFFSET.destination);
    if (destinationKey === this.selfKey && isTapType(type)) return this.deliverToDevice(body, type);
    if (destinationKey === this.selfKey) {
      const inject = this.injectSocket!;
      if (type === PacketType.data) {
        inject.send(body, this.localVxlanPort, LOOPBACK, this.afterSend);
      } else {
        // The kernel takes one VXLAN datagram per send; the records were checked by countBatchFrames.
        for (let at = 0; at < body.length; ) {
          const start = at + BATCH_LENGTH_BYTES;
          const end = start + ((body[at]! << 8) | body[at + 1]!);
          inject.send(body.subarray(start, end), this.localVxlanPort, LOOPBACK, this.afterSend);
          at = end;
        }
      }
      this.counters.toKernel += frames;
      return;
    }
    const ttl = msg[OFFSET.ttl]! - 1;
    if (ttl <= 0) return this.drop('ttl-expired');
    const next = this.route(destinationKey, msg, OFFSET.destination);
    if (next === null) return this.drop('no-route');
    this.sendData(
      next,
      msg.subarray(OFFSET.source, OFFSET.source + 6),
      msg.subarray(OFFSET.destination, OFFSET.destination + 6),
      ttl,
      body,
      type,
    );
    this.counters.forwarded += frames;
  }

  /** Frames for our containers into the TAP device; each virtio-net header is checked first. */
  private deliverToDevice(body: Buffer, type: number): void {
    if (type === PacketType.frame) return this.writeToDevice(body);
    // The records were checked by countBatchFrames.
    for (let at = 0; at < body.length; ) {
      const start = at + BATCH_LENGTH_BYTES;
      const end = start + ((body[at]! << 8) | body[at + 1]!);
      this.writeToDevice(body.subarray(start, end));
      at = end;
    }
  }

  private writeToDevice(frame: Buffer): void {
    if (!vnetHeaderOk(frame, 0, frame.length)) return this.drop('bad-offload');
    const device = this.device;
    if (device === null || !device.write(frame)) return this.drop('device-refused');
    this.counters.toDevice++;
  }

  private answerProbe(n: NeighbourState, body: Buffer, rinfo: RemoteInfo, authenticated: boolean): void {
    const fromCheckPort = (body.readUInt32BE(4) & PROBE_FLAG_UNSOLICITED) !== 0;
    if (authenticated && !fromCheckPort && (rinfo.address !== n.address.ip || rinfo.port !== n.address.port)) {
      n.address = { ip: rinfo.address, port: rinfo.port };
      this.counters.addressesLearned++;
      this.logger.info({ peer: n.name, address: formatUdpAddress(n.address) }, 'learned neighbour data address from its probe');
    }
    this.sendControl(n, PacketType.probeReply, body, rinfo.address, rinfo.port, this.dataSocket);
    this.counters.probesAnswered++;
  }

  /** The neighbour to send a frame for `destinationKey` through, or null. `bytes[offset..+6]` is its name. */
  private route(destinationKey: number, bytes: Uint8Array, offset: number): NeighbourState | null {
    const cached = this.routeCache.get(destinationKey);
    if (cached !== undefined) return cached;
    const destination = peerNameFromBytes(bytes.subarray(offset, offset + 6));
    let hop: PeerName | undefined;
    try {
      hop = this.nextHop(destination);
    } catch (err) {
      this.logger.warn({ err, destination }, 'route lookup threw; treating as no route');
    }
    const next = hop === undefined ? null : (this.neighbours.get(hop) ?? null);
    if (this.routeCache.size >= ROUTE_CACHE_LIMIT) this.routeCache.clear();
    this.routeCache.set(destinationKey, next);
    return next;
  }

  /**
   * Sends a data packet to neighbour `n`. The header is a fresh (pooled) buffer: a queued UDP send
   * still references it, so it cannot be reused across packets.
   */
  private sendData(n: NeighbourState, source: Uint8Array, destination: Uint8Array, ttl: number, body: Uint8Array, type: number): void {
    if (n.sendCounter > MAX_COUNTER) return this.drop('send-failed');
    const header = Buffer.allocUnsafe(RELAY_HEADER_BYTES);
    writeHeader(header, type, this.encrypt, ttl, source, destination, this.selfBytes, n.sendCounter++);
    this.transmit(n, header, body, n.address.ip, n.address.port, this.encrypt, this.dataSocket);
  }

  /** Probes and replies: sealed whenever the neighbour has keys, whatever `encrypt` says. */
  private sendControl(n: NeighbourState, type: number, body: Uint8Array, ip: string, port: number, socket: Socket | null): void {
    if (n.sendCounter > MAX_COUNTER) return this.drop('send-failed');
    const header = Buffer.allocUnsafe(RELAY_HEADER_BYTES);
    const sealed = n.dataKeys !== null;
    writeHeader(header, type, sealed, 1, this.selfBytes, n.nameBytes, this.selfBytes, n.sendCounter++);
    this.transmit(n, header, body, ip, port, sealed, socket);
  }

  private transmit(n: NeighbourState, header: Buffer, body: Uint8Array, ip: string, port: number, sealed: boolean, socket: Socket | null): void {
    if (socket === null) return this.drop('send-failed');
    let bytes: number;
    if (sealed) {
      const [ciphertext, tag] = sealBody(n.dataKeys!.send, header, body);
      socket.send([header, ciphertext, tag], port, ip, this.afterSend);
      bytes = RELAY_HEADER_BYTES + ciphertext.length + RELAY_TAG_BYTES;
    } else {
      socket.send([header, body], port, ip, this.afterSend);
      bytes = RELAY_HEADER_BYTES + body.length;
    }
    n.sent++;
    this.counters.toNeighbours++;
    this.counters.bytesToNeighbours += bytes;
  }

  /** Slow path only (a drop is being classified). */
  private isNeighbourAddress(rinfo: RemoteInfo): boolean {
    for (const n of this.neighbours.values()) if (n.address.port === rinfo.port && n.address.ip === rinfo.address) return true;
    return false;
  }
}

function checkPort(port: number, what: string, zeroAllowed: boolean): number {
  if (!Number.isInteger(port) || port < (zeroAllowed ? 0 : 1) || port > 65535) {
    throw new LoomError('ERR_INVALID_ARGUMENT', `${what} must be an integer port${zeroAllowed ? ' (0 = any)' : ''}`);
  }
  return port;
}

/**
 * The ICMP "fragmentation needed" answer to the over-size frame behind `msg`'s first `prefix`
 * bytes, in a fresh buffer behind the same prefix (copied from `msg`, or zeros), or null when the
 * frame gets no answer.
 */
function fragNeededAnswer(msg: Buffer, prefix: number, mtu: number, copyPrefix: boolean): Buffer | null {
  const out = Buffer.alloc(prefix + FRAG_NEEDED_MAX_FRAME_BYTES);
  const answer = fragNeededFor(msg.subarray(prefix), mtu, out.subarray(prefix));
  if (answer === null) return null;
  if (copyPrefix) msg.copy(out, 0, 0, prefix);
  return out.subarray(0, prefix + answer.length);
}

function newLocalPort(peer: PeerName, port: number, single: number, batched: number): LocalPort {
  return { peer, port, key: peerKeyOf(peer), nameBytes: Buffer.from(peerNameToBytes(peer)), socket: null, batch: null, batchUsed: 0, batchFrames: 0, queued: false, active: true, single, batched };
}


/** Frames waiting in a closed or replaced port are not sent. */
function discardBatch(local: LocalPort): void {
  local.batch = null;
  local.batchUsed = 0;
  local.batchFrames = 0;
}
