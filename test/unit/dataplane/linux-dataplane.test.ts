import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandFor, LinuxDataplane, type VxlanNetlink } from '../../../src/dataplane/linux/index.js';
import type { DesiredDataplane, PeerSpec } from '../../../src/dataplane/index.js';
import type { PeerName } from '../../../src/core/ids.js';
import { silentLogger, recordingLogger } from '../../../src/core/logger.js';
import { RecordingRunner } from '../../../src/os/runner.js';
import { KernelModel } from './kernel-model.js';

const P2 = '02:00:00:00:00:02' as PeerName;
const desired: DesiredDataplane = {
  bridge: { name: 'loom', mtu: 1450 },
  vxlan: { name: 'vxlan-loom', vni: 42, port: 4789, mtu: 1450, localIp: '192.168.7.1', localBypass: false },
  peers: [{ name: P2, underlayIp: '192.168.7.2', via: { relayPort: 4790 } }],
  remoteMacs: [{ mac: '02:aa:00:00:00:01', peer: P2 }],
  tap: null,
  bridgeFdb: [],
};

class FakeNetlink implements VxlanNetlink {
  calls: string[] = [];
  constructor(private bypass: boolean | null) {}
  getLocalBypass(name: string): boolean | null {
    this.calls.push(`get ${name}`);
    return this.bypass;
  }
  setLocalBypass(name: string, enabled: boolean): void {
    this.calls.push(`set ${name} ${enabled}`);
    this.bypass = enabled;
  }
}

test('apply on an empty host runs exactly these commands (argument arrays), bypass over netlink', async () => {
  const runner = new RecordingRunner((cmd) => ({ stdout: cmd === 'ip' ? '[]' : '[]' }));
  const netlink = new FakeNetlink(true);
  const dp = new LinuxDataplane({ runner, logger: silentLogger, netlink });
  const ops = await dp.apply(desired);
  assert.equal(ops.length, 8);
  assert.deepEqual(
    runner.calls.map((c) => [c.cmd, ...c.args].join(' ')),
    [
      'ip -j -d link show',
      'ip link add loom mtu 1450 type bridge mcast_snooping 0',
      'ip link set loom up',
      'ip link add vxlan-loom mtu 1450 type vxlan id 42 dstport 4789 local 192.168.7.1 nolearning',
      'ip link set vxlan-loom master loom',
      'ip link set vxlan-loom up',
      'bridge fdb append 00:00:00:00:00:00 dev vxlan-loom dst 127.0.0.1 port 4790 self permanent',
      'bridge fdb replace 02:aa:00:00:00:01 dev vxlan-loom dst 127.0.0.1 port 4790 self permanent',
    ],
  );
  assert.deepEqual(netlink.calls, ['set vxlan-loom false']);
});

const converged = {
  links: JSON.stringify([
    { ifname: 'loom', flags: ['UP'], mtu: 1450, linkinfo: { info_kind: 'bridge' } },
    { ifname: 'vxlan-loom', flags: ['UP'], mtu: 1450, master: 'loom', linkinfo: { info_kind: 'vxlan', info_data: { id: 42, port: 4789, local: '192.168.7.1', learning: false } } },
  ]),
  fdb: JSON.stringify([
    { mac: '00:00:00:00:00:00', dst: '127.0.0.1', port: 4790, flags: ['self'] },
    { mac: '02:aa:00:00:00:01', dst: '127.0.0.1', port: 4790, flags: ['self'] },
  ]),
};

test('apply on a converged host only reads (idempotent), asking netlink for the bypass flag iproute2 6.1 cannot show', async () => {
  const runner = new RecordingRunner((cmd) => ({ stdout: cmd === 'ip' ? converged.links : converged.fdb }));
  const netlink = new FakeNetlink(false);
  const dp = new LinuxDataplane({ runner, logger: silentLogger, netlink });
  assert.deepEqual(await dp.apply(desired), []);
  assert.deepEqual(
    runner.calls.map((c) => [c.cmd, ...c.args].join(' ')),
    ['ip -j -d link show', 'bridge -j fdb show dev vxlan-loom'],
  );
  assert.deepEqual(netlink.calls, ['get vxlan-loom']);
});

test('a kernel that cannot report local bypass gets one warning, not an endless set', async () => {
  const runner = new RecordingRunner((cmd) => ({ stdout: cmd === 'ip' ? converged.links : converged.fdb }));
  const logger = recordingLogger();
  const dp = new LinuxDataplane({ runner, logger, netlink: new FakeNetlink(null) });
  assert.deepEqual(await dp.apply(desired), []);
  assert.deepEqual(await dp.apply(desired), []);
  assert.equal(logger.records.filter((r) => r.level === 'warn').length, 1);
});

test('teardown deletes vxlan then bridge, and a failing command surfaces as ERR_OS_COMMAND', async () => {
  const runner = new RecordingRunner((cmd, args) => (args[0] === 'link' && args[1] === 'del' && args[2] === 'loom' ? { code: 2, stderr: 'busy' } : { stdout: cmd === 'ip' ? converged.links : converged.fdb }));
  const dp = new LinuxDataplane({ runner, logger: silentLogger, netlink: new FakeNetlink(false) });
  await assert.rejects(dp.teardown({ bridge: 'loom', vxlan: 'vxlan-loom' }), (e: any) => e.code === 'ERR_OS_COMMAND');
  assert.deepEqual(
    runner.calls.slice(-2).map((c) => c.args.join(' ')),
    ['link del vxlan-loom', 'link del loom'],
  );
});

// Tap mode: P2 on the fast path, P3 through the relay's tap.
const P3 = '02:00:00:00:00:03' as PeerName;
const TAP = { name: 'tap-loom', mtu: 65521, gsoMaxSize: 65000 };
function tapDesired(p3: PeerSpec['via'] = 'tap'): DesiredDataplane {
  return {
    ...desired,
    peers: [
      { name: P2, underlayIp: '192.168.7.2', via: 'fastdp' },
      { name: P3, underlayIp: '192.168.7.3', via: p3 },
    ],
    remoteMacs: [
      { mac: '02:aa:00:00:00:01', peer: P2 },
      { mac: '02:cc:00:00:00:01', peer: P3 },
    ],
    tap: TAP,
    bridgeFdb: [
      { mac: '02:aa:00:00:00:01', dev: 'vxlan-loom' },
      { mac: '02:cc:00:00:00:01', dev: p3 === 'tap' ? 'tap-loom' : 'vxlan-loom' },
    ],
  };
}

/** A runner that answers iproute2's reads from the model (as JSON) and accepts every write. */
function modelRunner(kernel: KernelModel): RecordingRunner {
  return new RecordingRunner((cmd, args) => {
    const line = [cmd, ...args].join(' ');
    if (line === 'ip -j -d link show') return { stdout: kernel.ipLinkJson() };
    if (line.startsWith('bridge -j fdb show br ')) return { stdout: kernel.bridgeFdbJson(args[4]!) };
    if (line.startsWith('bridge -j fdb show dev ')) return { stdout: kernel.vxlanFdbJson(args[4]!) };
    return {};
  });
}

test('tap mode: reads the tap and the bridge\'s pins, then runs exactly these commands', async () => {
  const kernel = new KernelModel();
  kernel.apply([
    { op: 'create-bridge', name: 'loom', mtu: 1450 },
    { op: 'set-up', name: 'loom' },
    { op: 'create-vxlan', name: 'vxlan-loom', vni: 42, port: 4789, mtu: 1450, localIp: '192.168.7.1' },
    { op: 'set-local-bypass', name: 'vxlan-loom', enabled: false },
    { op: 'set-master', name: 'vxlan-loom', master: 'loom' },
    { op: 'set-up', name: 'vxlan-loom' },
  ]);
  kernel.addTap('tap-loom');
  const runner = modelRunner(kernel);
  const dp = new LinuxDataplane({ runner, logger: silentLogger, netlink: new FakeNetlink(false) });
  const ops = await dp.apply(tapDesired());
  assert.deepEqual(
    runner.calls.map((c) => [c.cmd, ...c.args].join(' ')),
    [
      'ip -j -d link show',
      'bridge -j fdb show br loom',
      'bridge -j fdb show dev vxlan-loom',
      'bridge link set dev vxlan-loom isolated on',
      'ip link set tap-loom mtu 65521',
      'ip link set tap-loom gso_max_size 65000',
      'ip link set tap-loom master loom',
      'bridge link set dev tap-loom isolated on',
      'ip link set tap-loom up',
      'bridge fdb append 00:00:00:00:00:00 dev vxlan-loom dst 192.168.7.2 self permanent',
      'bridge fdb replace 02:aa:00:00:00:01 dev vxlan-loom dst 192.168.7.2 self permanent',
      'bridge fdb replace 02:aa:00:00:00:01 dev vxlan-loom master static sticky',
      'bridge fdb replace 02:cc:00:00:00:01 dev tap-loom master static sticky',
    ],
  );
  kernel.apply(ops);
  const again = modelRunner(kernel);
  assert.deepEqual(await new LinuxDataplane({ runner: again, logger: silentLogger, netlink: new FakeNetlink(false) }).apply(tapDesired()), [], 'read back through iproute2 JSON: converged');
});

test('tap mode over the fake kernel: every apply converges (a second one does nothing), the tap coming and going', async () => {
  const kernel = new KernelModel();
  const netlink = new FakeNetlink(null);
  const steps: Array<[string, DesiredDataplane, (() => void) | null]> = [
    ['port mode first', desired, null],
    ['tap mode, no tap yet', tapDesired(), null],
    ['the relay makes its tap', tapDesired(), () => kernel.addTap('tap-loom')],
    ['P3 moves to the fast path', tapDesired('fastdp'), null],
    ['and back to the tap', tapDesired(), null],
    ['the relay stops: tap and its pins go', tapDesired(), () => kernel.removeTap('tap-loom')],
    ['the relay is back', tapDesired(), () => kernel.addTap('tap-loom')],
  ];
  for (const [what, d, event] of steps) {
    event?.();
    const ops = await new LinuxDataplane({ runner: modelRunner(kernel), logger: silentLogger, netlink }).apply(d);
    kernel.apply(ops);
    assert.deepEqual(await new LinuxDataplane({ runner: modelRunner(kernel), logger: silentLogger, netlink }).apply(d), [], what);
  }
  assert.deepEqual(kernel.bridgeEntries().sort((a, b) => (a.mac < b.mac ? -1 : 1)), [
    { mac: '02:aa:00:00:00:01', dev: 'vxlan-loom' },
    { mac: '02:cc:00:00:00:01', dev: 'tap-loom' },
  ]);
  assert.deepEqual(kernel.fdb.map((e) => e.dst), ['192.168.7.2', '192.168.7.2'], 'only the fast-path peer in the vxlan FDB');
  const tap = kernel.links.get('tap-loom')!;
  assert.deepEqual([tap.master, tap.isolated, tap.mtu, tap.gsoMaxSize, tap.up, kernel.links.get('vxlan-loom')!.isolated], ['loom', true, 65521, 65000, true, true]);
});

test('tap mode without the tap (relay not started): apply succeeds, no tap commands', async () => {
  const runner = new RecordingRunner(() => ({ stdout: '[]' }));
  const dp = new LinuxDataplane({ runner, logger: silentLogger, netlink: new FakeNetlink(true) });
  const ops = await dp.apply(tapDesired());
  assert.ok(!ops.some((o) => ('name' in o && o.name === 'tap-loom') || (o.op === 'bridge-fdb-replace' && o.entry.dev === 'tap-loom')), JSON.stringify(ops));
  assert.ok(ops.some((o) => o.op === 'set-isolated' && o.name === 'vxlan-loom'));
});

test('the tap-mode ops as commands: argument arrays, the bridge\'s own table (master)', () => {
  const line = (op: Parameters<typeof commandFor>[0]) => {
    const c = commandFor(op);
    return c.kind === 'exec' ? [c.cmd, ...c.args].join(' ') : c.kind;
  };
  assert.equal(line({ op: 'set-isolated', name: 'vx-loom', on: true }), 'bridge link set dev vx-loom isolated on');
  assert.equal(line({ op: 'set-isolated', name: 'vx-loom', on: false }), 'bridge link set dev vx-loom isolated off');
  assert.equal(line({ op: 'set-gso-max-size', name: 'tap-loom', size: 65000 }), 'ip link set tap-loom gso_max_size 65000');
  assert.equal(line({ op: 'bridge-fdb-replace', entry: { mac: '02:aa:00:00:00:01', dev: 'tap-loom' } }), 'bridge fdb replace 02:aa:00:00:00:01 dev tap-loom master static sticky');
  assert.equal(line({ op: 'bridge-fdb-delete', entry: { mac: '02:aa:00:00:00:01', dev: 'tap-loom' } }), 'bridge fdb del 02:aa:00:00:00:01 dev tap-loom master');
});
