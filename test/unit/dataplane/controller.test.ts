import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { LoomError } from '../../../src/core/errors.js';
import { parsePeerName, type PeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import { desiredFdb, parseDesiredDataplane, type DataplaneOp, type DesiredDataplane } from '../../../src/dataplane/index.js';
import {
  bridgeMacOf,
  choosePath,
  computeDesired,
  DataplaneController,
  DEFAULT_SETTINGS,
  HOLD_FAST_PATH_MS,
  relayForwarding,
  retainPrevious,
  segmentMtu,
  underlayIpOf,
  type ControllerFacts,
  type DataplaneApplier,
  type RelayFacts,
  type RelayForwardingTable,
  DataplaneGossipData,
} from '../../../src/dataplane/controller/index.js';
import { recordingLogger } from '../../../src/core/logger.js';
import type { MeshView } from '../../../src/mesh/types.js';
import { addressOf, createTestMesh, peerNameOf } from '../../helpers/test-mesh.js';

const [A, B, C, D] = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04'] as PeerName[] as [PeerName, PeerName, PeerName, PeerName];

function facts(over: Partial<ControllerFacts> = {}): ControllerFacts {
  return {
    self: A,
    reachable: [A, B, C],
    neighbours: new Map([
      [B, { underlayIp: '192.168.1.2', encrypted: false }],
      [C, { underlayIp: '192.168.1.3', encrypted: false }],
    ]),
    macs: new Map([
      [B, ['02:bb:00:00:00:01', '02:bb:00:00:00:02']],
      [C, ['02:cc:00:00:00:01']],
      [D, ['02:dd:00:00:00:01']],
    ]),
    localMacs: ['02:aa:00:00:00:01'],
    udpBlocked: new Set(),
    relay: null,
    ...over,
  };
}

test('computeDesired: fastdp per directly connected peer, their MACs, fixed names, one MTU', () => {
  const { desired, peers } = computeDesired(DEFAULT_SETTINGS, facts());
  assert.deepEqual(parseDesiredDataplane(desired), desired, 'the result passes the data plane validation');
  assert.deepEqual(desired.bridge, { name: 'loom', mtu: DEFAULT_SETTINGS.mtu, mac: bridgeMacOf(A) }, 'the bridge MAC pinned, from our name');
  assert.equal(bridgeMacOf(parsePeerName('01:23:45:67:89:ab')), '02:23:45:67:89:ab', 'locally administered, unicast');
  assert.deepEqual(desired.vxlan, { name: 'vx-loom', vni: 0x4c4f4f, port: 4789, mtu: DEFAULT_SETTINGS.mtu, localIp: null, localBypass: false });
  assert.deepEqual(desired.peers, [
    { name: B, underlayIp: '192.168.1.2', via: 'fastdp' },
    { name: C, underlayIp: '192.168.1.3', via: 'fastdp' },
  ]);
  assert.deepEqual(desired.remoteMacs.map((r) => `${r.peer}/${r.mac}`), [`${B}/02:bb:00:00:00:01`, `${B}/02:bb:00:00:00:02`, `${C}/02:cc:00:00:00:01`]);
  assert.ok(!desired.remoteMacs.some((r) => r.peer === D), 'an unreachable peer contributes nothing');
  assert.deepEqual(peers.map((p) => [p.peer, p.path, p.encrypted, p.macs]), [
    [B, 'fastdp', false, 2],
    [C, 'fastdp', false, 1],
  ]);
});

test('computeDesired: a peer without a direct connection is unreachable without a relay, sleeve with one', () => {
  const only = facts({ neighbours: new Map([[B, { underlayIp: '192.168.1.2', encrypted: false }]]) });
  const without = computeDesired(DEFAULT_SETTINGS, only);
  assert.deepEqual(without.desired.peers.map((p) => p.name), [B]);
  const row = without.peers.find((p) => p.peer === C)!;
  assert.equal(row.path, 'unreachable');
  assert.match(row.reason!, /no direct connection; no relay/);
  assert.ok(!without.desired.remoteMacs.some((r) => r.peer === C));

  const relay = { mode: 'vxlan-port' as const, ports: new Map([[C, 6801]]), reachable: new Map<PeerName, boolean>(), open: new Map<PeerName, boolean>(), nextHops: new Map<PeerName, PeerName>(), encrypted: true };
  const withRelay = computeDesired(DEFAULT_SETTINGS, { ...only, relay });
  assert.deepEqual(withRelay.desired.peers.find((p) => p.name === C)?.via, { relayPort: 6801 });
  assert.deepEqual(withRelay.peers.find((p) => p.peer === C), { peer: C, path: 'sleeve', encrypted: true, mtu: DEFAULT_SETTINGS.mtu, underlayIp: null, relayPort: 6801, reason: 'no direct connection', macs: 1 });
  relay.reachable.set(C, false);
  assert.equal(computeDesired(DEFAULT_SETTINGS, { ...only, relay }).peers.find((p) => p.peer === C)?.path, 'unreachable');
});

test('choosePath: an encrypted connection or blocked UDP never takes kernel VXLAN', () => {
  const enc = facts({ neighbours: new Map([[B, { underlayIp: '192.168.1.2', encrypted: true }]]) });
  assert.deepEqual(choosePath(B, enc), { via: null, reason: 'encrypted mesh: kernel VXLAN cannot encrypt; no relay' });
  assert.equal(choosePath(B, facts({ udpBlocked: new Set([B]) })).via, null);
  assert.equal(choosePath(B, facts({ neighbours: new Map([[B, { underlayIp: null, encrypted: false }]]) })).via, null);
  assert.equal(choosePath(B, facts()).via, 'fastdp');
});

test('computeDesired: local MACs are never remote; a MAC claimed twice goes to the smaller peer name', () => {
  const { desired } = computeDesired(
    DEFAULT_SETTINGS,
    facts({
      macs: new Map([
        [C, ['02:bb:00:00:00:01', '02:aa:00:00:00:01']],
        [B, ['02:bb:00:00:00:01']],
      ]),
    }),
  );
  assert.deepEqual(desired.remoteMacs, [{ mac: '02:bb:00:00:00:01', peer: B }]);
});

/** The relay in tap mode: no ports; C reachable through B. */
function tapRelay(over: Partial<RelayFacts> = {}): RelayFacts {
  return { mode: 'tap', ports: new Map(), reachable: new Map(), open: new Map(), nextHops: new Map([[C, B]]), encrypted: true, ...over };
}

test('choosePath, relay in tap mode: relayed peers go via the tap (no port needed), unless the relay cannot reach them', () => {
  const only = facts({ neighbours: new Map([[B, { underlayIp: '192.168.1.2', encrypted: false }]]) });
  assert.deepEqual(choosePath(C, { ...only, relay: tapRelay() }), { via: 'tap', reason: 'no direct connection' });
  assert.deepEqual(choosePath(B, { ...only, relay: tapRelay() }), { via: 'fastdp' }, 'the fast path still wins where it can');
  assert.deepEqual(choosePath(B, { ...only, udpBlocked: new Set([B]), relay: tapRelay() }), { via: 'tap', reason: 'UDP to the peer is blocked' });
  assert.deepEqual(choosePath(C, { ...only, relay: tapRelay({ reachable: new Map([[C, false]]) }) }), { via: null, reason: 'no direct connection; relay cannot reach it' });
  // The port mode still needs a port.
  assert.deepEqual(choosePath(C, { ...only, relay: tapRelay({ mode: 'vxlan-port' }) }), { via: null, reason: 'no direct connection; relay cannot reach it' });
  assert.deepEqual(choosePath(C, { ...only, relay: tapRelay({ mode: 'vxlan-port', ports: new Map([[C, 6801]]) }) }), { via: { relayPort: 6801 }, reason: 'no direct connection' });
});

test('computeDesired, relay in tap mode: the tap, MACs pinned to their port, no vxlan entries for relayed peers', () => {
  const f = facts({
    reachable: [A, B, C, D],
    neighbours: new Map([
      [B, { underlayIp: '192.168.1.2', encrypted: false }],
      [D, { underlayIp: '192.168.1.4', encrypted: false }],
    ]),
    udpBlocked: new Set([D]),
    relay: tapRelay(),
  });
  const { desired, peers } = computeDesired(DEFAULT_SETTINGS, f);
  assert.deepEqual(parseDesiredDataplane(desired), desired, 'the result passes the data plane validation');
  assert.deepEqual(desired.tap, { name: 'tap-loom', mtu: 65521, gsoMaxSize: 65000 });
  assert.deepEqual(desired.peers, [
    { name: B, underlayIp: '192.168.1.2', via: 'fastdp' },
    { name: C, underlayIp: '0.0.0.0', via: 'tap' },
    { name: D, underlayIp: '192.168.1.4', via: 'tap' },
  ]);
  assert.deepEqual(desired.bridgeFdb, [
    { mac: '02:bb:00:00:00:01', dev: 'vx-loom' },
    { mac: '02:bb:00:00:00:02', dev: 'vx-loom' },
    { mac: '02:cc:00:00:00:01', dev: 'tap-loom' },
    { mac: '02:dd:00:00:00:01', dev: 'tap-loom' },
  ]);
  assert.deepEqual(desiredFdb(desired).map((e) => e.dst), ['192.168.1.2', '192.168.1.2', '192.168.1.2'], 'B\'s flood entry and MACs only');
  assert.deepEqual(peers.find((p) => p.peer === C), { peer: C, path: 'sleeve', encrypted: true, mtu: DEFAULT_SETTINGS.mtu, underlayIp: null, via: B, reason: 'no direct connection', macs: 1 });
  assert.equal(peers.find((p) => p.peer === D)!.relayPort, undefined);

  // No tap name configured, or the relay in port mode: no tap, no pins.
  assert.equal(computeDesired({ ...DEFAULT_SETTINGS, tap: '' }, f).desired.tap, null);
  const portMode = computeDesired(DEFAULT_SETTINGS, facts({ relay: tapRelay({ mode: 'vxlan-port' }) })).desired;
  assert.deepEqual([portMode.tap, portMode.bridgeFdb], [null, []]);
});

test('relayForwarding: the MACs of peers through the tap and whom to flood to, sorted; nothing for other paths', () => {
  const base = computeDesired(DEFAULT_SETTINGS, facts()).desired;
  const desired: DesiredDataplane = {
    ...base,
    peers: [
      { name: D, underlayIp: '0.0.0.0', via: 'tap' },
      { name: B, underlayIp: '192.168.1.2', via: 'fastdp' },
      { name: C, underlayIp: '192.168.1.3', via: 'tap' },
    ],
    remoteMacs: [
      { mac: '02:dd:00:00:00:01', peer: D },
      { mac: '02:bb:00:00:00:01', peer: B },
      { mac: '02:cc:00:00:00:02', peer: C },
      { mac: '02:cc:00:00:00:01', peer: C },
    ],
  };
  assert.deepEqual(relayForwarding(desired), {
    macs: [
      { mac: '02:cc:00:00:00:01', peer: C },
      { mac: '02:cc:00:00:00:02', peer: C },
      { mac: '02:dd:00:00:00:01', peer: D },
    ],
    floodPeers: [C, D],
  });
  assert.deepEqual(relayForwarding(base), { macs: [], floodPeers: [] });
});

test('retainPrevious in tap mode: a kept peer that went via the tap keeps its MACs pinned to the tap', () => {
  const computed = computeDesired(DEFAULT_SETTINGS, facts({ reachable: [A, B], relay: tapRelay() }));
  const kept = retainPrevious(computed, { peers: [{ name: C, underlayIp: '0.0.0.0', via: 'tap' }], remoteMacs: [{ mac: '02:cc:00:00:00:01', peer: C }] });
  assert.deepEqual(kept.desired.bridgeFdb.find((e) => e.mac === '02:cc:00:00:00:01'), { mac: '02:cc:00:00:00:01', dev: 'tap-loom' });
  assert.equal(kept.peers.find((p) => p.peer === C)!.path, 'sleeve');
  assert.deepEqual(relayForwarding(kept.desired).floodPeers, [C]);
  assert.deepEqual(parseDesiredDataplane(kept.desired), kept.desired);
});

test('underlayIpOf and segmentMtu parse at the edge', () => {
  assert.equal(underlayIpOf('192.168.1.7:6783'), '192.168.1.7');
  assert.equal(underlayIpOf('[::ffff:10.0.0.1]:40000'), '10.0.0.1');
  assert.equal(underlayIpOf('::ffff:10.0.0.1:40000'), '10.0.0.1');
  assert.equal(underlayIpOf('[fe80::1]:6783'), null);
  assert.equal(segmentMtu(undefined, {}, false), 1450, 'kernel VXLAN on a 1500-byte underlay');
  assert.equal(segmentMtu(undefined, {}, true), 1402, 'the sealed relay from the tap on a 1500-byte underlay');
  assert.equal(DEFAULT_SETTINGS.mtu, 1450);
  assert.equal(segmentMtu(undefined, { LOOM_MTU: '1450' }, true), 1450);
  assert.equal(segmentMtu('1300', { LOOM_MTU: '1450' }, false), 1300);
  assert.throws(() => segmentMtu('15000', {}, false), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => segmentMtu(undefined, { LOOM_MTU: 'big' }, false), { code: 'ERR_INVALID_ARGUMENT' });
});

/** An applier that records every desired state and can be told to fail. */
class RecordingApplier implements DataplaneApplier {
  readonly applied: DesiredDataplane[] = [];
  teardowns = 0;
  failNext = 0;
  async apply(desired: DesiredDataplane): Promise<DataplaneOp[]> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new LoomError('ERR_OS_COMMAND', 'ip failed');
    }
    this.applied.push(desired);
    return [];
  }
  async teardown(): Promise<DataplaneOp[]> {
    this.teardowns++;
    return [];
  }
}

/** A router stand-in whose mesh changes on demand. */
function fakeRouter() {
  const listeners = new Set<() => void>();
  const reachable: PeerName[] = [A];
  const mesh: MeshView = {
    self: A,
    reachablePeers: () => [...reachable],
    isReachable: (p) => reachable.includes(p),
    nicknameOf: () => undefined,
    onChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return {
    reachable,
    fire: () => listeners.forEach((l) => l()),
    listeners,
    router: {
      mesh,
      connectionTo: (p: PeerName) => (p === B ? ({ remoteAddress: '192.168.1.2:6783', encrypted: false } as never) : undefined),
      newGossipChannel: () => ({ name: 'dataplane', gossipUnicast() {}, gossipBroadcast() {}, gossipNeighbours() {} }),
      status: () => ({}) as never,
    },
  };
}

const flush = () => new Promise((r) => setImmediate(r));

test('controller: a change after a quiet window applies at once, a burst after it gives one apply per window; stop leaves the kernel alone', async () => {
  const clock = new FakeClock();
  const applier = new RecordingApplier();
  const f = fakeRouter();
  const ctl = new DataplaneController({ router: f.router, dataplane: applier, clock, logger: silentLogger }, { debounceMs: 100 });
  ctl.start();
  // Everything in this event goes into the first apply, which runs on the next tick.
  f.reachable.push(B);
  for (let i = 0; i < 10; i++) f.fire();
  ctl.setLocalMacs(['02:aa:00:00:00:09']);
  assert.equal(applier.applied.length, 0, 'not inside the event that made the change');
  clock.advance(0);
  await flush();
  assert.equal(applier.applied.length, 1, 'one apply for the whole event, without waiting for the debounce');
  assert.deepEqual(applier.applied[0]!.peers, [{ name: B, underlayIp: '192.168.1.2', via: 'fastdp' }]);
  assert.deepEqual(ctl.status().peers.map((p) => [p.peer, p.path]), [[B, 'fastdp']]);
  assert.deepEqual(ctl.status().localMacs, ['02:aa:00:00:00:09']);

  // A burst right after it: held until the window since that apply has passed, then one apply.
  for (let i = 0; i < 10; i++) {
    f.fire();
    clock.advance(5);
    await flush();
  }
  ctl.setLocalMacs(['02:aa:00:00:00:09', '02:aa:00:00:00:0a']);
  clock.advance(49);
  await flush();
  assert.equal(applier.applied.length, 1, 'nothing inside the window');
  clock.advance(1);
  await flush();
  assert.equal(applier.applied.length, 2, 'one apply for the burst at the end of the window');
  assert.deepEqual(ctl.status().localMacs, ['02:aa:00:00:00:09', '02:aa:00:00:00:0a']);

  await ctl.stop();
  assert.equal(f.listeners.size, 0, 'unsubscribed from the mesh');
  f.fire();
  clock.advance(1000);
  await flush();
  assert.equal(applier.applied.length, 2, 'no apply after stop');
  assert.equal(applier.teardowns, 0, 'stop never tears the data plane down');
  await ctl.teardown();
  assert.equal(applier.teardowns, 1);
});

test('controller: a failed apply is retried after retryMs and reported in status until it succeeds', async () => {
  const clock = new FakeClock();
  const applier = new RecordingApplier();
  applier.failNext = 2;
  const f = fakeRouter();
  const ctl = new DataplaneController({ router: f.router, dataplane: applier, clock, logger: silentLogger }, { debounceMs: 10, retryMs: 1000 });
  ctl.start();
  clock.advance(10);
  await flush();
  assert.equal(ctl.status().lastError, 'ip failed');
  clock.advance(999);
  await flush();
  assert.equal(applier.applied.length, 0);
  clock.advance(1);
  await flush();
  assert.equal(applier.applied.length, 0, 'second attempt fails too');
  clock.advance(1000);
  await flush();
  assert.equal(applier.applied.length, 1);
  assert.equal(ctl.status().lastError, null);
  await ctl.stop();
});

test('controller: the relay gets its forwarding table before every kernel apply, even a failing one; a throwing relay is logged', async () => {
  const clock = new FakeClock();
  const events: string[] = [];
  const tables: RelayForwardingTable[] = [];
  const applier: DataplaneApplier = {
    async apply(desired) {
      events.push(`apply tap=${desired.tap?.name ?? 'none'}`);
      if (events.length < 3) throw new LoomError('ERR_OS_COMMAND', 'ip failed');
      return [];
    },
    async teardown() {
      return [];
    },
  };
  const f = fakeRouter();
  f.reachable.push(C);
  const logger = recordingLogger();
  let throwing = false;
  const ctl = new DataplaneController(
    {
      router: f.router,
      dataplane: applier,
      clock,
      logger,
      relay: () => tapRelay({ nextHops: new Map() }),
      relayForwarding: (table) => {
        events.push(`table ${table.floodPeers.join(',')}`);
        tables.push(table);
        if (throwing) throw new Error('relay gone');
      },
    },
    { debounceMs: 10, retryMs: 100 },
  );
  // C's MACs, gossiped.
  ctl.gossip.onGossipBroadcast(C, new DataplaneGossipData([{ peer: C, version: 1, macs: ['02:cc:00:00:00:01'] }]).encode());
  ctl.start();
  clock.advance(10);
  await flush();
  assert.deepEqual(events, [`table ${C}`, 'apply tap=tap-loom'], 'the table first; the kernel apply failed');
  assert.deepEqual(tables[0], { macs: [{ mac: '02:cc:00:00:00:01', peer: C }], floodPeers: [C] });
  throwing = true;
  clock.advance(100);
  await flush();
  assert.deepEqual(events.slice(2), [`table ${C}`, 'apply tap=tap-loom'], 'a throwing relay does not stop the apply');
  assert.equal(ctl.status().lastError, null);
  assert.equal(ctl.status().tap, 'tap-loom');
  assert.ok(logger.records.some((r) => r.level === 'error' && /relay forwarding/.test(String(r.msg))), JSON.stringify(logger.records));
  await ctl.stop();
});

test('controller over an in-memory mesh: every router programs the others\' MACs via fastdp', async () => {
  const mesh = await createTestMesh(3);
  mesh.connect(1, 0);
  mesh.connect(2, 1);
  const appliers = mesh.routers.map(() => new RecordingApplier());
  const controllers = mesh.routers.map((router, i) => new DataplaneController({ router, dataplane: appliers[i]!, clock: mesh.clock, logger: silentLogger, wallClock: () => 1 }));
  controllers.forEach((c) => c.start());
  controllers.forEach((c, i) => c.setLocalMacs([`02:00:00:00:0${i}:01`, `02:00:00:00:0${i}:02`]));
  const fullMesh = () => mesh.routers.every((r) => mesh.routers.every((o) => o === r || r.connectionTo(o.mesh.self) !== undefined));
  assert.ok(await mesh.runUntil(() => mesh.converged() && fullMesh(), 30_000), 'mesh converges, discovery links 0 and 2');
  assert.ok(await mesh.runUntilQuiet(), 'gossip settles');
  mesh.clock.advance(200);
  await flush();
  for (let i = 0; i < 3; i++) {
    const last = appliers[i]!.applied.at(-1)!;
    const others = [0, 1, 2].filter((j) => j !== i);
    assert.deepEqual(last.peers.map((p) => p.name).sort(), others.map(peerNameOf).sort(), `router ${i} lists both others (discovery gives direct links)`);
    for (const p of last.peers) assert.equal(p.underlayIp, addressOf(mesh.routers.findIndex((r) => r.mesh.self === p.name)).split(':')[0]);
    const macs = last.remoteMacs.map((r) => r.mac).sort();
    assert.deepEqual(macs, others.flatMap((j) => [`02:00:00:00:0${j}:01`, `02:00:00:00:0${j}:02`]).sort());
  }

  // A container goes away on router 2: everyone else drops its MAC.
  controllers[2]!.setLocalMacs(['02:00:00:00:02:01']);
  assert.ok(await mesh.runUntilQuiet());
  mesh.clock.advance(200);
  await flush();
  assert.ok(!appliers[0]!.applied.at(-1)!.remoteMacs.some((r) => r.mac === '02:00:00:00:02:02'));
  for (const c of controllers) await c.stop();
  await mesh.stop();
});

test('controller after a restart: peers applied before are kept during the grace period, then dropped', async () => {
  const clock = new FakeClock();
  const applier = new RecordingApplier();
  const f = fakeRouter();
  let saved: { peers: unknown[]; remoteMacs: unknown[] } | null = null;
  const previous = { peers: [{ name: C, underlayIp: '192.168.1.3', via: 'fastdp' as const }], remoteMacs: [{ mac: '02:cc:00:00:00:01', peer: C }] };
  const memory = { load: () => previous, save: (v: { peers: unknown[]; remoteMacs: unknown[] }) => void (saved = v) };
  const ctl = new DataplaneController({ router: f.router, dataplane: applier, clock, logger: silentLogger, memory }, { debounceMs: 10, peerGraceMs: 5000 });
  f.reachable.push(B);
  ctl.start();
  clock.advance(10);
  await flush();
  const first = applier.applied.at(-1)!;
  assert.deepEqual(first.peers.map((p) => p.name), [B, C], 'C (not reconnected yet) is kept');
  assert.deepEqual(first.remoteMacs, [{ mac: '02:cc:00:00:00:01', peer: C }]);
  assert.match(ctl.status().peers.find((p) => p.peer === C)!.reason!, /kept from before the restart/);
  assert.deepEqual(saved!.peers.length, 2);
  clock.advance(5000);
  await flush();
  clock.advance(10);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers.map((p) => p.name), [B], 'after the grace period only what the mesh knows');
  await ctl.stop();
});

test('controller: a peer whose connection just went keeps its fast path while the topology still shows it, and for the grace period once it is gone', async () => {
  // B's router dies: A's connection to B closes at once, but for a moment A's topology still has
  // B reachable (through C, whose report of the loss is on its way). Without the hold that moment
  // computes "no path" for B, and the flip would be the path kept for B's restart.
  const clock = new FakeClock();
  const applier = new RecordingApplier();
  const f = fakeRouter();
  let connected = true;
  const router = { ...f.router, connectionTo: (p: PeerName) => (p === B && connected ? f.router.connectionTo(B) : undefined) };
  const ctl = new DataplaneController({ router, dataplane: applier, clock, logger: silentLogger }, { debounceMs: 10, peerGraceMs: 30_000 });
  ctl.start();
  f.reachable.push(B, C);
  ctl.gossip.onGossipBroadcast(B, new DataplaneGossipData([{ peer: B, version: 1, macs: ['02:bb:00:00:00:01'] }]).encode());
  f.fire();
  clock.advance(10);
  await flush();
  const fastB = { name: B, underlayIp: '192.168.1.2', via: 'fastdp' };
  assert.deepEqual(applier.applied.at(-1)!.peers, [fastB]);

  connected = false;
  f.fire();
  clock.advance(10);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers, [fastB], 'held: B still fast path while reachable only on paper');
  assert.deepEqual(applier.applied.at(-1)!.remoteMacs, [{ mac: '02:bb:00:00:00:01', peer: B }]);
  assert.match(ctl.status().peers.find((p) => p.peer === B)?.reason ?? '', /held/);

  f.reachable.splice(f.reachable.indexOf(B), 1);
  f.fire();
  clock.advance(HOLD_FAST_PATH_MS + 20);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers, [fastB], 'gone: the fast path is what the grace period keeps');
  assert.match(ctl.status().peers.find((p) => p.peer === B)?.reason ?? '', /kept from before the restart/);

  // Another time the peer stays reachable without its connection (a real relay-only peer): after
  // the hold the computed path takes over.
  connected = true;
  f.reachable.push(B);
  f.fire();
  clock.advance(20);
  await flush();
  connected = false;
  f.fire();
  clock.advance(20);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers, [fastB], 'held again');
  clock.advance(HOLD_FAST_PATH_MS + 20);
  await flush();
  assert.equal(ctl.status().peers.find((p) => p.peer === B)?.path, 'unreachable', 'after the hold: no direct path and no relay');
  assert.deepEqual(applier.applied.at(-1)!.peers, [], 'nothing programmed for a peer with no path');
  await ctl.stop();
});

test('controller: a peer that leaves the mesh keeps its FDB entries for the grace period (its router may be restarting)', async () => {
  const clock = new FakeClock();
  const applier = new RecordingApplier();
  const f = fakeRouter();
  const ctl = new DataplaneController({ router: f.router, dataplane: applier, clock, logger: silentLogger }, { debounceMs: 10, peerGraceMs: 3000 });
  ctl.start();
  f.reachable.push(B);
  f.fire();
  clock.advance(10);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers.map((p) => p.name), [B]);
  f.reachable.pop();
  f.fire();
  clock.advance(10);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers.map((p) => p.name), [B], 'B kept while it may come back');
  // The grace period counts from the last apply that saw B, at t=0 (the first apply runs at once).
  clock.advance(2969);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers.map((p) => p.name), [B]);
  clock.advance(20);
  await flush();
  assert.deepEqual(applier.applied.at(-1)!.peers, [], 'dropped once the grace period is over');
  await ctl.stop();
});
