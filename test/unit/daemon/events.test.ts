import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/core/logger.js';
import { EventLog } from '../../../src/daemon/event-log.js';
import { meshEvents, meshFacts, NO_MESH_FACTS } from '../../../src/daemon/mesh-events.js';
import { macMoveEvents, macOwners, pathEvents } from '../../../src/dataplane/controller/path-events.js';
import { containerEvent } from '../../../src/daemon/subsystems.js';
import type { RouterStatus } from '../../../src/mesh/types.js';
import type { PeerPathStatus } from '../../../src/dataplane/controller/desired.js';
import type { PeerName } from '../../../src/core/ids.js';
import type { ContainerRecord } from '../../../src/containers/types.js';

test('the event log keeps the newest `capacity` events in order, numbered from 1, and tells subscribers', () => {
  let now = 1000;
  const log = new EventLog({ logger: silentLogger, wallClock: () => now++ }, 3);
  const heard: number[] = [];
  const off = log.subscribe((e) => heard.push(e.seq));
  for (let i = 1; i <= 5; i++) log.emit({ kind: 'peer-joined', peer: `p${i}`, text: `peer ${i}` });
  assert.deepEqual(log.list().map((e) => e.seq), [3, 4, 5]);
  assert.deepEqual(log.list().map((e) => e.time), [1002, 1003, 1004]);
  assert.deepEqual(log.list({ afterSeq: 3 }).map((e) => e.seq), [4, 5]);
  assert.deepEqual(log.list({ limit: 1 }).map((e) => e.text), ['peer 5']);
  assert.equal(log.lastSeq(), 5);
  assert.deepEqual(heard, [1, 2, 3, 4, 5]);
  off();
  log.emit({ kind: 'peer-left', text: 'x' });
  assert.equal(heard.length, 5);
  // A listener that throws does not stop the others nor the log.
  log.subscribe(() => {
    throw new Error('boom');
  });
  log.subscribe((e) => heard.push(e.seq));
  log.emit({ kind: 'peer-left', text: 'y' });
  assert.deepEqual(heard.slice(-1), [7]);
  assert.throws(() => new EventLog({ logger: silentLogger }, 0), RangeError);
});

const A = '0a:00:00:00:00:01' as PeerName;
const B = '0a:00:00:00:00:02' as PeerName;
const C = '0a:00:00:00:00:03' as PeerName;

function status(connections: RouterStatus['connections'], peers: Array<[PeerName, string]>): RouterStatus {
  return {
    name: A,
    nickname: 'h1',
    peers: [[A, 'h1'] as [PeerName, string], ...peers].map(([name, nickname]) => ({ name, nickname, uid: '1', version: 1, connections: [] })),
    connections,
  } as unknown as RouterStatus;
}

test('mesh events: a connection established and ended (with the reason the router recorded), peers joining and leaving', () => {
  const up = status([{ address: '192.168.1.2:6783', outbound: true, state: 'established', info: '', peer: { name: B, nickname: 'h2' }, encrypted: true }], [[B, 'h2'], [C, 'h3']]);
  const first = meshEvents(NO_MESH_FACTS, meshFacts(up), up);
  assert.deepEqual(first.map((e) => [e.kind, e.peer]), [['peer-joined', B], ['peer-joined', C], ['connection-up', B]]);
  assert.match(first[2]!.text, /connection to h2 \(0a:00:00:00:00:02\) at 192\.168\.1\.2:6783 established \(encrypted\)/);
  const down = status([{ address: '192.168.1.2:6783', outbound: true, state: 'retrying', info: 'connection reset by peer', retryAt: 1 }], [[C, 'h3']]);
  const second = meshEvents(meshFacts(up), meshFacts(down), down);
  assert.deepEqual(second.map((e) => e.kind), ['connection-down', 'peer-left']);
  assert.match(second[0]!.text, /ended: connection reset by peer$/);
  assert.deepEqual(meshEvents(meshFacts(down), meshFacts(down), down), [], 'no change, no event');
});

test('path events: only when the described path changes; relay hops named by nickname', () => {
  const nick = (p: string): string | undefined => ({ [B]: 'h2', [C]: 'h3' })[p];
  const p = (peer: PeerName, path: PeerPathStatus['path'], extra: Partial<PeerPathStatus> = {}): PeerPathStatus => ({ peer, path, encrypted: false, mtu: 1450, underlayIp: null, macs: 0, ...extra });
  assert.deepEqual(pathEvents([], [p(B, 'fastdp')], nick).map((e) => e.text), ['data path to h2: fastdp']);
  assert.deepEqual(pathEvents([p(B, 'fastdp')], [p(B, 'fastdp', { pmtu: 1400 })], nick), [], 'a PMTU change is not a path change');
  assert.deepEqual(pathEvents([p(C, 'fastdp')], [p(C, 'sleeve', { via: B, reason: 'UDP to the peer is blocked' })], nick).map((e) => [e.kind, e.peer, e.text]), [
    ['path-changed', C, 'data path to h3: fastdp -> relay via h2 (UDP to the peer is blocked)'],
  ]);
  assert.deepEqual(pathEvents([p(C, 'sleeve', { via: B })], [p(C, 'sleeve')], nick).map((e) => e.text), ['data path to h3: relay via h2 -> relay']);
});

test('container events name the container and its address and MAC', () => {
  const c = { id: 'abc', name: 'web', mac: '02:00:00:00:00:01', cidrs: ['10.32.0.5/12'] } as unknown as ContainerRecord;
  assert.deepEqual(containerEvent({ type: 'started', container: c }), { kind: 'container-started', container: 'web', text: 'container web started (10.32.0.5/12, MAC 02:00:00:00:00:01)' });
  assert.equal(containerEvent({ type: 'died', container: c }).kind, 'container-stopped');
  assert.equal(containerEvent({ type: 'removed', container: c }).text, 'container web removed');
});

test('container moves: a MAC that changes peer between applies, not one that appears or goes', () => {
  const nick = (p: string): string | undefined => ({ [B]: 'h2', [C]: 'h3' })[p];
  const before = macOwners([{ peer: B, macs: ['02:00:00:00:00:01', '02:00:00:00:00:02'] }, { peer: C, macs: [] }]);
  const after = macOwners([{ peer: B, macs: ['02:00:00:00:00:02'] }, { peer: C, macs: ['02:00:00:00:00:01', '02:00:00:00:00:03'] }]);
  assert.deepEqual(macMoveEvents(before, after, nick), [{ kind: 'container-moved', peer: C, container: '02:00:00:00:00:01', text: 'container MAC 02:00:00:00:00:01 moved from h2 to h3' }]);
  assert.deepEqual(macMoveEvents(after, after, nick), []);
});
