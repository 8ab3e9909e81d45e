import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerRuntime, ContainerStore, type ContainerEvent, type ContainerRecord, type ProcessTable } from '../../../src/containers/index.js';
import { FakeClock } from '../../../src/core/clock.js';
import { isLoomError } from '../../../src/core/errors.js';
import { parseCidr } from '../../../src/core/net.js';
import type { ContainerId } from '../../../src/core/ids.js';
import { RecordingRunner } from '../../../src/os/runner.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';

/** Processes as a table: pid -> start time. SIGKILL always kills; SIGTERM only if `obeysTerm`. */
class FakeProcesses implements ProcessTable {
  alive = new Map<number, number>();
  signals: Array<[number, string, number]> = [];
  constructor(private readonly clock: FakeClock, private readonly obeysTerm = false) {}
  startTime(pid: number): number | null {
    return this.alive.get(pid) ?? null;
  }
  children(): number[] {
    return [];
  }
  inOtherPidNamespace(): boolean {
    return true;
  }
  signal(pid: number, signal: NodeJS.Signals): void {
    this.signals.push([pid, signal, this.clock.now()]);
    if (signal === 'SIGKILL' || this.obeysTerm) this.alive.delete(pid);
  }
}

function record(id: string, name: string, pid: number, start = 1000): ContainerRecord {
  return { id: id as ContainerId, name, pid, pidStartTime: start, unsharePid: pid - 1, mac: '02:00:00:00:00:01', cidrs: ['10.32.0.1/12'], hostVeth: `vlm${id}`, bridge: 'loom', createdAt: '2020-01-01T00:00:00.000Z' };
}

function setup(obeysTerm = false) {
  const dir = mkdtempSync(join(tmpdir(), 'loom-rt-'));
  const clock = new FakeClock();
  const processes = new FakeProcesses(clock, obeysTerm);
  const runner = new RecordingRunner();
  const rt = new ContainerRuntime({ clock, processes, runner, netnsLinks: new MemoryNetnsLinks() }, { stateDir: dir, stopGraceMs: 500, watchIntervalMs: 250 });
  const events: ContainerEvent[] = [];
  rt.onEvent((e) => events.push(e));
  return { dir, clock, processes, runner, rt, events, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

/** Drives the fake clock until `p` settles (bounded). */
async function drive<T>(clock: FakeClock, p: Promise<T>, stepMs = 10, maxSteps = 1000): Promise<T> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < maxSteps && !settled; i++) {
    await flush();
    clock.advance(stepMs);
  }
  return p;
}

test('watcher notices a dead container within one interval, deletes its veth and record, and tells listeners', async () => {
  const s = setup();
  try {
    s.rt.store.save(record('aaaaaaaaaaaa', 'web', 101));
    s.rt.store.save(record('bbbbbbbbbbbb', 'db', 201));
    s.processes.alive.set(101, 1000).set(201, 1000);
    s.rt.watch();
    s.clock.advance(250);
    await flush();
    assert.equal(s.events.length, 0);
    s.processes.alive.delete(201);
    s.clock.advance(250);
    for (let i = 0; i < 5; i++) await flush();
    assert.deepEqual(s.events.map((e) => `${e.type} ${e.container.name}`), ['died db']);
    assert.deepEqual(s.runner.calls.map((c) => [c.cmd, ...c.args].join(' ')), ['ip link del vlmbbbbbbbbbbbb']);
    assert.deepEqual(s.rt.list().map((r) => r.name), ['web']);
    assert.equal(s.clock.pending, 1, 'still watching web');
    s.processes.alive.delete(101);
    s.clock.advance(250);
    for (let i = 0; i < 5; i++) await flush();
    assert.deepEqual(s.events.map((e) => `${e.type} ${e.container.name}`), ['died db', 'died web']);
    assert.equal(s.clock.pending, 0, 'no container left: no timer (an idle router does not wake for nothing)');
    s.rt.unwatch();
    assert.equal(s.clock.pending, 0);
    const idle = setup();
    try {
      idle.rt.watch();
      assert.equal(idle.clock.pending, 0, 'nothing to watch: not armed');
    } finally {
      idle.done();
    }
  } finally {
    s.done();
  }
});

test('a reused PID (other start time) counts as dead and is never signalled', async () => {
  const s = setup();
  try {
    s.rt.store.save(record('cccccccccccc', 'old', 301, 1000));
    s.processes.alive.set(301, 5555);
    const dead = await s.rt.checkDeaths();
    assert.deepEqual(dead.map((r) => r.name), ['old']);
    await drive(s.clock, s.rt.remove('cccccccccccc').catch(() => null));
    assert.deepEqual(s.processes.signals, []);
  } finally {
    s.done();
  }
});

test('remove sends SIGTERM, waits the grace period, then SIGKILL; deletes veth and record; emits removed', async () => {
  const s = setup(false);
  try {
    s.rt.store.save(record('dddddddddddd', 'stubborn', 401));
    s.processes.alive.set(401, 1000);
    const r = await drive(s.clock, s.rt.remove('stubborn'));
    assert.equal(r.name, 'stubborn');
    assert.deepEqual(s.processes.signals.map(([pid, sig]) => `${pid} ${sig}`), ['401 SIGTERM', '401 SIGKILL']);
    const [, , tTerm] = s.processes.signals[0]!;
    const [, , tKill] = s.processes.signals[1]!;
    assert.ok(tKill - tTerm >= 500, `SIGKILL after ${tKill - tTerm} ms`);
    assert.deepEqual(s.runner.calls.map((c) => c.args.join(' ')), ['link del vlmdddddddddddd']);
    assert.deepEqual(s.rt.list(), []);
    assert.deepEqual(s.events.map((e) => e.type), ['removed']);
  } finally {
    s.done();
  }
});

test('remove of a process that obeys SIGTERM sends no SIGKILL', async () => {
  const s = setup(true);
  try {
    s.rt.store.save(record('eeeeeeeeeeee', 'polite', 501));
    s.processes.alive.set(501, 1000);
    await drive(s.clock, s.rt.remove('eeeeeeeeeeee'));
    assert.deepEqual(s.processes.signals.map(([, sig]) => sig), ['SIGTERM']);
  } finally {
    s.done();
  }
});

test('bad input is refused at the edge with stable codes, before any command runs', async () => {
  const s = setup();
  try {
    const base = { name: 'web', cidr: parseCidr('10.32.0.1/12'), cmd: ['sleep', '1'], bridge: 'loom', mtu: 1450 };
    const address = base.cidr.address;
    for (const bad of [{ name: '-web' }, { name: 'a'.repeat(64) }, { cidr: { address, prefix: 0 } }, { cidr: { address, prefix: 33 } }, { mac: 'ff:ff:ff:ff:ff:ff' }, { cmd: [] }, { bridge: 'a/b' }, { mtu: 10 }]) {
      await assert.rejects(s.rt.run({ ...base, ...bad }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
    }
    assert.deepEqual(s.runner.calls, []);
    assert.throws(() => s.rt.find('nope'), (e) => isLoomError(e, 'ERR_NOT_FOUND'));
    s.rt.store.save(record('ffffffffffff', 'web', 601));
    s.processes.alive.set(601, 1000);
    await assert.rejects(s.rt.run(base), (e) => isLoomError(e, 'ERR_CONFLICT'));
    assert.throws(() => s.rt.exec('web', ['a\0b']), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  } finally {
    s.done();
  }
});

test('store: atomic JSON per container; a corrupt file is ERR_INVALID_CONFIG on load and skipped by list', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-store-'));
  try {
    const store = new ContainerStore(dir);
    store.save(record('111111111111', 'a', 10));
    store.save({ ...record('111111111111', 'a', 10), cidrs: ['10.32.0.1/12', '10.40.0.1/24'] });
    assert.deepEqual(store.load('111111111111' as ContainerId)!.cidrs, ['10.32.0.1/12', '10.40.0.1/24']);
    mkdirSync(join(dir, 'containers'), { recursive: true });
    writeFileSync(join(dir, 'containers', '222222222222.json'), '{"id":');
    writeFileSync(join(dir, 'containers', '333333333333.json'), '{"id":"333333333333"}');
    assert.throws(() => store.load('222222222222' as ContainerId), (e) => isLoomError(e, 'ERR_INVALID_CONFIG'));
    assert.throws(() => store.load('333333333333' as ContainerId), (e) => isLoomError(e, 'ERR_INVALID_CONFIG'));
    assert.throws(() => store.load('../etc' as ContainerId), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.deepEqual(store.list().map((r) => r.id), ['111111111111']);
    store.remove('111111111111' as ContainerId);
    store.remove('111111111111' as ContainerId);
    assert.equal(store.load('111111111111' as ContainerId), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('announce re-sends the gratuitous ARP of a live container (MAC set to itself) and skips a dead one', async () => {
  const s = setup();
  try {
    const live = record('aaaaaaaaaaaa', 'web', 101);
    s.processes.alive.set(101, 1000);
    await s.rt.announce(live);
    assert.deepEqual(
      s.runner.calls.map((c) => [c.cmd, ...c.args].join(' ')),
      ['nsenter --target 101 --net -- ip link set ethwe address 02:00:00:00:00:01'],
    );
    s.runner.calls.length = 0;
    await s.rt.announce(record('bbbbbbbbbbbb', 'gone', 201));
    assert.deepEqual(s.runner.calls, [], 'nothing is run for a container that is not alive');
  } finally {
    s.done();
  }
});
