/**
 * The VXLAN-port path (LOOM_RELAY_PATH=vxlan-port, or no /dev/net/tun): "the kernel encapsulates,
 * Node relays". The kernel's VXLAN FDB points each relayed peer's MACs at 127.0.0.1:P_peer; one
 * local UDP socket per peer hands us its VXLAN datagrams, and received ones are injected into the
 * kernel at 127.0.0.1:localVxlanPort. One frame per datagram (no TSO): a frame bigger than the
 * neighbour's path allows is dropped, and an IPv4 DF one answered with ICMP "fragmentation
 * needed" injected with the frame's own VXLAN header.
 */
import type { Socket } from 'node:dgram';
import { LoomError } from '../../core/errors.js';
import { parsePeerName, peerNameToBytes, type PeerName } from '../../core/ids.js';
import { FRAG_NEEDED_MAX_FRAME_BYTES, fragNeededFor, MIN_FRAG_NEEDED_MTU } from './icmp.js';
import { bindSocket, closeSocket, type SocketFactory } from './socket.js';
import type { RelayState } from './state.js';
import { BATCH_LENGTH_BYTES, DEFAULT_TTL, ETHERNET_HEADER_BYTES, PacketType, peerKeyOf, VXLAN_HEADER_BYTES } from './wire.js';

const LOOPBACK = '127.0.0.1';

interface LocalPort {
  peer: PeerName;
  port: number;
  key: number;
  nameBytes: Buffer;
  socket: Socket | null;
}

export class PortPath {
  private readonly ports = new Map<PeerName, LocalPort>();
  private inject: Socket | null = null;
  private running = false;

  constructor(
    private readonly state: RelayState,
    private readonly socketFactory: SocketFactory,
    private readonly localVxlanPort: number,
    /** Largest VXLAN datagram carried at all (the relay's maxPayloadBytes). */
    private readonly maxPayloadBytes: number,
    /** Records per datagram for small frames: 0 = one frame per datagram. */
    private readonly batchBytes: number,
  ) {}

  async start(): Promise<void> {
    const inject = this.socketFactory();
    try {
      await bindSocket(inject, 0, LOOPBACK);
    } catch (err) {
      await closeSocket(inject);
      throw err;
    }
    inject.on('error', this.onSocketError);
    this.inject = inject;
    this.running = true;
    for (const local of this.ports.values()) await this.open(local);
  }

  async stop(): Promise<void> {
    this.running = false;
    const closing: Array<Promise<void>> = [];
    for (const local of this.ports.values()) {
      if (local.socket) closing.push(closeSocket(local.socket));
      local.socket = null;
    }
    if (this.inject) closing.push(closeSocket(this.inject));
    this.inject = null;
    await Promise.all(closing);
  }

  /** Received VXLAN datagrams into the local kernel. `datagram` is a view of a reused buffer: copied. */
  readonly injectToKernel = (datagram: Buffer): void => {
    this.inject?.send(Buffer.from(datagram), this.localVxlanPort, LOOPBACK, this.afterSend);
  };

  async setLocalPort(peer: PeerName, port: number): Promise<void> {
    const name = parsePeerName(peer);
    if (name === this.state.self) throw new LoomError('ERR_INVALID_ARGUMENT', 'no local port for ourselves');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LoomError('ERR_INVALID_ARGUMENT', 'local port must be an integer port (0 = any)');
    const existing = this.ports.get(name);
    if (existing && existing.port === port) return;
    if (existing) await this.removeLocalPort(name);
    const local: LocalPort = { peer: name, port, key: peerKeyOf(name), nameBytes: Buffer.from(peerNameToBytes(name)), socket: null };
    this.ports.set(name, local);
    if (this.running) await this.open(local);
  }

  async removeLocalPort(peer: PeerName): Promise<void> {
    const local = this.ports.get(peer);
    if (!local) return;
    this.ports.delete(peer);
    if (local.socket) await closeSocket(local.socket);
    local.socket = null;
  }

  localPortOf(peer: PeerName): number | undefined {
    return this.ports.get(peer)?.socket?.address().port;
  }

  private async open(local: LocalPort): Promise<void> {
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
    const s = this.state;
    const length = msg.length;
    s.counters.fromKernel++;
    s.counters.bytesFromKernel += length;
    if (length < VXLAN_HEADER_BYTES + ETHERNET_HEADER_BYTES) return s.drop('malformed');
    if (length > this.maxPayloadBytes) return this.tooBig(msg, this.maxPayloadBytes);
    const n = this.ports.get(local.peer) === local ? s.route(local.key, local.nameBytes, 0) : null;
    if (n === null) return s.drop('no-route');
    const maxBody = Math.min(n.maxBodyBytes(s.encrypt), this.maxPayloadBytes);
    if (length > maxBody) return this.tooBig(msg, maxBody);
    const t = s.transmitter;
    if (BATCH_LENGTH_BYTES + length <= Math.min(this.batchBytes, maxBody)) return t.appendRecord(n, PacketType.dataBatch, s.selfBytes, local.nameBytes, msg, Math.min(this.batchBytes, maxBody));
    const at = t.reserve(length);
    t.arena.set(msg, at);
    t.commit(n, PacketType.data, DEFAULT_TTL, s.selfBytes, local.nameBytes, length);
  }

  /** Dropped; an IPv4 DF frame's sender gets "fragmentation needed" behind the frame's own VXLAN header. */
  private tooBig(msg: Buffer, maxBody: number): void {
    this.state.drop('oversized');
    const mtu = maxBody - VXLAN_HEADER_BYTES - ETHERNET_HEADER_BYTES;
    const inject = this.inject;
    if (inject === null || mtu < MIN_FRAG_NEEDED_MTU) return;
    const out = Buffer.alloc(VXLAN_HEADER_BYTES + FRAG_NEEDED_MAX_FRAME_BYTES);
    const answer = fragNeededFor(msg.subarray(VXLAN_HEADER_BYTES), mtu, out.subarray(VXLAN_HEADER_BYTES));
    if (answer === null) return;
    msg.copy(out, 0, 0, VXLAN_HEADER_BYTES);
    inject.send(out.subarray(0, VXLAN_HEADER_BYTES + answer.length), this.localVxlanPort, LOOPBACK, this.afterSend);
    this.state.counters.fragNeededSent++;
  }

  private readonly afterSend = (err: Error | null): void => {
    if (err) this.state.drop('send-failed');
  };

  private readonly onSocketError = (err: Error): void => {
    this.state.logger.warn({ err }, 'relay socket error');
  };
}
