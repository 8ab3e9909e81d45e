/**
 * A hand-written RouterApi for API and CLI tests: keeps targets like the real router's contract
 * (connect adds, forget removes) and serves a fixed, realistic status around them.
 */
import { LoomError } from '../../../src/core/errors.js';
import { parsePeerName, parsePeerUid, type PeerName } from '../../../src/core/ids.js';
import type { GossipChannel, Gossiper, MeshView, ProtocolConnection, RouterApi, RouterStatus } from '../../../src/mesh/types.js';

export const HOST1 = parsePeerName('8a:3f:00:12:9c:01');
export const HOST2 = parsePeerName('8a:3f:00:12:9c:02');
export const HOST3 = parsePeerName('8a:3f:00:12:9c:03');

export function sampleStatus(): RouterStatus {
  const uid = parsePeerUid('0123456789abcdef');
  return {
    name: HOST1,
    nickname: 'host1',
    uid,
    protocol: 'loom',
    protocolMinVersion: 1,
    protocolMaxVersion: 1,
    encryption: true,
    peerDiscovery: true,
    port: 6783,
    targets: ['192.168.1.2:6783', '192.168.1.3:6783'],
    connections: [
      { address: '192.168.1.2:6783', outbound: true, state: 'established', info: '8a:3f:00:12:9c:02(host2)', peer: { name: HOST2, nickname: 'host2' }, encrypted: true },
      { address: '192.168.1.3:41234', outbound: false, state: 'established', info: '8a:3f:00:12:9c:03(host3)', peer: { name: HOST3, nickname: 'host3' }, encrypted: true },
      { address: '192.168.1.9:6783', outbound: true, state: 'retrying', info: 'connect ECONNREFUSED', errorCode: 'ERR_UNAVAILABLE', retryAt: 1_700_000_000_000, attempts: 3 },
    ],
    peers: [
      {
        name: HOST1, nickname: 'host1', uid, version: 4,
        connections: [
          { name: HOST2, nickname: 'host2', address: '192.168.1.2:6783', outbound: true, established: true },
          { name: HOST3, nickname: 'host3', address: '192.168.1.3:41234', outbound: false, established: true },
        ],
      },
      {
        name: HOST2, nickname: 'host2', uid, version: 2,
        connections: [
          { name: HOST1, nickname: 'host1', address: '192.168.1.1:55000', outbound: false, established: true },
          { name: HOST3, nickname: 'host3', address: '192.168.1.3:6783', outbound: true, established: true },
        ],
      },
      {
        name: HOST3, nickname: 'host3', uid, version: 2,
        connections: [
          { name: HOST1, nickname: 'host1', address: '192.168.1.1:6783', outbound: true, established: true },
          { name: HOST2, nickname: 'host2', address: '192.168.1.2:44000', outbound: false, established: false },
        ],
      },
    ],
    routes: { unicast: [{ destination: HOST2, via: HOST2, hops: 1 }], broadcast: [HOST2, HOST3] },
    stats: { terminations: 7, handshakesFailed: 3, handshakesThrottled: 1, gossipBytesSent: 1000, gossipBytesReceived: 2500, gossipMessagesSent: 10, gossipMessagesReceived: 25 },
  };
}

export class FakeRouter implements RouterApi {
  readonly calls: string[] = [];
  targets: string[];
  private readonly base = sampleStatus();

  constructor() {
    this.targets = [...this.base.targets];
  }

  readonly mesh: MeshView = {
    self: HOST1,
    reachablePeers: () => [HOST1],
    isReachable: (p: PeerName) => p === HOST1,
    nicknameOf: () => 'host1',
    onChange: () => () => {},
  };

  async start(): Promise<void> {
    this.calls.push('start');
  }
  async stop(): Promise<void> {
    this.calls.push('stop');
  }
  connect(addresses: string[]): void {
    if (addresses.some((a) => a.includes('bad'))) throw new LoomError('ERR_INVALID_ARGUMENT', 'router refused address');
    this.calls.push(`connect ${addresses.join(',')}`);
    for (const a of addresses) if (!this.targets.includes(a)) this.targets.push(a);
  }
  forget(addresses: string[]): void {
    this.calls.push(`forget ${addresses.join(',')}`);
    this.targets = this.targets.filter((t) => !addresses.includes(t));
  }
  status(): RouterStatus {
    return { ...this.base, targets: [...this.targets] };
  }
  /** Channels subsystems opened; what they send goes nowhere (a mesh of one). */
  readonly channels = new Map<string, Gossiper>();
  newGossipChannel(name: string, gossiper: Gossiper): GossipChannel {
    if (this.channels.has(name)) throw new LoomError('ERR_CONFLICT', `gossip channel "${name}" already exists`);
    this.channels.set(name, gossiper);
    return { name, gossipUnicast: () => {}, gossipBroadcast: () => {}, gossipNeighbours: () => {} };
  }
  connectionTo(): ProtocolConnection | undefined {
    return undefined;
  }
}
