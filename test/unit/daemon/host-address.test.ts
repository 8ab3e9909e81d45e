/**
 * The host address glue without root: IPAM answers (or fails), the bridge gets the address
 * over the link door (MemoryNetnsLinks, recorded), DNS is asked to listen, containers get a resolver only once DNS serves. Retries run
 * on a FakeClock with backoff and stop with the subsystem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { LoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { HostAddressSubsystem } from '../../../src/daemon/host-address.js';
import { formatAddressSpec, type AddressSpec } from '../../../src/core/address-spec.js';
import { formatCidr, parseCidr, type Cidr } from '../../../src/core/net.js';
import { buildHostAddress } from '../../../src/daemon/subsystems.js';
import { RecordingRunner } from '../../../src/os/runner.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';
import type { SubsystemComponents } from '../../../src/daemon/subsystem.js';
import type { DnsSubsystem } from '../../../src/dns/daemon.js';
import type { IpamSubsystem } from '../../../src/ipam/daemon.js';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
};

function fakes(failures: number, cidr = '10.32.0.1/12') {
  const clock = new FakeClock();
  const runner = new RecordingRunner();
  const links = new MemoryNetnsLinks();
  /** What went on the bridge, in order. */
  const added = (): string[] => links.ops.filter((o) => o.includes('addr add'));
  const asked: number[] = [];
  const listened: string[] = [];
  const ipam = {
    async allocateHostAddress(): Promise<string> {
      asked.push(clock.now());
      if (asked.length <= failures) throw new LoomError('ERR_UNAVAILABLE', 'IPAM is not ready');
      return cidr;
    },
  };
  const dns = {
    domain: 'loom.local',
    async listenOn(address: string) {
      listened.push(address);
      return { address };
    },
  };
  return { clock, runner, links, added, asked, listened, ipam, dns };
}

test('the host address: allocated, put on the bridge, DNS listens; containers get the resolver only then', async () => {
  const f = fakes(0);
  const sub = new HostAddressSubsystem({ ipam: f.ipam, dns: f.dns, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom' });
  assert.equal(sub.resolver(), null, 'nothing before start');
  const ready: string[] = [];
  sub.onReady((r) => ready.push(r.nameserver));
  await sub.start();
  await flush();
  assert.deepEqual(f.added(), ['host: addr add 10.32.0.1/12 dev loom']);
  assert.deepEqual(f.runner.calls, [], 'no process: the address goes on over rtnetlink');
  assert.equal(f.links.handlesOpen, 0, 'every netlink handle closed');
  assert.deepEqual(f.listened, ['10.32.0.1']);
  assert.deepEqual(sub.resolver(), { nameserver: '10.32.0.1', domain: 'loom.local' });
  assert.deepEqual(ready, ['10.32.0.1']);
  assert.deepEqual(sub.status(), { cidr: '10.32.0.1/12', bridge: 'loom', dns: true, attempts: 1, lastError: null });
  await sub.stop();
  assert.equal(f.clock.pending, 0);
});

test('IPAM not ready: retried after 1 s, then 2 s, then served; stop ends the retries', async () => {
  const f = fakes(2);
  const sub = new HostAddressSubsystem({ ipam: f.ipam, dns: f.dns, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom' });
  await sub.start();
  await flush();
  assert.equal(sub.resolver(), null);
  assert.match(sub.status().lastError ?? '', /^ERR_UNAVAILABLE/);
  f.clock.advance(999);
  await flush();
  assert.equal(f.asked.length, 1, 'not before 1 s');
  f.clock.advance(1);
  await flush();
  assert.deepEqual(f.asked, [0, 1000]);
  f.clock.advance(2000);
  await flush();
  assert.deepEqual(f.asked, [0, 1000, 3000]);
  assert.deepEqual(sub.resolver(), { nameserver: '10.32.0.1', domain: 'loom.local' });
  assert.equal(f.clock.pending, 0, 'no retry once served');

  const g = fakes(100);
  const failing = new HostAddressSubsystem({ ipam: g.ipam, dns: g.dns, links: g.links, runner: g.runner, clock: g.clock, logger: silentLogger }, { bridge: 'loom' });
  await failing.start();
  await flush();
  await failing.stop();
  g.clock.advance(120_000);
  await flush();
  assert.equal(g.asked.length, 1, 'stopped: no more attempts');
  assert.equal(g.clock.pending, 0);
});

test('no bridge yet: retried too; a restart puts the same address on again, idempotently', async () => {
  const f = fakes(0);
  const bridge = f.links.ns(null).links.get('loom');
  f.links.ns(null).links.delete('loom');
  const sub = new HostAddressSubsystem({ ipam: f.ipam, dns: f.dns, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom' });
  await sub.start();
  await flush();
  assert.equal(sub.resolver(), null);
  assert.match(sub.status().lastError ?? '', /^ERR_NOT_FOUND: no bridge loom/);
  assert.deepEqual(f.listened, [], 'DNS is not asked to bind an address the host does not have');
  f.links.ns(null).links.set('loom', bridge!);
  f.clock.advance(1000);
  await flush();
  assert.equal(sub.resolver()?.nameserver, '10.32.0.1');
  await sub.stop();

  const again = new HostAddressSubsystem({ ipam: f.ipam, dns: f.dns, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom' });
  await again.start();
  await flush();
  assert.deepEqual(f.added(), ['host: addr add 10.32.0.1/12 dev loom', 'host: addr add 10.32.0.1/12 dev loom']);
  assert.deepEqual(f.links.ns(null).addresses, [{ index: bridge!.index, address: '10.32.0.1', prefix: 12 }], 'on the bridge once');
  assert.equal(again.resolver()?.nameserver, '10.32.0.1');
  assert.equal(f.links.handlesOpen, 0);
});

test('without IPAM the first --dns-listen-address is the nameserver; without DNS there is no resolver', async () => {
  const f = fakes(0);
  const noIpam = new HostAddressSubsystem({ dns: f.dns, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom', fixedNameserver: '10.99.0.1' });
  await noIpam.start();
  await flush();
  assert.deepEqual(noIpam.resolver(), { nameserver: '10.99.0.1', domain: 'loom.local' });
  assert.deepEqual(f.added(), [], 'nothing goes on the bridge');
  const noDns = new HostAddressSubsystem({ ipam: f.ipam, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom' });
  await noDns.start();
  await flush();
  assert.equal(noDns.resolver(), null);
  assert.equal(noDns.status().cidr, '10.32.0.1/12', 'the address still goes on the bridge');
});

test('the factory builds nothing without the kernel data plane (unit-test daemons in the root namespace)', () => {
  const routes: string[] = [];
  const api = { route: (method: string, path: string) => routes.push(`${method} ${path}`) };
  const components = { api, clock: new FakeClock(), logger: silentLogger, config: { dns: { listenAddresses: [] } } } as unknown as SubsystemComponents;
  const ipam = {} as IpamSubsystem;
  const dns = {} as DnsSubsystem;
  assert.equal(buildHostAddress(components, { dataplane: null, ipam, dns }), null);
  assert.deepEqual(routes, ['POST /expose', 'POST /hide'], 'the expose routes answer ERR_UNAVAILABLE without it');
});

test('gatewayFor (egress): the host address for its own subnet, an exposed net:SUBNET address for another, none outside the range', async () => {
  const f = fakes(0, '10.32.0.1/16');
  const assigned: string[] = [];
  const ipam = {
    ...f.ipam,
    async assign(id: string, spec: AddressSpec) {
      assigned.push(`${id} ${formatAddressSpec(spec)}`);
      return parseCidr('10.33.0.1/16');
    },
    release: async () => 1,
    lookup: () => [],
    covers: (cidr: Cidr) => /^10\.(3[2-9]|4[0-7])\./.test(formatCidr(cidr)),
  };
  const sub = new HostAddressSubsystem({ ipam, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom' });
  assert.equal(await sub.gatewayFor(parseCidr('10.32.0.9/16')), '10.32.0.1', 'before the background pass: allocated (the same id, the same answer)');
  assert.equal(await sub.gatewayFor(parseCidr('10.32.7.9/16')), '10.32.0.1');
  assert.deepEqual(assigned, [], 'the default subnet needs no extra address');
  assert.equal(await sub.gatewayFor(parseCidr('10.33.0.9/16')), '10.33.0.1');
  assert.deepEqual(assigned, ['expose:net:10.33.0.0/16 net:10.33.0.0/16'], 'another subnet: expose net:SUBNET, once per host and subnet (IPAM answers the same for the same id)');
  assert.equal(await sub.gatewayFor(parseCidr('192.168.1.5/24')), null, 'outside the range: the user\'s own network');
  assert.deepEqual(new Set(f.added()), new Set(['host: addr add 10.32.0.1/16 dev loom', 'host: addr add 10.33.0.1/16 dev loom']), 'each gateway on the bridge');
  assert.deepEqual(
    f.links.ns(null).addresses.map((a) => `${a.address}/${a.prefix}`),
    ['10.32.0.1/16', '10.33.0.1/16'],
    'each once (idempotent)',
  );
  const noIpam = new HostAddressSubsystem({ dns: f.dns, links: f.links, runner: f.runner, clock: f.clock, logger: silentLogger }, { bridge: 'loom', fixedNameserver: '10.99.0.1' });
  assert.equal(await noIpam.gatewayFor(parseCidr('10.32.0.9/16')), null);
});
