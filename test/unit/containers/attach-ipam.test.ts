/**
 * `attach` takes the address syntax of `run`, without root: a RecordingRunner stands in for the
 * OS, a stand-in IPAM records assign/release, a fake process table gives PIDs their start times.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachmentId, ContainersSubsystem } from '../../../src/containers/daemon.js';
import type { ProcessTable } from '../../../src/containers/processes.js';
import { type AddressSpec, formatAddressSpec, parseAddressSpec as spec } from '../../../src/core/address-spec.js';
import { FakeClock } from '../../../src/core/clock.js';
import { type Cidr, formatCidr, parseCidr } from '../../../src/core/net.js';
import { isLoomError } from '../../../src/core/errors.js';
import { recordingLogger, silentLogger, type Logger } from '../../../src/core/logger.js';
import { RecordingRunner } from '../../../src/os/runner.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';

const PID = 4242;

function fakeProcesses(alive: Map<number, number>): ProcessTable {
  return { startTime: (pid) => alive.get(pid) ?? null, children: () => [], inOtherPidNamespace: () => false, signal: () => {} };
}

interface Setup {
  containers: ContainersSubsystem;
  runner: RecordingRunner;
  calls: string[];
  alive: Map<number, number>;
  dir: string;
  /** Link operations (attach); the runner sees detach's commands only. */
  links: MemoryNetnsLinks;
  done(): void;
}

function setup(withIpam = true, logger: Logger = silentLogger): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'loom-attach-ipam-'));
  const calls: string[] = [];
  const runner = new RecordingRunner();
  const links = new MemoryNetnsLinks();
  let next = 7;
  const ipam = {
    async assign(id: string, address: AddressSpec) {
      calls.push(`assign ${id} ${formatAddressSpec(address)}`);
      return address.kind === 'static' ? address.cidr : parseCidr(`10.32.0.${next++}/12`);
    },
    async release(id: string) {
      calls.push(`release ${id}`);
      return 1;
    },
    covers: (cidr: Cidr) => /^10\.(3[2-9]|4[0-7])\./.test(formatCidr(cidr)),
  };
  const alive = new Map([[PID, 777]]);
  const containers = new ContainersSubsystem(
    { clock: new FakeClock(), logger, runner, netnsLinks: links, processes: fakeProcesses(alive), ...(withIpam ? { ipam } : {}) },
    { stateDir: dir },
  );
  return { containers, runner, links, calls, alive, dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function commands(r: RecordingRunner): string[] {
  return r.calls.map((c) => [c.cmd, ...c.args].join(' '));
}

test('attach with no address or net:... takes an IPAM address for an id stable per target; detach releases it once', async () => {
  const s = setup();
  try {
    const first = await s.containers.attach({ pid: PID }, spec(''));
    assert.deepEqual(s.calls, [`assign attach:pid:${PID}:777 net:default`]);
    assert.equal(first.cidr, '10.32.0.7/12');
    assert.equal(first.ipamId, `attach:pid:${PID}:777`);
    assert.ok(s.links.ops.includes(`/proc/${PID}/ns/net: addr add 10.32.0.7/12 dev ethwe`));

    const second = await s.containers.attach({ pid: PID }, spec('net:10.32.1.0/24'));
    assert.equal(s.calls[1], `assign attach:pid:${PID}:777 net:10.32.1.0/24`);
    assert.equal(s.containers.attachments().length, 2);

    s.runner.calls.length = 0;
    const one = await s.containers.detachTarget({ pid: PID }, parseCidr(second.cidr));
    assert.deepEqual(one.map((a) => a.cidr), [second.cidr]);
    assert.deepEqual(commands(s.runner), [`nsenter --target ${PID} --net ip addr del ${second.cidr} dev ethwe`]);
    assert.equal(s.calls.length, 2, 'the id still holds the first address: nothing released yet');

    s.runner.calls.length = 0;
    await s.containers.detachTarget({ pid: PID });
    assert.deepEqual(commands(s.runner), [`ip link del ${first.hostVeth}`]);
    assert.deepEqual(s.calls.slice(2), [`release attach:pid:${PID}:777`]);
    assert.deepEqual(s.containers.attachments(), []);
    await assert.rejects(s.containers.detachTarget({ pid: PID }), (e) => isLoomError(e, 'ERR_NOT_FOUND'));
  } finally {
    s.done();
  }
});

test('attach: a static address inside the range is claimed, outside it used as given (no IPAM call)', async () => {
  const s = setup();
  try {
    const outside = await s.containers.attach({ pid: PID }, spec('192.168.77.5/24'));
    assert.equal(outside.cidr, '192.168.77.5/24');
    assert.equal(outside.ipamId, undefined);
    assert.deepEqual(s.calls, []);
    const inside = await s.containers.attach({ pid: PID }, spec('10.40.0.9/12'));
    assert.deepEqual(s.calls, [`assign attach:pid:${PID}:777 10.40.0.9/12`]);
    assert.equal(inside.cidr, '10.40.0.9/12');
    await s.containers.detachTarget({ pid: PID }, parseCidr('192.168.77.5/24'));
    assert.equal(s.calls.length, 1, 'an address IPAM never gave is not released');
  } finally {
    s.done();
  }
});

test('attach by netns path: the id is the namespace file (device, inode), the same for every attach', async () => {
  const s = setup();
  try {
    const path = join(s.dir, 'netns-file');
    writeFileSync(path, '');
    const st = statSync(path);
    assert.equal(attachmentId({ path }, fakeProcesses(new Map())), `attach:netns:${st.dev}:${st.ino}`);
    await s.containers.attach({ path }, spec('net:default'));
    assert.deepEqual(s.calls, [`assign attach:netns:${st.dev}:${st.ino} net:default`]);
    assert.throws(() => attachmentId({ path: join(s.dir, 'missing') }, fakeProcesses(new Map())), (e) => isLoomError(e, 'ERR_NOT_FOUND'));
  } finally {
    s.done();
  }
});

test('attach: a reused PID (other start time) gets another id; a gone PID is ERR_NOT_FOUND before IPAM is asked', async () => {
  const processes = new Map([[PID, 1]]);
  const a = attachmentId({ pid: PID }, fakeProcesses(processes));
  processes.set(PID, 2);
  assert.notEqual(attachmentId({ pid: PID }, fakeProcesses(processes)), a);
  const s = setup();
  try {
    await assert.rejects(s.containers.attach({ pid: 9999 }, spec('')), (e) => isLoomError(e, 'ERR_NOT_FOUND'));
    assert.deepEqual(s.calls, []);
    assert.deepEqual(s.runner.calls, []);
  } finally {
    s.done();
  }
});

test('attach that fails after the allocation releases it, unless an earlier attachment holds the id', async () => {
  const s = setup();
  try {
    s.links.failOn = /create veth/;
    await assert.rejects(s.containers.attach({ pid: PID }, spec('')), (e) => isLoomError(e, 'ERR_OS_COMMAND'));
    assert.deepEqual(s.calls, [`assign attach:pid:${PID}:777 net:default`, `release attach:pid:${PID}:777`]);
    assert.deepEqual(s.containers.attachments(), []);

    s.links.failOn = null;
    await s.containers.attach({ pid: PID }, spec(''));
    s.links.failOn = /addr add/;
    s.calls.length = 0;
    await assert.rejects(s.containers.attach({ pid: PID }, spec('net:10.32.1.0/24')), (e) => isLoomError(e, 'ERR_OS_COMMAND'));
    assert.deepEqual(s.calls, [`assign attach:pid:${PID}:777 net:10.32.1.0/24`], 'the id holds the first attachment: not released');
    assert.equal(s.containers.attachments().length, 1);
  } finally {
    s.done();
  }
});

test('attach without IPAM: net:default is ERR_UNAVAILABLE; a static address still works', async () => {
  const s = setup(false);
  try {
    await assert.rejects(s.containers.attach({ pid: PID }, spec('net:default')), (e) => isLoomError(e, 'ERR_UNAVAILABLE') && /a\.b\.c\.d\/n/.test(e.message));
    assert.deepEqual(s.runner.calls, []);
    assert.equal((await s.containers.attach({ pid: PID }, spec('10.32.0.3/12'))).cidr, '10.32.0.3/12');
  } finally {
    s.done();
  }
});

test('start: an attachment whose process died is forgotten and its address released', async () => {
  const s = setup();
  try {
    await s.containers.attach({ pid: PID }, spec(''));
    s.alive.delete(PID);
    s.calls.length = 0;
    await s.containers.start();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(s.containers.attachments(), []);
    assert.deepEqual(s.calls, [`release attach:pid:${PID}:777`]);
    await s.containers.stop();
  } finally {
    s.done();
  }
});

test('attach and detach are one info line each, naming the target and the address', async () => {
  const log = recordingLogger();
  const s = setup(true, log);
  try {
    const a = await s.containers.attach({ pid: PID }, spec(''));
    await s.containers.detachTarget({ pid: PID });
    const lines = log.records.filter((r) => r.level !== 'debug').map((r) => [r.msg, r.obj]);
    assert.deepEqual(lines, [
      ['container attached', { target: `pid:${PID}`, cidr: a.cidr, mac: a.mac }],
      ['container detached', { target: `pid:${PID}`, cidrs: [a.cidr] }],
    ]);
  } finally {
    s.done();
  }
});
