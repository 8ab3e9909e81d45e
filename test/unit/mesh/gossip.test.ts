import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import type { PeerName, PeerUid } from '../../../src/core/ids.js';
import { recordingLogger } from '../../../src/core/logger.js';
import { GossipHub } from '../../../src/mesh/gossip.js';
import { UNICAST_HOP_LIMIT } from '../../../src/mesh/protocol.js';
import { Routes } from '../../../src/mesh/routes.js';
import type { PeerEntry } from '../../../src/mesh/topology-entry.js';
import type { ControlMessage, GossipData, Gossiper, ProtocolConnection } from '../../../src/mesh/types.js';

const P = (i: number): PeerName => `02:00:00:00:00:0${i}` as PeerName;
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A connection that records what is sent and can be backed up on demand. */
function fakeConnection(): ProtocolConnection & { sent: ControlMessage[]; backedUp: boolean } {
  const c = {
    sent: [] as ControlMessage[],
    backedUp: false,
    send(msg: ControlMessage): boolean {
      c.sent.push(msg);
      return !c.backedUp;
    },
  };
  return c as unknown as ProtocolConnection & { sent: ControlMessage[]; backedUp: boolean };
}

class Numbers implements GossipData {
  constructor(readonly values: Set<number>) {}
  encode(): Uint8Array {
    return Uint8Array.from([...this.values].sort((a, b) => a - b));
  }
  merge(other: GossipData): GossipData {
    return new Numbers(new Set([...this.values, ...(other as Numbers).values]));
  }
}

class NumbersGossiper implements Gossiper {
  readonly state = new Set<number>();
  unicasts: Array<[PeerName, number[]]> = [];
  gossip(): GossipData | null {
    return this.state.size ? new Numbers(new Set(this.state)) : null;
  }
  onGossip(update: Uint8Array): GossipData | null {
    return this.onGossipBroadcast(P(0), update);
  }
  onGossipBroadcast(_src: PeerName, update: Uint8Array): GossipData | null {
    const fresh = [...update].filter((v) => !this.state.has(v));
    fresh.forEach((v) => this.state.add(v));
    return fresh.length ? new Numbers(new Set(fresh)) : null;
  }
  onGossipUnicast(src: PeerName, msg: Uint8Array): void {
    this.unicasts.push([src, [...msg]]);
  }
}

/**
 * Peer 1 in a star around it: 1-2, 1-3, 1-4, and 2-5 behind 2 (by default). `edges` is the
 * topology graph as peer 1 knows it; `live` the neighbours with a live connection to peer 1.
 */
function setup(edges: Array<[number, number]> = [[1, 2], [1, 3], [1, 4], [2, 5]], live: number[] = [2, 3, 4]) {
  const entries = new Map<PeerName, PeerEntry>();
  const peerCount = Math.max(...edges.flat());
  for (let i = 1; i <= peerCount; i++) {
    const conns = edges.filter(([a, b]) => a === i || b === i).map(([a, b]) => (a === i ? b : a));
    entries.set(P(i), { name: P(i), nickname: '', uid: '0000000000000001' as PeerUid, version: 1, connections: conns.map((j) => ({ name: P(j), address: 'x:1', outbound: true, established: true })) });
  }
  const routes = new Routes(P(1), entries);
  const conns = new Map(live.map((i) => [P(i), fakeConnection()]));
  const clock = new FakeClock();
  const logger = recordingLogger();
  const hub = new GossipHub(
    { host: { self: P(1), routes: () => routes, connectionTo: (p) => conns.get(p), neighbours: () => [...conns.keys()] }, clock, logger, random: () => 0.5 },
    { antiEntropyIntervalMs: 30_000 },
  );
  const gossiper = new NumbersGossiper();
  const channel = hub.newChannel('numbers', gossiper);
  for (const p of conns.keys()) hub.connectionEstablished(p);
  return { hub, conns, clock, gossiper, channel, logger };
}

test('pending gossip for a backed-up connection is merged into one message, sent on drain', async () => {
  const { hub, conns, channel } = setup();
  const c2 = conns.get(P(2))!;
  channel.gossipNeighbours(new Numbers(new Set([1])));
  c2.backedUp = true;
  await settle();
  assert.equal(c2.sent.length, 1);
  channel.gossipNeighbours(new Numbers(new Set([2])));
  channel.gossipNeighbours(new Numbers(new Set([3, 2])));
  await settle();
  // send() returned false, so nothing more goes out until drain.
  assert.equal(c2.sent.length, 1);
  assert.equal(hub.pendingCount(), 1);
  c2.backedUp = false;
  hub.drained(P(2));
  assert.equal(c2.sent.length, 2);
  assert.deepEqual(c2.sent[1], { type: 'gossip', channel: 'numbers', payload: Uint8Array.from([2, 3]) });
  assert.equal(hub.pendingCount(), 0);
});

test('changes made in one event go out as one message per neighbour', async () => {
  const { conns, channel } = setup();
  channel.gossipNeighbours(new Numbers(new Set([1])));
  channel.gossipNeighbours(new Numbers(new Set([2])));
  await settle();
  for (const c of conns.values()) assert.deepEqual(c.sent, [{ type: 'gossip', channel: 'numbers', payload: Uint8Array.from([1, 2]) }]);
});

test('a received broadcast is relayed only to our children in the source tree, and only if new', async () => {
  const { hub, conns, gossiper } = setup();
  // From 5 (behind 2): the tree rooted at 5 reaches 1 via 2; 1 forwards to 3 and 4, not back to 2.
  hub.receive(P(2), { type: 'gossip-broadcast', channel: 'numbers', src: P(5), payload: Uint8Array.from([7]) });
  await settle();
  assert.deepEqual([...gossiper.state], [7]);
  assert.equal(conns.get(P(2))!.sent.length, 0);
  for (const p of [P(3), P(4)]) assert.deepEqual(conns.get(p)!.sent, [{ type: 'gossip-broadcast', channel: 'numbers', src: P(5), payload: Uint8Array.from([7]) }]);
  hub.receive(P(2), { type: 'gossip-broadcast', channel: 'numbers', src: P(5), payload: Uint8Array.from([7]) });
  await settle();
  assert.equal(conns.get(P(3))!.sent.length, 1, 'nothing new: not relayed again');
});

test('a live connection not yet in the topology graph gets broadcasts directly, ours and relayed ones', async () => {
  // 1-6 is up here, but neither end's announcement has reached our graph, where 6 hangs behind 4.
  // B's view may already hold 1-6 and leave 6 to us; a tree-only broadcast would not reach 6.
  const { hub, conns, channel } = setup([[1, 2], [1, 3], [1, 4], [2, 5], [4, 6]], [2, 3, 4, 6]);
  await settle();
  for (const c of conns.values()) c.sent.length = 0;

  channel.gossipBroadcast(new Numbers(new Set([9])));
  await settle();
  for (const p of [P(2), P(3), P(4), P(6)]) assert.equal(conns.get(p)!.sent.filter((m) => m.type === 'gossip-broadcast').length, 1, `our broadcast reaches ${p}`);

  for (const c of conns.values()) c.sent.length = 0;
  hub.receive(P(3), { type: 'gossip-broadcast', channel: 'numbers', src: P(3), payload: Uint8Array.from([11]) });
  await settle();
  assert.equal(conns.get(P(3))!.sent.length, 0, 'not back to where it came from');
  for (const p of [P(2), P(4), P(6)]) assert.equal(conns.get(p)!.sent.length, 1, `relayed to ${p}`);
});

test('unicasts are delivered when addressed to us and relayed along the route otherwise', async () => {
  const { hub, conns, gossiper, channel } = setup();
  hub.receive(P(3), { type: 'gossip-unicast', channel: 'numbers', src: P(3), dst: P(1), payload: Uint8Array.from([9]) });
  assert.deepEqual(gossiper.unicasts, [[P(3), [9]]]);
  hub.receive(P(3), { type: 'gossip-unicast', channel: 'numbers', src: P(3), dst: P(5), payload: Uint8Array.from([8]) });
  channel.gossipUnicast(P(5), Uint8Array.from([6]));
  await settle();
  assert.deepEqual(conns.get(P(2))!.sent, [
    { type: 'gossip-unicast', channel: 'numbers', src: P(3), dst: P(5), hopsLeft: UNICAST_HOP_LIMIT - 1, payload: Uint8Array.from([8]) },
    { type: 'gossip-unicast', channel: 'numbers', src: P(1), dst: P(5), hopsLeft: UNICAST_HOP_LIMIT, payload: Uint8Array.from([6]) },
  ]);
  channel.gossipUnicast('02:00:00:00:00:09' as PeerName, Uint8Array.from([1]));
  await settle();
  assert.equal(hub.pendingCount(), 0, 'no route: dropped');
});

test('anti-entropy sends full state to every neighbour about every 30 s', async () => {
  const { hub, conns, clock, gossiper } = setup();
  hub.start();
  gossiper.state.add(4);
  clock.advance(29_999); // random() = 0.5: the period is exactly 30 s
  await settle();
  assert.equal(conns.get(P(3))!.sent.length, 0);
  clock.advance(1);
  await settle();
  for (const c of conns.values()) assert.deepEqual(c.sent, [{ type: 'gossip', channel: 'numbers', payload: Uint8Array.from([4]) }]);
  assert.equal(hub.stats.bytesSentByKind.antiEntropy, 3);
  hub.stop();
});

test('gossip a subsystem rejects with a LoomError is logged and dropped; unknown channels too', async () => {
  const { hub, logger } = setup();
  const { LoomError } = await import('../../../src/core/errors.js');
  const bad: Gossiper = {
    gossip: () => null,
    onGossip: () => {
      throw new LoomError('ERR_PROTOCOL', 'bad bytes');
    },
    onGossipBroadcast: () => null,
    onGossipUnicast: () => {},
  };
  hub.newChannel('bad', bad);
  assert.doesNotThrow(() => hub.receive(P(2), { type: 'gossip', channel: 'bad', payload: Uint8Array.from([1]) }));
  assert.doesNotThrow(() => hub.receive(P(2), { type: 'gossip', channel: 'nope', payload: Uint8Array.from([1]) }));
  assert.ok(logger.records.some((r) => r.level === 'warn' && (r.obj as { code?: string }).code === 'ERR_PROTOCOL'));
});

test('a relayed unicast loses one hop per relay and is dropped when it has none left', async () => {
  const { hub, conns, gossiper } = setup();
  hub.receive(P(3), { type: 'gossip-unicast', channel: 'numbers', src: P(3), dst: P(5), hopsLeft: 1, payload: Uint8Array.from([8]) });
  hub.receive(P(3), { type: 'gossip-unicast', channel: 'numbers', src: P(3), dst: P(5), hopsLeft: 0, payload: Uint8Array.from([7]) });
  // Addressed to us: delivered whatever its hop count.
  hub.receive(P(3), { type: 'gossip-unicast', channel: 'numbers', src: P(3), dst: P(1), hopsLeft: 0, payload: Uint8Array.from([6]) });
  await settle();
  assert.deepEqual(conns.get(P(2))!.sent, [{ type: 'gossip-unicast', channel: 'numbers', src: P(3), dst: P(5), hopsLeft: 0, payload: Uint8Array.from([8]) }]);
  assert.equal(hub.stats.unicastsDroppedHopLimit, 1);
  assert.deepEqual(gossiper.unicasts, [[P(3), [6]]]);
});

test('a Gossiper that throws anything is logged at error and the hub keeps serving the connection', async () => {
  const { hub, conns, logger, gossiper } = setup();
  let calls = 0;
  const buggy: Gossiper = {
    gossip: () => null,
    onGossip: () => {
      calls++;
      throw new TypeError('cannot read properties of undefined');
    },
    onGossipBroadcast: () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the hub must survive a callback that throws a non-Error
      throw 'not even an Error';
    },
    onGossipUnicast: () => {
      throw new RangeError('boom');
    },
  };
  hub.newChannel('buggy', buggy);
  assert.doesNotThrow(() => hub.receive(P(2), { type: 'gossip', channel: 'buggy', payload: Uint8Array.from([1]) }));
  assert.doesNotThrow(() => hub.receive(P(2), { type: 'gossip-broadcast', channel: 'buggy', src: P(5), payload: Uint8Array.from([1]) }));
  assert.doesNotThrow(() => hub.receive(P(2), { type: 'gossip-unicast', channel: 'buggy', src: P(5), dst: P(1), payload: Uint8Array.from([1]) }));
  assert.equal(calls, 1);
  assert.equal(hub.stats.gossipRejected, 3);
  assert.equal(logger.records.filter((r) => r.level === 'error').length, 3);
  // The same neighbour's next message on another channel is still handled and relayed.
  hub.receive(P(2), { type: 'gossip-broadcast', channel: 'numbers', src: P(5), payload: Uint8Array.from([4]) });
  await settle();
  assert.deepEqual([...gossiper.state], [4]);
  assert.equal(conns.get(P(3))!.sent.length, 1);
});
