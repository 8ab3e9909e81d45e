/**
 * The Docker driver protocol handlers (src/docker/plugin.ts), pure: a fake IPAM, a recorder for
 * the veth pair, an in-memory state. Replays what Docker 20.10 sends (the order of
 * /work/shared/lab/runtimes/docker-netplugin.sample-log.jsonl), the --subnet/--ip-range/--ip
 * forms, and bad input: each refused with a clear error and nothing changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { DockerPlugin, type EndpointLinks } from '../../../src/docker/plugin.js';
import { memoryStateStore, type DockerEndpoint } from '../../../src/docker/state.js';
import type { ContainerAddresses } from '../../../src/containers/daemon.js';
import { parseCidr, formatCidr, cidrSize, ipv4FromNumber, formatIpv4Address, parseNetworkCidr } from '../../../src/core/net.js';

const NET = 'a'.repeat(64);
const EP = 'e'.repeat(64);
const RANGE = '10.32.0.0/12';

/** IPAM as the plugin sees it: per id, the next free address in the asked subnet; static claims; a conflict when held by another id. */
function fakeIpam(): ContainerAddresses & { held: Map<string, string>; released: string[] } {
  const held = new Map<string, string>(); // address -> id
  const released: string[] = [];
  const range = parseNetworkCidr(RANGE);
  return {
    held,
    released,
    covers(cidr) {
      const a = cidr.address;
      return a >= range.address && a < range.address + cidrSize(range.prefix);
    },
    async assign(id, spec) {
      if (spec.kind === 'static') {
        const addr = formatIpv4Address(spec.cidr.address);
        const owner = held.get(addr);
        if (owner !== undefined && owner !== id) throw new LoomError('ERR_CONFLICT', `${addr} is taken`);
        held.set(addr, id);
        return spec.cidr;
      }
      const block = spec.kind === 'default' ? range : spec.subnet;
      for (let n = block.address + 1; n < block.address + cidrSize(block.prefix) - 1; n++) {
        const text = formatIpv4Address(ipv4FromNumber(n));
        if (!held.has(text)) {
          held.set(text, id);
          return parseCidr(`${text}/${block.prefix}`);
        }
      }
      throw new LoomError('ERR_EXHAUSTED', 'full');
    },
    async release(id) {
      let n = 0;
      for (const [a, owner] of [...held]) {
        if (owner !== id) continue;
        held.delete(a);
        n++;
      }
      released.push(id);
      return n;
    },
  };
}

function recordingLinks(fail = false): EndpointLinks & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async create(endpointId, mac) {
      calls.push(`create ${endpointId.slice(0, 4)} ${mac}`);
      if (fail) throw new LoomError('ERR_OS_COMMAND', 'ip link add failed');
      return { hostVeth: `vld${endpointId.slice(0, 11)}`, containerVeth: `vld${endpointId.slice(0, 11)}c` };
    },
    async remove(hostVeth) {
      calls.push(`remove ${hostVeth}`);
    },
  };
}

function setup(options: { failLinks?: boolean; now?: number } = {}) {
  const ipam = fakeIpam();
  const links = recordingLinks(options.failLinks);
  const store = memoryStateStore();
  const published: string[][] = [];
  const gone: DockerEndpoint[] = [];
  const plugin = new DockerPlugin(
    {
      addresses: ipam,
      links,
      store,
      logger: silentLogger,
      now: () => options.now ?? 1_000_000,
      onEndpointsChanged: (eps) => published.push(eps.map((e) => e.mac)),
      onEndpointGone: (ep) => gone.push(ep),
    },
    { range: RANGE, defaultSubnet: RANGE },
  );
  const call = (path: string, body: unknown) => plugin.handle(path, body) as Promise<Record<string, unknown>>;
  return { ipam, links, store, plugin, call, published, gone };
}

async function refused(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LoomError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test('handshake: Activate, capabilities, address spaces', async () => {
  const { call } = setup();
  assert.deepEqual(await call('/Plugin.Activate', {}), { Implements: ['NetworkDriver', 'IpamDriver'] });
  assert.deepEqual(await call('/NetworkDriver.GetCapabilities', {}), { Scope: 'local', ConnectivityScope: 'global' });
  assert.deepEqual(await call('/IpamDriver.GetCapabilities', {}), { RequiresMACAddress: false, RequiresRequestReplay: false });
  assert.deepEqual(await call('/IpamDriver.GetDefaultAddressSpaces', {}), { LocalDefaultAddressSpace: 'loom', GlobalDefaultAddressSpace: 'loom' });
});

test('a whole container life as Docker 20.10 drives it: pool, gateway, network, endpoint, join, leave, delete, release', async () => {
  const { call, ipam, links, store, plugin, published, gone } = setup();
  const pool = await call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '', SubPool: '', Options: {}, V6: false });
  assert.deepEqual(pool, { PoolID: 'loom:default', Pool: '0.0.0.0/0', Data: {} }, 'no --subnet: the pool Docker does not check for route overlaps');
  const gw = await call('/IpamDriver.RequestAddress', { PoolID: 'loom:default', Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  assert.equal(gw['Address'], '10.32.0.1/12');
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'loom', Gateway: '10.32.0.1/12', Pool: '0.0.0.0/0' }], IPv6Data: [] });
  const addr = await call('/IpamDriver.RequestAddress', { PoolID: 'loom:default', Address: '', Options: null });
  assert.equal(addr['Address'], '10.32.0.2/12');
  const created = await call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.32.0.2/12', AddressIPv6: '', MacAddress: '' }, Options: {} });
  const mac = (created['Interface'] as { MacAddress: string }).MacAddress;
  assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(parseInt(mac.slice(0, 2), 16) & 3, 2, 'locally administered unicast');
  assert.deepEqual(await call('/NetworkDriver.EndpointOperInfo', { NetworkID: NET, EndpointID: EP }), { Value: {} });
  const joined = await call('/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/x', Options: {} });
  assert.deepEqual(joined, { InterfaceName: { SrcName: 'vldeeeeeeeeeeec', DstPrefix: 'ethwe' } });
  assert.deepEqual(links.calls, [`create eeee ${mac}`]);
  assert.deepEqual(published.at(-1), [mac], 'the joined endpoint MAC is published');
  assert.deepEqual(await call('/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: {} }), {});
  const named = await plugin.nameEndpoint(EP, 'c'.repeat(64), 'web');
  assert.equal(named?.name, 'web');
  assert.equal(store.load().endpoints[EP]?.name, 'web', 'the name is kept in the state');

  await call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP });
  await call('/NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP });
  assert.deepEqual(links.calls.at(-1), 'remove vldeeeeeeeeeee');
  assert.equal(gone.length, 1, 'the name goes at Leave');
  assert.deepEqual(published.at(-1), []);
  await call('/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP });
  await call('/IpamDriver.ReleaseAddress', { PoolID: 'loom:default', Address: '10.32.0.2' });
  assert.ok(!ipam.held.has('10.32.0.2'), 'the address is released in IPAM');
  await call('/NetworkDriver.DeleteNetwork', { NetworkID: NET });
  await call('/IpamDriver.ReleaseAddress', { PoolID: 'loom:default', Address: '10.32.0.1' });
  await call('/IpamDriver.ReleasePool', { PoolID: 'loom:default' });
  assert.deepEqual(store.load(), { networks: {}, endpoints: {}, addresses: {}, attachments: {} }, 'nothing left in the state');
  assert.equal(ipam.held.size, 0, 'nothing left in IPAM');
});

test('--subnet, --ip-range and --ip: addresses from the range with the subnet prefix; a static address held once', async () => {
  const { call, ipam } = setup();
  const pool = await call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '10.40.0.0/24', SubPool: '10.40.0.128/25', V6: false });
  assert.deepEqual(pool, { PoolID: 'loom:10.40.0.0/24:10.40.0.128/25', Pool: '10.40.0.0/24', Data: {} });
  const a = await call('/IpamDriver.RequestAddress', { PoolID: pool['PoolID'], Address: '' });
  assert.equal(a['Address'], '10.40.0.129/24', 'allocated in --ip-range, prefix of --subnet');
  const fixed = await call('/IpamDriver.RequestAddress', { PoolID: pool['PoolID'], Address: '10.40.0.7' });
  assert.equal(fixed['Address'], '10.40.0.7/24');
  assert.equal(ipam.held.get('10.40.0.7'), 'docker-ip-10.40.0.7', 'a static address is held under an id named after it');
  await refused(call('/IpamDriver.RequestAddress', { PoolID: pool['PoolID'], Address: '10.40.0.7' }), 'ERR_CONFLICT', /10\.40\.0\.7 is in use/);
  await refused(call('/IpamDriver.RequestAddress', { PoolID: pool['PoolID'], Address: '10.41.0.7' }), 'ERR_INVALID_ARGUMENT', /not in the network's subnet 10\.40\.0\.0\/24/);
  await call('/IpamDriver.ReleaseAddress', { PoolID: pool['PoolID'], Address: '10.40.0.7' });
  const again = await call('/IpamDriver.RequestAddress', { PoolID: pool['PoolID'], Address: '10.40.0.7' });
  assert.equal(again['Address'], '10.40.0.7/24', 'a released static address can be asked for again at once');
  const plain = await call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '10.41.0.0/16' });
  assert.deepEqual(plain, { PoolID: 'loom:10.41.0.0/16', Pool: '10.41.0.0/16', Data: {} });
});

test('-o loom.no-gateway-service=true: Join tells Docker not to add its gateway bridge', async () => {
  const { call } = setup();
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': { 'loom.no-gateway-service': 'true' } }, IPv4Data: [{ AddressSpace: 'loom', Pool: '0.0.0.0/0' }] });
  await call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.32.0.9/12' } });
  const joined = await call('/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/x' });
  assert.equal(joined['DisableGatewayService'], true);
});

test('pools Loom cannot serve are refused with the reason', async () => {
  const { call } = setup();
  await refused(call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '192.168.5.0/24' }), 'ERR_INVALID_ARGUMENT', /192\.168\.5\.0\/24 is not inside Loom's range 10\.32\.0\.0\/12/);
  await refused(call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '10.0.0.0/8' }), 'ERR_INVALID_ARGUMENT', /not inside Loom's range/);
  await refused(call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '10.40.0.0/24', SubPool: '10.41.0.0/25' }), 'ERR_INVALID_ARGUMENT', /--ip-range 10\.41\.0\.0\/25 is not inside --subnet/);
  await refused(call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '', SubPool: '10.41.0.0/25' }), 'ERR_INVALID_ARGUMENT', /--ip-range needs --subnet/);
  await refused(call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '10.40.0.1/24' }), 'ERR_INVALID_ARGUMENT', /host bits/);
  await refused(call('/IpamDriver.RequestPool', { AddressSpace: 'loom', Pool: '', V6: true }), 'ERR_INVALID_ARGUMENT', /IPv6/);
  await refused(call('/IpamDriver.RequestPool', { AddressSpace: 'LocalDefault', Pool: '' }), 'ERR_INVALID_ARGUMENT', /unknown address space/);
  await refused(call('/NetworkDriver.CreateNetwork', { NetworkID: NET, IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '172.18.0.0/16' }], IPv6Data: [] }), 'ERR_INVALID_ARGUMENT', /--ipam-driver loom/);
  await refused(call('/NetworkDriver.CreateNetwork', { NetworkID: NET, IPv4Data: [{ AddressSpace: 'loom', Pool: '0.0.0.0/0' }], IPv6Data: [{}] }), 'ERR_INVALID_ARGUMENT', /IPv4 only/);
});

test('bad input: unknown network, endpoint or pool, malformed bodies, unknown calls; nothing changes', async () => {
  const { call, store, links, ipam } = setup();
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, IPv4Data: [{ AddressSpace: 'loom', Pool: '0.0.0.0/0' }] });
  const before = JSON.stringify(store.load());
  const saves = store.saves;
  const other = 'b'.repeat(64);
  for (const path of ['/NetworkDriver.Join', '/NetworkDriver.Leave', '/NetworkDriver.DeleteEndpoint', '/NetworkDriver.EndpointOperInfo', '/NetworkDriver.ProgramExternalConnectivity']) {
    await refused(call(path, { NetworkID: NET, EndpointID: other, SandboxKey: '/x' }), 'ERR_NOT_FOUND', /no endpoint b{12}/);
    await refused(call(path, { NetworkID: other, EndpointID: EP, SandboxKey: '/x' }), 'ERR_NOT_FOUND', /no Loom network b{12}/);
  }
  await refused(call('/NetworkDriver.CreateEndpoint', { NetworkID: other, EndpointID: EP, Interface: { Address: '10.32.0.9/12' } }), 'ERR_NOT_FOUND', /no Loom network/);
  await refused(call('/NetworkDriver.DeleteNetwork', { NetworkID: other }), 'ERR_NOT_FOUND', /no Loom network/);
  await refused(call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '' } }), 'ERR_INVALID_ARGUMENT', /no IPv4 address/);
  await refused(call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '192.168.1.5/24' } }), 'ERR_INVALID_ARGUMENT', /not inside Loom's range/);
  await refused(call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.32.0.9/12', MacAddress: 'ff:ff:ff:ff:ff:ff' } }), 'ERR_INVALID_ARGUMENT', /MAC|mac|unicast/i);
  await refused(call('/NetworkDriver.Join', { NetworkID: 42, EndpointID: EP }), 'ERR_INVALID_ARGUMENT', /malformed Join request: NetworkID/);
  await refused(call('/NetworkDriver.Join', null), 'ERR_INVALID_ARGUMENT', /malformed Join request/);
  await refused(call('/NetworkDriver.CreateNetwork', { NetworkID: '../../etc' }), 'ERR_INVALID_ARGUMENT', /malformed CreateNetwork request/);
  await refused(call('/IpamDriver.RequestAddress', { PoolID: 'someone-elses', Address: '' }), 'ERR_NOT_FOUND', /unknown pool id/);
  await refused(call('/IpamDriver.RequestAddress', { PoolID: 'loom:10.40.0.0/24:10.50.0.0/25' }), 'ERR_NOT_FOUND', /unknown pool id/);
  await refused(call('/IpamDriver.ReleaseAddress', { PoolID: 'loom:default', Address: '10.32.0.77' }), 'ERR_NOT_FOUND', /not handed out by Loom/);
  await refused(call('/IpamDriver.ReleasePool', { PoolID: 7 }), 'ERR_INVALID_ARGUMENT', /malformed ReleasePool/);
  await refused(call('/NetworkDriver.Nonsense', {}), 'ERR_NOT_FOUND', /does not implement \/NetworkDriver\.Nonsense/);
  assert.equal(JSON.stringify(store.load()), before, 'the state is unchanged');
  assert.equal(store.saves, saves, 'nothing was saved');
  assert.deepEqual(links.calls, [], 'no veth was touched');
  assert.equal(ipam.held.size, 0, 'no address was taken');
});

test('a Join whose veth cannot be made fails whole; a failed state write gives the address back', async () => {
  const { call, store } = setup({ failLinks: true });
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, IPv4Data: [{ AddressSpace: 'loom', Pool: '0.0.0.0/0' }] });
  await call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.32.0.9/12', MacAddress: '02:00:00:00:00:09' } });
  await refused(call('/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/x' }), 'ERR_OS_COMMAND', /ip link add failed/);
  assert.equal(store.load().endpoints[EP]?.hostVeth, null, 'the endpoint is not joined');

  const ipam = fakeIpam();
  const failing = { load: () => ({ networks: {}, endpoints: {}, addresses: {}, attachments: {} }), save: () => { throw new Error('disk full'); } };
  const plugin = new DockerPlugin({ addresses: ipam, links: recordingLinks(), store: failing, logger: silentLogger }, { range: RANGE, defaultSubnet: RANGE });
  await assert.rejects(plugin.handle('/IpamDriver.RequestAddress', { PoolID: 'loom:default', Address: '' }), /disk full/);
  assert.equal(ipam.held.size, 0, 'the address went back to IPAM');
});

test('calls are serialized: concurrent RequestAddress calls each get their own address and all are recorded', async () => {
  const { call, store } = setup();
  const got = await Promise.all(Array.from({ length: 20 }, () => call('/IpamDriver.RequestAddress', { PoolID: 'loom:default', Address: '' })));
  const addrs = new Set(got.map((g) => g['Address']));
  assert.equal(addrs.size, 20);
  assert.equal(Object.keys(store.load().addresses).length, 20, 'no write lost another');
});

test('forgetStale frees an endpoint whose container is gone, but not one that joined just now', async () => {
  const now = 1_000_000;
  const ipam = fakeIpam();
  const links = recordingLinks();
  const store = memoryStateStore();
  const gone: string[] = [];
  const plugin = new DockerPlugin({ addresses: ipam, links, store, logger: silentLogger, now: () => now, onEndpointGone: (e) => gone.push(e.id) }, { range: RANGE, defaultSubnet: RANGE });
  const call = (p: string, b: unknown) => plugin.handle(p, b);
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, IPv4Data: [{ AddressSpace: 'loom', Pool: '0.0.0.0/0' }] });
  const a = (await call('/IpamDriver.RequestAddress', { PoolID: 'loom:default', Address: '' })) as { Address: string };
  await call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: a.Address } });
  await call('/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/x' });
  assert.equal(await plugin.forgetStale(EP, now + 1_000), false, 'joined a second ago: kept');
  assert.equal(await plugin.forgetStale(EP, now + 60_000), true);
  assert.deepEqual(gone, [EP]);
  assert.equal(store.load().endpoints[EP], undefined);
  assert.equal(ipam.held.size, 0, 'its address is released');
  assert.equal(links.calls.at(-1), 'remove vldeeeeeeeeeee');
  assert.equal(formatCidr(parseCidr(a.Address)), '10.32.0.1/12');
});
