/**
 * Mesh scenarios written once against a small driver interface and run over both the in-memory
 * simulation (TestMesh, fake clock) and the real TcpTransport on loopback (TcpTestMesh): the fake
 * and the real thing are held to the same contract (as js-libp2p's shared transport suites).
 * Time limits are in the driver's clock: simulated ms for TestMesh, real ms for TCP.
 */
import assert from 'node:assert/strict';
import type { PeerName } from '../../src/core/ids.js';
import type { Router } from '../../src/mesh/router.js';
import type { GossipData, Gossiper } from '../../src/mesh/types.js';
import { peerNameOf } from './test-mesh.js';

export interface MeshDriver {
  readonly routers: Router[];
  connect(from: number, ...to: number[]): void;
  kill(i: number): Promise<void>;
  live(): Router[];
  converged(): boolean;
  runUntil(done: () => boolean, limitMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

export type MeshFactory = (n: number, opts: { discovery: boolean }) => Promise<MeshDriver>;

class TextSet implements GossipData {
  constructor(readonly items: Set<string>) {}
  encode(): Uint8Array {
    return Buffer.from([...this.items].sort().join('\n'));
  }
  merge(other: GossipData): GossipData {
    return new TextSet(new Set([...this.items, ...(other as TextSet).items]));
  }
}

class Recorder implements Gossiper {
  readonly unicasts: Array<{ src: PeerName; text: string }> = [];
  readonly broadcasts: Array<{ src: PeerName; text: string }> = [];
  gossip(): GossipData | null {
    return null;
  }
  onGossip(): GossipData | null {
    return null;
  }
  onGossipBroadcast(src: PeerName, update: Uint8Array): GossipData | null {
    const text = Buffer.from(update).toString();
    const fresh = !this.broadcasts.some((b) => b.src === src && b.text === text);
    this.broadcasts.push({ src, text });
    return fresh ? new TextSet(new Set([text])) : null;
  }
  onGossipUnicast(src: PeerName, msg: Uint8Array): void {
    this.unicasts.push({ src, text: Buffer.from(msg).toString() });
  }
}

export const meshScenarios: Record<string, (factory: MeshFactory) => Promise<void>> = {
  'line of 5: unicast end to end over 4 hops, a broadcast reaches each peer exactly once': async (factory) => {
    const mesh = await factory(5, { discovery: false });
    try {
      const gossipers = mesh.routers.map((r) => {
        const g = new Recorder();
        return { g, channel: r.newGossipChannel('scenario', g) };
      });
      for (let i = 0; i < 4; i++) mesh.connect(i, i + 1);
      assert.ok(await mesh.runUntil(() => mesh.converged(), 10_000), 'converged');
      assert.equal(mesh.routers[0]!.routes().unicast.get(peerNameOf(4))?.hops, 4);
      gossipers[0]!.channel.gossipUnicast(peerNameOf(4), Buffer.from('hello end'));
      gossipers[2]!.channel.gossipBroadcast(new TextSet(new Set(['from-2'])));
      const delivered = (): boolean => gossipers[4]!.g.unicasts.length === 1 && gossipers.every(({ g }, i) => i === 2 || g.broadcasts.length >= 1);
      assert.ok(await mesh.runUntil(delivered, 10_000), 'delivered');
      // Let duplicates, if any, arrive before counting.
      await mesh.runUntil(() => false, 200);
      assert.deepEqual(gossipers[4]!.g.unicasts, [{ src: peerNameOf(0), text: 'hello end' }]);
      for (let i = 1; i < 4; i++) assert.deepEqual(gossipers[i]!.g.unicasts, [], `relay ${i} does not consume the unicast`);
      gossipers.forEach(({ g }, i) => {
        if (i !== 2) assert.deepEqual(g.broadcasts, [{ src: peerNameOf(2), text: 'from-2' }], `peer ${i} gets the broadcast once`);
      });
    } finally {
      await mesh.stop();
    }
  },

  'ring of 5: a router dies, routes go around it, it leaves every topology': async (factory) => {
    const mesh = await factory(5, { discovery: false });
    try {
      for (let i = 0; i < 5; i++) mesh.connect(i, (i + 1) % 5);
      assert.ok(await mesh.runUntil(() => mesh.converged(), 10_000), 'converged');
      const r1 = mesh.routers[1]!;
      assert.equal(r1.routes().nextHop(peerNameOf(3)), peerNameOf(2));
      await mesh.kill(2);
      assert.ok(await mesh.runUntil(() => mesh.converged() && r1.routes().nextHop(peerNameOf(3)) === peerNameOf(0), 10_000), 're-routed');
      assert.equal(r1.routes().unicast.get(peerNameOf(3))?.hops, 3);
      for (const r of mesh.live()) assert.equal(r.entryVersion(peerNameOf(2)), undefined, 'dead peer removed');
    } finally {
      await mesh.stop();
    }
  },

  'discovery: C knows only B, learns A from gossip and connects to it directly': async (factory) => {
    const mesh = await factory(3, { discovery: true });
    try {
      mesh.connect(1, 0);
      mesh.connect(2, 1);
      assert.ok(await mesh.runUntil(() => mesh.converged() && mesh.routers[2]!.routes().unicast.get(peerNameOf(0))?.hops === 1, 10_000));
      assert.ok(mesh.routers[2]!.connectionTo(peerNameOf(0)));
    } finally {
      await mesh.stop();
    }
  },
};
