/**
 * The router side of CNI without root: link operations recorded (MemoryNetnsLinks), IPAM/DNS/MACs faked. Proves that a
 * failing ADD undoes every part (veth, address, DNS name, record), that DEL is idempotent, that
 * records survive a restart and pending or orphaned ones are released at start, and GC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniSubsystem } from '../../../src/cni/daemon.js';
import { CniStore } from '../../../src/cni/store.js';
import { FakeClock } from '../../../src/core/clock.js';
import { parseCidr } from '../../../src/core/net.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';
import type { Logger } from '../../../src/core/logger.js';

const logger = { info() {}, warn() {}, error() {}, debug() {}, child() { return logger; } } as unknown as Logger;

function rig(failOn?: RegExp) {
  const dir = mkdtempSync(join(tmpdir(), 'loom-cni-daemon-'));
  const netns = join(dir, 'netns-a');
  writeFileSync(netns, '');
  const held = new Map<string, string>();
  const dnsNames = new Map<string, string>();
  let macs: string[] = [];
  const links = new MemoryNetnsLinks();
  links.failOn = failOn ?? null;
  const components = {
    clock: new FakeClock(),
    logger,
    netnsLinks: links,
    ipam: {
      assign: async (id: string) => {
        held.set(id, '10.32.0.9/12');
        return parseCidr('10.32.0.9/12');
      },
      release: async (id: string) => (held.delete(id) ? 1 : 0),
      covers: () => true,
    },
    dns: { onContainerStarted: (name: string, _a: string, id: string) => void dnsNames.set(id, name), onContainerGone: (id: string) => void dnsNames.delete(id) },
    macs: { setLocalMacs: (m: Iterable<string>) => void (macs = [...m]) },
    ipamReady: () => ({ ready: true }),
    resolver: () => ({ nameserver: '10.32.0.1', domain: 'loom.local' }),
  };
  const make = () => new CniSubsystem(components, { stateDir: dir, bridge: 'loom', mtu: 1450 });
  return { dir, netns, held, dnsNames, links, make, macs: () => macs, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const key = { containerId: 'c1', ifname: 'eth0', network: 'loom' };

test('ADD plugs in, names and publishes; DEL takes it all back and is idempotent', async () => {
  const r = rig();
  try {
    const cni = r.make();
    await cni.start();
    const a = await cni.add({ ...key, netns: r.netns, podName: 'web' });
    assert.equal(a.cidr, '10.32.0.9/12');
    assert.deepEqual(a.dns, { nameservers: ['10.32.0.1'], search: ['loom.local'] });
    assert.deepEqual([...r.held.keys()], ['cni:c1:eth0']);
    assert.deepEqual([...r.dnsNames.values()], ['web']);
    assert.deepEqual(r.macs(), [a.mac]);
    assert.ok(r.links.ops.some((op) => op.startsWith('host: create veth') && op.includes('peer eth0')));
    assert.ok(r.links.ops.includes(`${r.netns}: route add default via 10.32.0.1 dev eth0`), 'the default route, added only when there is none');
    assert.deepEqual(await cni.add({ ...key, netns: r.netns, podName: 'web' }), a, 'ADD again answers the same');
    assert.deepEqual(await cni.check({ ...key, netns: r.netns }), a, 'CHECK reads eth0 and its address in the sandbox');
    const sandbox = r.links.ns({ path: r.netns });
    const saved = sandbox.addresses.splice(0);
    await assert.rejects(cni.check({ ...key, netns: r.netns }), { code: 'ERR_CONFLICT' }, 'the address is gone');
    sandbox.addresses.push(...saved);
    assert.deepEqual(await cni.del(key), { released: true });
    assert.ok(r.links.ops.includes(`host: delete ${a.hostVeth}`));
    assert.equal(sandbox.links.has('eth0'), false, 'the sandbox end went with the host end');
    assert.deepEqual([r.held.size, r.dnsNames.size, r.macs().length, cni.list().length], [0, 0, 0, 0]);
    assert.deepEqual(await cni.del(key), { released: false });
  } finally {
    r.cleanup();
  }
});

test('an ADD failing at any OS step leaves no veth, address, name or record', async () => {
  for (const step of ['create veth', 'arp_notify', 'addr add', 'set lo up', 'route replace 224']) {
    const r = rig(new RegExp(step));
    try {
      const cni = r.make();
      await assert.rejects(cni.add({ ...key, netns: r.netns, podName: 'web' }), step);
      assert.deepEqual([r.held.size, r.dnsNames.size, r.macs().length, new CniStore(r.dir).load().length], [0, 0, 0, 0], step);
      assert.ok(r.links.ops.some((op) => op.startsWith('host: delete ')), `${step}: the veth is deleted`);
      assert.equal(r.links.ns(null).links.size, 2, `${step}: only lo and the bridge are left on the host`);
      assert.equal(r.links.handlesOpen, 0, `${step}: every handle closed`);
    } finally {
      r.cleanup();
    }
  }
});

test('a missing namespace is ERR_NOT_FOUND before anything is made', async () => {
  const r = rig();
  try {
    await assert.rejects(r.make().add({ ...key, netns: join(r.dir, 'gone') }), { code: 'ERR_NOT_FOUND' });
    assert.deepEqual(r.links.ops, []);
    assert.equal(r.held.size, 0);
  } finally {
    r.cleanup();
  }
});

test('a restarted router keeps live attachments, releases pending ones and those whose namespace is gone; GC releases the unlisted', async () => {
  const r = rig();
  try {
    const first = r.make();
    await first.add({ ...key, netns: r.netns, podName: 'web' });
    const other = join(r.dir, 'netns-b');
    writeFileSync(other, '');
    await first.add({ containerId: 'c2', ifname: 'eth0', network: 'loom', netns: other });
    const store = new CniStore(r.dir);
    store.put({ ...store.load()[0]!, containerId: 'c3', state: 'pending' });
    await first.stop();
    rmSync(other);
    r.dnsNames.clear();
    const second = r.make();
    await second.start();
    assert.deepEqual(second.list().map((a) => a.containerId), ['c1']);
    assert.deepEqual([...r.dnsNames.values()], ['web'], 'names of live attachments are announced again');
    assert.deepEqual(await second.gc({ network: 'loom', valid: [] }), { released: [{ containerId: 'c1', ifname: 'eth0' }] });
    assert.equal(r.held.size, 0);
  } finally {
    r.cleanup();
  }
});
