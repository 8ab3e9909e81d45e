/**
 * The relay in the controller: RelayDriver over an in-memory mesh (fake clock, no sockets) with a
 * stand-in relay whose probe answers the test decides, then the path choice the controller makes
 * from it; path policy (password, --trusted-subnets, --no-fastdp); launch options; and two real
 * relays on 127.0.0.1 for the unsolicited probe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FakeClock } from '../../../src/core/clock.js';
import { randomPeerName, type PeerName } from '../../../src/core/ids.js';
import { recordingLogger, silentLogger, type Logger } from '../../../src/core/logger.js';
import type { DataplaneOp, DesiredDataplane } from '../../../src/dataplane/index.js';
import {
  choosePath,
  computeDesired,
  DataplaneController,
  dataplaneArgs,
  DEFAULT_SETTINGS,
  parseDataplaneOptions,
  parseTrustedSubnets,
  inTrustedSubnet,
  RelayDriver,
  type ControllerFacts,
  type RelayPort,
} from '../../../src/dataplane/controller/index.js';
import { dataplaneEnabled } from '../../../src/dataplane/controller/subsystem.js';
import { Relay, type ReachabilityListener } from '../../../src/dataplane/relay/index.js';
import type { SessionKeys } from '../../../src/mesh/types.js';
import { createTestMesh, peerNameOf, settle } from '../../helpers/test-mesh.js';

/** Records what the driver asks of the relay; probe answers come from `answer`. */
class StandInRelay implements RelayPort {
  readonly neighbours = new Map<PeerName, { address: string; keys: SessionKeys | null }>();
  readonly ports = new Map<PeerName, number>();
  readonly probes: Array<{ peer: PeerName; unsolicited: boolean }> = [];
  route: (d: PeerName) => PeerName | undefined = () => undefined;
  private listeners: ReachabilityListener[] = [];
  private nextPort = 40000;
  setNeighbour(peer: PeerName, config: { address: string; keys: SessionKeys | null }): void {
    this.neighbours.set(peer, config);
  }
  removeNeighbour(peer: PeerName): void {
    this.neighbours.delete(peer);
  }
  setRoutes(nextHop: (d: PeerName) => PeerName | undefined): void {
    this.route = nextHop;
  }
  async setLocalPort(peer: PeerName): Promise<void> {
    if (!this.ports.has(peer)) this.ports.set(peer, this.nextPort++);
  }
  async removeLocalPort(peer: PeerName): Promise<void> {
    this.ports.delete(peer);
  }
  localPortOf(peer: PeerName): number | undefined {
    return this.ports.get(peer);
  }
  probe(peer: PeerName, options: { unsolicited?: boolean } = {}): void {
    this.probes.push({ peer, unsolicited: options.unsolicited === true });
  }
  onReachability(listener: ReachabilityListener): void {
    this.listeners.push(listener);
  }
  stats(): ReturnType<Relay['stats']> {
    return { neighbours: [...this.neighbours].map(([peer, n]) => ({ peer, address: n.address, authenticated: true, sent: 0 })) } as unknown as ReturnType<Relay['stats']>;
  }
  /** Reports a probe result as the real relay would. */
  answer(peer: PeerName, kind: 'direct' | 'open', ok: boolean): void {
    for (const l of this.listeners) l(peer, ok, ok ? 3 : null, kind === 'open');
  }
}

class RecordingApplier {
  readonly applied: DesiredDataplane[] = [];
  async apply(desired: DesiredDataplane): Promise<DataplaneOp[]> {
    this.applied.push(desired);
    return [];
  }
  async teardown(): Promise<DataplaneOp[]> {
    return [];
  }
}

/** Three routers, fully connected (1 -> 0, 2 -> 1, discovery adds 0 - 2), each with a driver and a controller. */
async function threeHosts(encrypted = false, controllerLogger: Logger = silentLogger, probeIntervals: { probeIntervalMs: number; steadyProbeIntervalMs?: number } = { probeIntervalMs: 2000 }) {
  const mesh = await createTestMesh(3, encrypted ? { router: { password: 'pw' } } : {});
  mesh.connect(1, 0);
  mesh.connect(2, 1);
  const fullMesh = () => mesh.routers.every((r) => mesh.routers.every((o) => o === r || r.connectionTo(o.mesh.self) !== undefined));
  assert.ok(await mesh.runUntil(() => mesh.converged() && fullMesh(), 30_000), 'mesh converges to a full mesh');
  const hosts = mesh.routers.map((router) => {
    const relay = new StandInRelay();
    const applier = new RecordingApplier();
    let controller: DataplaneController | null = null;
    const driver = new RelayDriver({ router, relay, clock: mesh.clock, logger: silentLogger, onChange: () => controller?.schedule() }, { encrypted, ...probeIntervals });
    controller = new DataplaneController({ router, dataplane: applier, clock: mesh.clock, logger: router === mesh.routers[0] ? controllerLogger : silentLogger, relay: () => driver.facts(), wallClock: () => 1 }, { debounceMs: 10 });
    return { router, relay, driver, controller, applier };
  });
  for (const h of hosts) {
    h.controller.start();
    await h.driver.start();
  }
  const applyAll = async () => {
    mesh.clock.advance(20);
    await settle();
    await settle();
  };
  return { mesh, hosts, applyAll };
}

test('relay driver: a neighbour per connection (peer IP + listen port, the connection keys), a port per peer, probes at once and every interval', async () => {
  const { mesh, hosts } = await threeHosts();
  const [h0] = hosts;
  const p1 = peerNameOf(1);
  const p2 = peerNameOf(2);
  assert.deepEqual([...h0!.relay.neighbours.keys()].sort(), [p1, p2]);
  assert.equal(h0!.relay.neighbours.get(p1)!.address, '10.0.0.1:6783');
  assert.equal(h0!.relay.neighbours.get(p1)!.keys, h0!.router.connectionTo(p1)!.sessionKeys, 'the connection keys themselves');
  assert.deepEqual([...h0!.relay.ports.keys()].sort(), [p1, p2]);
  const first = h0!.relay.probes.length;
  assert.deepEqual(
    h0!.relay.probes.map((p) => `${p.peer}/${p.unsolicited}`).sort(),
    [`${p1}/false`, `${p1}/true`, `${p2}/false`, `${p2}/true`],
    'both kinds of probe to each new neighbour right away',
  );
  mesh.clock.advance(2000);
  await settle();
  assert.equal(h0!.relay.probes.length, first + 4, 'and again after the interval');
  for (const h of hosts) await h.driver.stop();
  mesh.clock.advance(10_000);
  await settle();
  assert.equal(h0!.relay.probes.length, first + 4, 'no probes after stop');
  for (const h of hosts) await h.controller.stop();
  await mesh.stop();
});

test('relay driver: settled neighbours are probed in one round per steady interval; a failure on a good path brings the fast rate back until it is confirmed down', async () => {
  const { mesh, hosts } = await threeHosts(false, silentLogger, { probeIntervalMs: 200, steadyProbeIntervalMs: 1000 });
  const [h0] = hosts;
  const p1 = peerNameOf(1);
  const p2 = peerNameOf(2);
  const relay = h0!.relay;
  const answerAll = (ok: (peer: PeerName, kind: 'direct' | 'open') => boolean) => {
    for (const p of relay.probes.splice(0)) relay.answer(p.peer, p.unsolicited ? 'open' : 'direct', ok(p.peer, p.unsolicited ? 'open' : 'direct'));
  };
  const probesIn = async (ms: number): Promise<Array<{ peer: PeerName; unsolicited: boolean; at: number }>> => {
    const seen: Array<{ peer: PeerName; unsolicited: boolean; at: number }> = [];
    const start = mesh.clock.now();
    for (let t = 0; t < ms; t += 10) {
      mesh.clock.advance(10);
      await settle();
      for (const p of relay.probes.splice(0)) {
        seen.push({ ...p, at: mesh.clock.now() - start });
        relay.answer(p.peer, p.unsolicited ? 'open' : 'direct', true);
      }
    }
    return seen;
  };
  // Unknown paths: the fast rate. Answered, they settle and join the shared steady round.
  answerAll(() => true);
  await probesIn(1500);
  const steady = await probesIn(3000);
  const rounds = [...new Set(steady.map((p) => p.at))];
  assert.equal(rounds.length, 3, `one shared round per second for both neighbours (rounds at ${rounds.join(', ')} ms)`);
  for (const at of rounds) assert.equal(steady.filter((p) => p.at === at).length, 4, 'both kinds to both neighbours in each round');
  // A failure on the good path to p1: the fast rate at once, until four failures mark it down.
  const failing: Array<{ peer: PeerName; unsolicited: boolean; at: number }> = [];
  const start = mesh.clock.now();
  for (let t = 0; t < 3000; t += 10) {
    mesh.clock.advance(10);
    await settle();
    for (const p of relay.probes.splice(0)) {
      failing.push({ ...p, at: mesh.clock.now() - start });
      relay.answer(p.peer, p.unsolicited ? 'open' : 'direct', !(p.peer === p1 && !p.unsolicited));
    }
  }
  const toP1 = failing.filter((p) => p.peer === p1 && !p.unsolicited).map((p) => p.at);
  const gaps = toP1.slice(1).map((at, i) => at - toP1[i]!);
  assert.ok(gaps.slice(0, 3).every((g) => g <= 200), `after the first failure, probes to p1 every <= 200 ms until it is down (gaps ${gaps.join(', ')})`);
  assert.equal(h0!.driver.status().neighbours.find((n) => n.peer === p1)?.direct, false, 'p1 is down after four failures');
  const toP2 = failing.filter((p) => p.peer === p2 && !p.unsolicited).map((p) => p.at);
  assert.ok(toP2.length <= 4, `p2 stays at the steady rate (${toP2.length} probes in 3 s)`);
  for (const h of hosts) await h.driver.stop();
  for (const h of hosts) await h.controller.stop();
  await mesh.stop();
});

test('relay driver + controller: blocked UDP to a neighbour goes by the relay through a peer that reaches it; the rest stays fastdp', async () => {
  const { mesh, hosts, applyAll } = await threeHosts();
  const [h0] = hosts;
  const p1 = peerNameOf(1);
  const p2 = peerNameOf(2);
  h0!.relay.answer(p1, 'direct', true);
  h0!.relay.answer(p1, 'open', true);
  h0!.relay.answer(p2, 'direct', false);
  h0!.relay.answer(p2, 'open', false);
  await applyAll();
  const last = h0!.applier.applied.at(-1)!;
  const port2 = h0!.relay.ports.get(p2)!;
  assert.deepEqual(last.peers.map((p) => [p.name, p.via]).sort(), [
    [p1, 'fastdp'],
    [p2, { relayPort: port2 }],
  ]);
  assert.equal(h0!.relay.route(p2), p1, 'the relay sends 2\'s frames through 1');
  assert.equal(h0!.relay.route(p1), p1);
  const row = h0!.controller.status().peers.find((p) => p.peer === p2)!;
  assert.equal(row.path, 'sleeve');
  assert.equal(row.via, p1, 'status names the next hop');
  assert.match(row.reason!, /UDP to the peer is blocked/);

  // Three lost probes in a row do not flap a known-good path (1 % loss); four do.
  for (let i = 0; i < 3; i++) h0!.relay.answer(p1, 'open', false);
  await applyAll();
  assert.equal(h0!.controller.status().peers.find((p) => p.peer === p1)!.path, 'fastdp');
  h0!.relay.answer(p1, 'open', false);
  for (let i = 0; i < 4; i++) h0!.relay.answer(p1, 'direct', false);
  await applyAll();
  const rows = h0!.controller.status().peers;
  assert.deepEqual(rows.map((r) => r.path), ['unreachable', 'unreachable'], 'no neighbour answers: nothing can carry the frames');
  assert.equal(h0!.relay.route(p2), undefined);

  // UDP comes back.
  h0!.relay.answer(p2, 'direct', true);
  h0!.relay.answer(p2, 'open', true);
  await applyAll();
  assert.equal(h0!.controller.status().peers.find((p) => p.peer === p2)!.path, 'fastdp');
  for (const h of hosts) {
    await h.driver.stop();
    await h.controller.stop();
  }
  await mesh.stop();
});

test('a data path change is one info line naming the peer, both paths and the reason; an apply without change logs nothing', async () => {
  const log = recordingLogger();
  const { mesh, hosts, applyAll } = await threeHosts(false, log);
  const [h0] = hosts;
  const p1 = peerNameOf(1);
  const p2 = peerNameOf(2);
  const pathLines = () => log.records.filter((r) => r.msg === 'data path changed').map((r): Record<string, unknown> => ({ level: r.level, ...(r.obj as Record<string, unknown>) }));
  await applyAll();
  assert.deepEqual(pathLines().map((l) => [l.peer, l.from, l.to]).sort(), [[p1, 'none', 'fastdp'], [p2, 'none', 'fastdp']], 'each peer once when it first gets a path');
  const before = log.records.length;
  h0!.relay.answer(p1, 'direct', true);
  h0!.relay.answer(p1, 'open', true);
  h0!.relay.answer(p2, 'direct', false);
  h0!.relay.answer(p2, 'open', false);
  await applyAll();
  const changed = pathLines().slice(2);
  assert.equal(changed.length, 1, JSON.stringify(changed));
  assert.deepEqual({ level: changed[0]!.level, peer: changed[0]!.peer, nickname: changed[0]!.nickname, from: changed[0]!.from, to: changed[0]!.to }, { level: 'info', peer: p2, nickname: mesh.routers[0]!.mesh.nicknameOf(p2) ?? null, from: 'fastdp', to: `sleeve via ${p1}` });
  assert.match(String(changed[0]!.reason), /UDP to the peer is blocked/);
  const infoAfter = log.records.slice(before).filter((r) => r.level !== 'debug');
  assert.equal(infoAfter.length, 1, `only the path change at info: ${JSON.stringify(infoAfter)}`);
  // Probes that confirm what is known, and applies that recompute the same paths: silence.
  const quiet = log.records.length;
  for (let i = 0; i < 5; i++) {
    h0!.relay.answer(p1, 'open', true);
    h0!.relay.answer(p2, 'open', false);
    h0!.controller.schedule();
    await applyAll();
  }
  assert.deepEqual(log.records.slice(quiet).filter((r) => r.level !== 'debug'), []);
  for (const h of hosts) {
    await h.driver.stop();
    await h.controller.stop();
  }
  await mesh.stop();
});

test('relay driver: a peer behind a NAT (data port answers, unsolicited UDP does not) is relayed directly, without a detour', async () => {
  const { mesh, hosts, applyAll } = await threeHosts();
  const [h0] = hosts;
  const p1 = peerNameOf(1);
  const p2 = peerNameOf(2);
  h0!.relay.answer(p1, 'direct', true);
  h0!.relay.answer(p1, 'open', true);
  h0!.relay.answer(p2, 'direct', true);
  h0!.relay.answer(p2, 'open', false);
  await applyAll();
  const row = h0!.controller.status().peers.find((p) => p.peer === p2)!;
  assert.equal(row.path, 'sleeve');
  assert.equal(row.via, undefined, 'straight to the peer');
  assert.equal(h0!.relay.route(p2), p2);
  for (const h of hosts) {
    await h.driver.stop();
    await h.controller.stop();
  }
  await mesh.stop();
});

test('encrypted mesh: every peer through the sealed relay; status says encrypted', async () => {
  const { mesh, hosts, applyAll } = await threeHosts(true);
  const [h0] = hosts;
  for (const p of [peerNameOf(1), peerNameOf(2)]) {
    h0!.relay.answer(p, 'direct', true);
    h0!.relay.answer(p, 'open', true);
  }
  await applyAll();
  const rows = h0!.controller.status().peers;
  assert.deepEqual(rows.map((r) => [r.path, r.encrypted]), [
    ['sleeve', true],
    ['sleeve', true],
  ]);
  assert.ok(h0!.applier.applied.at(-1)!.peers.every((p) => p.via !== 'fastdp' && p.underlayIp === '127.0.0.1'));
  for (const h of hosts) {
    await h.driver.stop();
    await h.controller.stop();
  }
  await mesh.stop();
});

test('choosePath: trusted subnets take fastdp despite a password; --no-fastdp forces the relay', () => {
  const [A, B, C] = [randomPeerName(), randomPeerName(), randomPeerName()];
  const relay = { mode: 'vxlan-port' as const, ports: new Map([[B, 7001], [C, 7002]]), reachable: new Map(), open: new Map(), nextHops: new Map(), encrypted: true };
  const facts: ControllerFacts = {
    self: A,
    reachable: [A, B, C],
    neighbours: new Map([
      [B, { underlayIp: '10.1.2.3', encrypted: true }],
      [C, { underlayIp: '192.168.5.5', encrypted: true }],
    ]),
    macs: new Map(),
    localMacs: [],
    udpBlocked: new Set(),
    relay,
    policy: { forceRelay: false, trustedSubnets: parseTrustedSubnets('10.0.0.0/8') },
  };
  assert.deepEqual(choosePath(B, facts), { via: 'fastdp' });
  assert.deepEqual(choosePath(C, facts), { via: { relayPort: 7002 }, reason: 'encrypted mesh: kernel VXLAN cannot encrypt' });
  const rows = computeDesired(DEFAULT_SETTINGS, facts).peers;
  assert.deepEqual([B, C].map((p) => rows.find((r) => r.peer === p)).map((r) => [r?.path, r?.encrypted]), [
    ['fastdp', false],
    ['sleeve', true],
  ]);
  const forced = { ...facts, policy: { forceRelay: true, trustedSubnets: [] }, neighbours: new Map([[B, { underlayIp: '10.1.2.3', encrypted: false }]]) };
  assert.deepEqual(choosePath(B, forced), { via: { relayPort: 7001 }, reason: 'fast path off (--no-fastdp)' });
});

test('trusted subnets and data plane launch options are parsed at the edge', () => {
  const subnets = parseTrustedSubnets('10.1.2.3/8, 192.168.0.0/16');
  assert.deepEqual(subnets.map((s) => s.text), ['10.0.0.0/8', '192.168.0.0/16']);
  assert.ok(inTrustedSubnet('10.200.0.1', subnets));
  assert.ok(!inTrustedSubnet('11.0.0.1', subnets));
  assert.ok(!inTrustedSubnet('not-an-ip', subnets));
  assert.ok(inTrustedSubnet('1.2.3.4', parseTrustedSubnets('0.0.0.0/0')));
  for (const bad of ['10.0.0.0/33', 'fe80::/10', 'ten/8', '10.0.0.0']) assert.throws(() => parseTrustedSubnets(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad);

  const defaults = parseDataplaneOptions({}, {}, false, () => true);
  assert.deepEqual(defaults, { mode: 'auto', mtu: 1450, fastdp: true, trustedSubnets: [], masquerade: true, relayPath: 'tap', underTestRunner: false });
  assert.equal(parseDataplaneOptions({}, {}, false, () => false).relayPath, 'vxlan-port', 'no /dev/net/tun: the VXLAN-port path');
  assert.equal(parseDataplaneOptions({}, { LOOM_RELAY_PATH: 'vxlan-port' }, false, () => true).relayPath, 'vxlan-port');
  assert.equal(parseDataplaneOptions({}, { LOOM_RELAY_PATH: 'tap' }, false, () => false).relayPath, 'tap');
  assert.throws(() => parseDataplaneOptions({}, { LOOM_RELAY_PATH: 'kernel' }, false), { code: 'ERR_INVALID_ARGUMENT', message: /LOOM_RELAY_PATH/ });
  assert.equal(parseDataplaneOptions({}, { NODE_TEST_CONTEXT: 'child' }, false).underTestRunner, true);
  assert.equal(parseDataplaneOptions({}, {}, true).mtu, 1402, 'with a password: what the sealed relay carries');
  assert.equal(parseDataplaneOptions({}, { LOOM_MTU: '1450' }, true).mtu, 1450, 'LOOM_MTU wins over the default');
  assert.equal(parseDataplaneOptions({ mtu: '1300' }, { LOOM_MTU: '1450' }, true).mtu, 1300, 'the flag wins over LOOM_MTU');
  assert.equal(parseDataplaneOptions({}, { LOOM_DATAPLANE: 'off', LOOM_MTU: '1450' }, false).mode, 'off');
  assert.equal(parseDataplaneOptions({ dataplane: 'on' }, { LOOM_DATAPLANE: 'off' }, false).mode, 'on', 'the flag wins');
  for (const encrypted of [false, true]) {
    const full = parseDataplaneOptions({ dataplane: 'on', mtu: '1300', fastdp: false, trustedSubnets: '10.0.0.0/8', masq: false }, {}, encrypted);
    assert.equal(full.masquerade, false, '--no-masq');
    assert.ok(dataplaneArgs(full).includes('--no-masq'), '--no-masq travels to the foreground daemon');
    assert.deepEqual(parseDataplaneOptions(Object.fromEntries(pairs(dataplaneArgs(full))), {}, encrypted), full, 'the flags for the foreground daemon round-trip');
    const byDefault = parseDataplaneOptions({}, {}, encrypted);
    assert.deepEqual(parseDataplaneOptions(Object.fromEntries(pairs(dataplaneArgs(byDefault))), {}, !encrypted), byDefault, 'the default MTU travels as a flag');
  }
  assert.throws(() => parseDataplaneOptions({ dataplane: 'maybe' }, {}, false), { code: 'ERR_INVALID_ARGUMENT', message: /--dataplane/ });
  assert.throws(() => parseDataplaneOptions({}, { LOOM_DATAPLANE: 'yes' }, false), { code: 'ERR_INVALID_ARGUMENT', message: /LOOM_DATAPLANE/ });
  assert.throws(() => parseDataplaneOptions({ mtu: '100' }, {}, false), { code: 'ERR_INVALID_ARGUMENT', message: /--mtu/ });
});

/** `--dataplane on --mtu 1300 --no-fastdp ...` back into commander's option object. */
function pairs(args: string[]): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    if (flag === '--no-fastdp') out.push(['fastdp', false]);
    else if (flag === '--no-masq') out.push(['masq', false]);
    else out.push([flag.slice(2).replace(/-(.)/g, (_, c: string) => c.toUpperCase()), args[++i]]);
  }
  return out;
}

test('dataplaneEnabled: auto is on for root in a host\'s root namespace, off without root and under the test runner there', () => {
  const root = () => true;
  const lab = () => false;
  assert.equal(dataplaneEnabled('auto', false, root, 0).on, true, 'a real loom launch in the root namespace');
  assert.equal(dataplaneEnabled('auto', true, root, 0).on, false, 'the backstop for unit tests');
  assert.equal(dataplaneEnabled('auto', true, lab, 0).on, true, 'lab namespaces are fine');
  assert.equal(dataplaneEnabled('auto', false, lab, 1000).on, false);
  assert.equal(dataplaneEnabled('on', true, root, 1000).on, true);
  assert.equal(dataplaneEnabled('off', false, lab, 0).on, false);
});

test('relay: an unsolicited probe (from the check port) is answered, and its port is not learned as our address', async () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const clock = new FakeClock();
  const [na, nb] = [randomPeerName(), randomPeerName()];
  const a = new Relay({ clock, logger: silentLogger }, { self: na, dataPort: 0, bindAddress: '127.0.0.1', encrypt: true });
  const b = new Relay({ clock, logger: silentLogger }, { self: nb, dataPort: 0, bindAddress: '127.0.0.1', encrypt: true });
  await a.start();
  await b.start();
  try {
    const aAddr = `127.0.0.1:${a.dataAddress().port}`;
    a.setNeighbour(nb, { address: `127.0.0.1:${b.dataAddress().port}`, keys: { send: k1, receive: k2 } });
    b.setNeighbour(na, { address: aAddr, keys: { send: k2, receive: k1 } });
    const heard: Array<[boolean, boolean]> = [];
    a.onReachability((_p, ok, _rtt, unsolicited) => heard.push([ok, unsolicited]));
    a.probe(nb, { unsolicited: true });
    const end = Date.now() + 3000;
    for (let i = 0; i < 100_000 && heard.length === 0 && Date.now() < end; i++) await settle();
    assert.deepEqual(heard, [[true, true]]);
    assert.equal(b.stats().addressesLearned, 0);
    assert.equal(b.stats().neighbours[0]!.address, aAddr, 'b still sends to a\'s data port');
    a.probe(nb);
    for (let i = 0; i < 100_000 && heard.length === 1 && Date.now() < end; i++) await settle();
    assert.deepEqual(heard[1], [true, false]);
  } finally {
    await a.stop();
    await b.stop();
  }
});
