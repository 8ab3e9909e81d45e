/**
 * The containers' default route (egress) without root: what attach does with the namespace's
 * default routes (pure), the link operations it makes for a new and an existing ethwe, and that `run` and
 * `attach` through the subsystem ask for the gateway only for addresses of the range.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainersSubsystem } from '../../../src/containers/daemon.js';
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { attachNetwork, defaultRouteAction } from '../../../src/containers/attach.js';
import { parseRunSpec } from '../../../src/containers/validate.js';
import { RecordingRunner } from '../../../src/os/runner.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';
import { netnsPath } from '../../../src/os/netns-links.js';
import { parseAddressSpec } from '../../../src/core/address-spec.js';
import { formatCidr, parseCidr, type Cidr } from '../../../src/core/net.js';

test('defaultRouteAction: add when none, keep ours, replace ours to another gateway, never take over another interface', () => {
  assert.equal(defaultRouteAction([], '10.32.0.1'), 'add');
  assert.equal(defaultRouteAction([{ dev: 'ethwe', gateway: '10.32.0.1' }], '10.32.0.1'), 'keep');
  assert.equal(defaultRouteAction([{ dev: 'ethwe', gateway: '10.32.0.9' }], '10.32.0.1'), 'replace');
  assert.equal(defaultRouteAction([{ dev: 'eth0', gateway: '172.17.0.1' }], '10.32.0.1'), 'foreign');
  assert.equal(defaultRouteAction([{ dev: 'ethwe', gateway: '10.32.0.1' }, { dev: 'eth0', gateway: '172.17.0.1' }], '10.32.0.1'), 'foreign');
});

/** A fake namespace at `target` with, when asked, an ethwe holding 10.32.0.5/12 and default routes via ethwe or eth0. */
function namespace(target: { pid: number } | { path: string }, state: { ethwe: boolean; routes: Array<{ dev: string; gateway: string }> }): MemoryNetnsLinks {
  const links = new MemoryNetnsLinks();
  const key = netnsPath(target);
  const ns = links.ns(target);
  if (state.ethwe) {
    const ethwe = links.link(key, { name: 'ethwe', mac: '02:00:00:00:00:01', up: true });
    ns.addresses.push({ index: ethwe.index, address: '10.32.0.5', prefix: 12 });
  }
  for (const r of state.routes) {
    const dev = ns.links.get(r.dev) ?? links.link(key, { name: r.dev, up: true });
    ns.routes.push({ dst: '0.0.0.0', prefix: 0, oif: dev.index, gateway: r.gateway });
  }
  return links;
}

function routeOps(links: MemoryNetnsLinks): string[] {
  return links.ops.filter((l) => l.includes(': route ') && !l.includes('224.0.0.0/4')).map((l) => l.slice(l.indexOf('route ')));
}

test('a new ethwe gets `default via GATEWAY dev ethwe`; without a gateway there is no default route at all', async () => {
  const spec = { target: { pid: 4242 }, cidr: parseCidr('10.32.0.5/12'), bridge: 'loom', mtu: 1450 };
  const withGateway = namespace(spec.target, { ethwe: false, routes: [] });
  await attachNetwork({ links: withGateway, clock: new FakeClock() }, { ...spec, gateway: '10.32.0.1' });
  assert.deepEqual(routeOps(withGateway), ['route replace default via 10.32.0.1 dev ethwe']);
  const without = namespace(spec.target, { ethwe: false, routes: [] });
  await attachNetwork({ links: without, clock: new FakeClock() }, spec);
  assert.deepEqual(routeOps(without), []);
});

test('attach again (ethwe exists): the route is kept as it is, fixed if it points elsewhere, and another interface\'s default is left alone', async () => {
  const spec = { target: { path: '/run/netns/x' }, cidr: parseCidr('10.32.0.5/12'), bridge: 'loom', mtu: 1450, gateway: '10.32.0.1' };
  const ours = namespace(spec.target, { ethwe: true, routes: [{ dev: 'ethwe', gateway: '10.32.0.1' }] });
  await attachNetwork({ links: ours, clock: new FakeClock() }, spec);
  assert.deepEqual(routeOps(ours), [], 'idempotent: nothing changes');
  const stale = namespace(spec.target, { ethwe: true, routes: [{ dev: 'ethwe', gateway: '10.32.0.9' }] });
  await attachNetwork({ links: stale, clock: new FakeClock() }, spec);
  assert.deepEqual(routeOps(stale), ['route replace default via 10.32.0.1 dev ethwe']);
  const docker = namespace(spec.target, { ethwe: true, routes: [{ dev: 'eth0', gateway: '172.17.0.1' }] });
  await attachNetwork({ links: docker, clock: new FakeClock() }, spec);
  assert.deepEqual(routeOps(docker), [], 'a Docker container keeps its own way out');
  await assert.rejects(attachNetwork({ links: docker, clock: new FakeClock() }, { ...spec, gateway: '10.32.0.300' }), { code: 'ERR_INVALID_ARGUMENT' });
});

test('the subsystem asks for a gateway for addresses of the range only; a gateway that fails leaves the attach without a route', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-egress-route-'));
  try {
    const asked: string[] = [];
    let failGateway = false;
    const links = new MemoryNetnsLinks();
    const containers = new ContainersSubsystem(
      {
        clock: new FakeClock(),
        logger: silentLogger,
        runner: new RecordingRunner(),
        netnsLinks: links,
        processes: { startTime: () => 777, children: () => [], inOtherPidNamespace: () => false, signal: () => {} },
        ipam: { assign: async () => parseCidr('10.40.0.7/16'), release: async () => 1, covers: (cidr: Cidr) => formatCidr(cidr).startsWith('10.') },
        gateway: async (cidr: Cidr) => {
          asked.push(formatCidr(cidr));
          if (failGateway) throw new Error('IPAM has no space');
          return '10.40.0.1';
        },
      },
      { stateDir: dir },
    );
    await containers.attach({ pid: 4242 }, parseAddressSpec('net:10.40.0.0/16'));
    assert.deepEqual(asked, ['10.40.0.7/16']);
    assert.deepEqual(routeOps(links), ['route replace default via 10.40.0.1 dev ethwe']);
    links.ops.length = 0;
    await containers.attach({ pid: 4343 }, parseAddressSpec('192.168.5.5/24'));
    assert.deepEqual(asked, ['10.40.0.7/16'], 'a static address outside the range is the user\'s own network: no gateway asked');
    assert.deepEqual(routeOps(links), []);
    failGateway = true;
    links.ops.length = 0;
    await containers.attach({ pid: 4444 }, parseAddressSpec(''));
    assert.deepEqual(routeOps(links), [], 'no gateway: attached all the same, without a default route');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run spec keeps its gateway through validation (the runtime attaches with it); a bad one is refused', () => {
  const spec = { name: 'c1', cidr: parseCidr('10.32.0.5/12'), cmd: ['sleep', '1'], bridge: 'loom', mtu: 1450 };
  assert.equal(parseRunSpec({ ...spec, gateway: '10.32.0.1' }).gateway, '10.32.0.1');
  assert.equal('gateway' in parseRunSpec(spec), false);
  assert.throws(() => parseRunSpec({ ...spec, gateway: 'ten' }), { code: 'ERR_INVALID_ARGUMENT' });
});
