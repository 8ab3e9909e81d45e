/**
 * The user-space relay ("sleeve"): carries VXLAN datagrams between hosts over UDP when the kernel
 * fast path cannot, sealed per hop with keys derived from the mesh connections.
 *
 *   kernel VXLAN --(FDB dst 127.0.0.1 port P_peer)--> local socket for peer --> next hop's data port
 *   data port --> [check, open, replay window] --> ours: 127.0.0.1:localVxlanPort, else next hop
 *
 * Hot path contract: no logging, no promises or closures per packet, counters only; every bad
 * datagram is dropped and counted under one DropReason, never thrown.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import type { Clock } from '../../core/clock.js';
import { LoomError } from '../../core/errors.js';
import { parsePeerName, peerNameFromBytes, peerNameToBytes, type PeerName } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { SessionKeys } from '../../mesh/types.js';
import { formatUdpAddress, parseUdpAddress, type UdpAddress } from './address.js';
import { sameSessionKeys } from './keys.js';
import { NeighbourState } from './neighbour.js';
import { ReplayVerdict } from './replay-window.js';
import { openPacket, sealBody } from './seal.js';
import { bindSocket, closeSocket, createRelaySocket, type SocketFactory } from './socket.js';
import { zeroCounters, zeroDrops, type RelayStats } from './stats.js';
import {
  checkHeader,
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
  /** A probe without an answer after this long reports unreachable (default 1000 ms). */
  probeTimeoutMs?: number;
}

export interface NeighbourConfig {
  /** The neighbour's data address, "ip:port". */
  address: string;
  /** The mesh connection's session keys; null only when not encrypting. */
  keys: SessionKeys | null;
}

/** `rttMs` is null when the probe timed out. */
export type ReachabilityListener = (peer: PeerName, ok: boolean, rttMs: number | null) => void;

interface LocalPort {
  peer: PeerName;
  port: number;
  key: number;
  nameBytes: Buffer;
  socket: Socket | null;
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
    const local: LocalPort = { peer: name, port, key: peerKeyOf(name), nameBytes: Buffer.from(peerNameToBytes(name)), socket: null };
    this.localPorts.set(name, local);
    if (this.running) await this.openLocalPort(local);
  }

  /** Idempotent. */
  async removeLocalPort(peer: PeerName): Promise<void> {
    const local = this.localPorts.get(peer);
    if (!local) return;
    this.localPorts.delete(peer);
    if (local.socket) await closeSocket(local.socket);
    local.socket = null;
  }

  /** The bound port of the listener for `peer`, or undefined when not open. */
  localPortOf(peer: PeerName): number | undefined {
    return this.localPorts.get(peer)?.socket?.address().port;
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
    try {
      await bindSocket(data, this.dataPort, this.bindAddress);
      await bindSocket(inject, 0, LOOPBACK);
    } catch (err) {
      await Promise.all([closeSocket(data), closeSocket(inject)]);
      throw err;
    }
    data.on('message', this.onUnderlayMessage);
    data.on('error', this.onSocketError);
    inject.on('error', this.onSocketError);
    this.dataSocket = data;
    this.injectSocket = inject;
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
    }
    if (this.dataSocket) closing.push(closeSocket(this.dataSocket));
    if (this.injectSocket) closing.push(closeSocket(this.injectSocket));
    this.dataSocket = null;
    this.injectSocket = null;
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
   * `(peer, true, rtt)` on the answer or `(peer, false, null)` after probeTimeoutMs.
   */
  probe(peer: PeerName): void {
    if (!this.running) throw new LoomError('ERR_UNAVAILABLE', 'relay is not running');
    const n = this.neighbours.get(peer);
    if (!n) throw new LoomError('ERR_NOT_FOUND', `no neighbour ${String(peer).slice(0, 40)}`);
    this.nextProbeId = (this.nextProbeId + 1) >>> 0 || 1;
    const id = this.nextProbeId;
    const timer = this.clock.setTimeout(() => this.finishProbe(n, id, false), this.probeTimeoutMs);
    n.pendingProbes.set(id, { sentAt: this.clock.now(), timer });
    const body = Buffer.alloc(PROBE_BODY_BYTES);
    body.writeUInt32BE(id, 0);
    this.sendControl(n, PacketType.probe, body, n.address.ip, n.address.port);
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
        listener(n.name, ok, rttMs);
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

  /** A VXLAN datagram from the kernel for `local.peer`. */
  private onKernelFrame(local: LocalPort, msg: Buffer): void {
    const c = this.counters;
    c.fromKernel++;
    c.bytesFromKernel += msg.length;
    if (msg.length > this.maxPayloadBytes) return this.drop('oversized');
    if (msg.length < VXLAN_HEADER_BYTES + ETHERNET_HEADER_BYTES) return this.drop('malformed');
    const next = this.route(local.key, local.nameBytes, 0);
    if (next === null) return this.drop('no-route');
    this.sendData(next, this.selfBytes, local.nameBytes, DEFAULT_TTL, msg);
  }

  private readonly onUnderlayMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const c = this.counters;
    const length = msg.length;
    c.fromNeighbours++;
    c.bytesFromNeighbours += length;
    if (length > this.maxPayloadBytes + RELAY_HEADER_BYTES + RELAY_TAG_BYTES) return this.drop('oversized');
    const bad = checkHeader(msg, length);
    if (bad !== null) return this.drop(bad);
    const n = this.neighboursByKey.get(peerKeyFromBytes(msg, OFFSET.hop));
    if (n === undefined) return this.drop('unknown-peer');
    const type = msg[OFFSET.type];
    const sealed = (msg[OFFSET.flags]! & FLAG_SEALED) !== 0;
    const fromKnownAddress = rinfo.port === n.address.port && rinfo.address === n.address.ip;
    if (type === PacketType.data || n.dataKeys === null) {
      // Only authenticated probes may come from a new address (a NAT mapping we learn).
      if (!fromKnownAddress) return this.drop(this.isNeighbourAddress(rinfo) ? 'forged-source' : 'non-peer-address');
    }
    if (type === PacketType.data ? sealed !== this.encrypt : sealed !== (n.dataKeys !== null)) return this.drop('policy-mismatch');
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
    n.window.accept(counter);
    if (type === PacketType.data) return this.deliverOrForward(msg, body);
    if (peerKeyFromBytes(msg, OFFSET.destination) !== this.selfKey) return this.drop('no-route');
    if (type === PacketType.probe) return this.answerProbe(n, body, rinfo, sealed);
    c.probeRepliesReceived++;
    this.finishProbe(n, body.readUInt32BE(0), true);
  };

  private deliverOrForward(msg: Buffer, body: Buffer): void {
    const destinationKey = peerKeyFromBytes(msg, OFFSET.destination);
    if (destinationKey === this.selfKey) {
      this.injectSocket!.send(body, this.localVxlanPort, LOOPBACK, this.afterSend);
      this.counters.toKernel++;
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
    );
    this.counters.forwarded++;
  }

  private answerProbe(n: NeighbourState, body: Buffer, rinfo: RemoteInfo, authenticated: boolean): void {
    if (authenticated && (rinfo.address !== n.address.ip || rinfo.port !== n.address.port)) {
      n.address = { ip: rinfo.address, port: rinfo.port };
      this.counters.addressesLearned++;
      this.logger.info({ peer: n.name, address: formatUdpAddress(n.address) }, 'learned neighbour data address from its probe');
    }
    this.sendControl(n, PacketType.probeReply, body, rinfo.address, rinfo.port);
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
  private sendData(n: NeighbourState, source: Uint8Array, destination: Uint8Array, ttl: number, body: Uint8Array): void {
    if (n.sendCounter > MAX_COUNTER) return this.drop('send-failed');
    const header = Buffer.allocUnsafe(RELAY_HEADER_BYTES);
    writeHeader(header, PacketType.data, this.encrypt, ttl, source, destination, this.selfBytes, n.sendCounter++);
    this.transmit(n, header, body, n.address.ip, n.address.port, this.encrypt);
  }

  /** Probes and replies: sealed whenever the neighbour has keys, whatever `encrypt` says. */
  private sendControl(n: NeighbourState, type: number, body: Uint8Array, ip: string, port: number): void {
    if (n.sendCounter > MAX_COUNTER) return this.drop('send-failed');
    const header = Buffer.allocUnsafe(RELAY_HEADER_BYTES);
    const sealed = n.dataKeys !== null;
    writeHeader(header, type, sealed, 1, this.selfBytes, n.nameBytes, this.selfBytes, n.sendCounter++);
    this.transmit(n, header, body, ip, port, sealed);
  }

  private transmit(n: NeighbourState, header: Buffer, body: Uint8Array, ip: string, port: number, sealed: boolean): void {
    const socket = this.dataSocket;
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
