/** `loom expose` / `hide` on the host-address subsystem, without root (MemoryNetnsLinks for adding, RecordingRunner for `ip addr del`, stand-in IPAM). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type AddressSpec, formatAddressSpec } from '../../../src/core/address-spec.js';
import { FakeClock } from '../../../src/core/clock.js';
import { type Cidr, formatCidr, parseCidr } from '../../../src/core/net.js';
import { isLoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { HostAddressSubsystem } from '../../../src/daemon/host-address.js';
import { RecordingRunner } from '../../../src/os/runner.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';

function setup(withIpam = true) {
  const runner = new RecordingRunner();
  const links = new MemoryNetnsLinks();
  const held = new Map<string, string[]>();
  const calls: string[] = [];
  let next = 20;
  const ipam = {
    async allocateHostAddress() {
      calls.push('host');
      return '10.32.0.1/12';
    },
    async assign(id: string, address: AddressSpec) {
      const spec = formatAddressSpec(address);
      calls.push(`assign ${id} ${spec}`);
      const before = held.get(id)?.[0];
      if (before !== undefined) return parseCidr(before);
      const cidr = spec.startsWith('net:') ? `${spec.slice(4).split('.').slice(0, 3).join('.')}.${next++}/${spec.split('/')[1]}` : spec;
      held.set(id, [cidr]);
      return parseCidr(cidr);
    },
    async release(id: string) {
      calls.push(`release ${id}`);
      const n = held.get(id)?.length ?? 0;
      held.delete(id);
      return n;
    },
    lookup: (id: string) => held.get(id) ?? [],
    covers: (cidr: Cidr) => /^10\.(3[2-9]|4[0-7])\./.test(formatCidr(cidr)),
  };
  const host = new HostAddressSubsystem({ clock: new FakeClock(), logger: silentLogger, runner, links, ...(withIpam ? { ipam } : {}) }, { bridge: 'loom' });
  const cmds = () => runner.calls.map((c) => [c.cmd, ...c.args].join(' '));
  const added = () => links.ops.filter((o) => o.includes('addr add'));
  return { host, calls, cmds, added };
}

test('expose with no address is the host address (idempotent); net:CIDR and a static one in range go through IPAM', async () => {
  const s = setup();
  assert.equal(await s.host.expose(), '10.32.0.1/12');
  assert.equal(await s.host.expose('net:default'), '10.32.0.1/12');
  assert.equal(await s.host.expose('net:10.33.0.0/24'), '10.33.0.20/24');
  assert.equal(await s.host.expose('net:10.33.0.0/24'), '10.33.0.20/24', 'the same id again: the same address');
  assert.equal(await s.host.expose('10.40.0.9/12'), '10.40.0.9/12');
  assert.equal(await s.host.expose('192.168.5.1/24'), '192.168.5.1/24');
  assert.deepEqual(s.calls, ['host', 'host', 'assign expose:net:10.33.0.0/24 net:10.33.0.0/24', 'assign expose:net:10.33.0.0/24 net:10.33.0.0/24', 'assign expose:10.40.0.9/12 10.40.0.9/12']);
  assert.deepEqual(s.added(), [
    'host: addr add 10.32.0.1/12 dev loom',
    'host: addr add 10.32.0.1/12 dev loom',
    'host: addr add 10.33.0.20/24 dev loom',
    'host: addr add 10.33.0.20/24 dev loom',
    'host: addr add 10.40.0.9/12 dev loom',
    'host: addr add 192.168.5.1/24 dev loom',
  ]);
  assert.deepEqual(s.cmds(), [], 'no process');
});

test('hide takes an extra address off the bridge and releases the IPAM id holding it; the host address stays', async () => {
  const s = setup();
  const subnetOne = await s.host.expose('net:10.33.0.0/24');
  await s.host.expose('10.40.0.9/12');
  s.calls.length = 0;
  assert.equal(await s.host.hide(subnetOne), 1);
  assert.equal(await s.host.hide('10.40.0.9/12'), 1);
  assert.equal(await s.host.hide('192.168.5.1/24'), 0, 'outside the range: only removed from the bridge');
  assert.deepEqual(s.calls.filter((c) => c.startsWith('release')), ['release expose:net:10.33.0.0/24', 'release expose:10.40.0.9/12']);
  assert.deepEqual(s.cmds().slice(-3), [`ip addr del ${subnetOne} dev loom`, 'ip addr del 10.40.0.9/12 dev loom', 'ip addr del 192.168.5.1/24 dev loom']);
  await assert.rejects(s.host.hide('10.32.0.1/12'), (e) => isLoomError(e, 'ERR_CONFLICT'));
  await assert.rejects(s.host.hide('net:default'), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
});

test('expose: bad input is ERR_INVALID_ARGUMENT before any command; without IPAM only a static address works', async () => {
  const s = setup();
  for (const bad of ['10.0.0.1', 'net:10.0.0.1/24', 'x'.repeat(100), 'net:']) {
    await assert.rejects(s.host.expose(bad), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), bad);
  }
  assert.deepEqual([...s.cmds(), ...s.added()], []);
  const bare = setup(false);
  await assert.rejects(bare.host.expose(), (e) => isLoomError(e, 'ERR_UNAVAILABLE'));
  await assert.rejects(bare.host.expose('net:10.33.0.0/24'), (e) => isLoomError(e, 'ERR_UNAVAILABLE'));
  assert.equal(await bare.host.expose('10.32.0.5/12'), '10.32.0.5/12');
  assert.equal(await bare.host.hide('10.32.0.5/12'), 0);
  assert.deepEqual(bare.added(), ['host: addr add 10.32.0.5/12 dev loom']);
  assert.deepEqual(bare.cmds(), ['ip addr del 10.32.0.5/12 dev loom']);
});
