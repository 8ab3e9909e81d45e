import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinuxDataplane, type VxlanNetlink } from '../../../src/dataplane/linux/index.js';
import type { DesiredDataplane } from '../../../src/dataplane/index.js';
import type { PeerName } from '../../../src/core/ids.js';
import { silentLogger, recordingLogger } from '../../../src/core/logger.js';
import { RecordingRunner } from '../../../src/os/runner.js';

const P2 = '02:00:00:00:00:02' as PeerName;
const desired: DesiredDataplane = {
  bridge: { name: 'loom', mtu: 1450 },
  vxlan: { name: 'vxlan-loom', vni: 42, port: 4789, mtu: 1450, localIp: '192.168.7.1', localBypass: false },
  peers: [{ name: P2, underlayIp: '192.168.7.2', via: { relayPort: 4790 } }],
  remoteMacs: [{ mac: '02:aa:00:00:00:01', peer: P2 }],
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
