/**
 * The docker subsystem (src/docker/daemon.ts) with a fake Docker engine, the real plugin socket in
 * a temp dir, in-memory links and a fake clock: it serves only a Docker of its own
 * namespace, resyncs names and frees what a removed container left, follows connect events, and
 * keeps a `loom attach`ed container through restart and releases it on destroy.
 */
import { test } from 'node:test';
import { DEFAULT_ADDRESS_SPEC } from '../../../src/core/address-spec.js';
import { parseCidr } from '../../../src/core/net.js';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { LoomError } from '../../../src/core/errors.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';
import { DockerSubsystem } from '../../../src/docker/daemon.js';
import type { EngineApi, EngineContainer, EngineEvent } from '../../../src/docker/engine.js';
import { memoryStateStore } from '../../../src/docker/state.js';
import type { EndpointLinks } from '../../../src/docker/plugin.js';
import type { SocketOwner } from '../../../src/docker/ownership.js';

class FakeEngine implements EngineApi {
  up = true;
  containers = new Map<string, EngineContainer>();
  private emit: ((e: EngineEvent) => void) | null = null;
  private end: (() => void) | null = null;
  async ping(): Promise<void> {
    if (!this.up) throw new LoomError('ERR_UNAVAILABLE', 'connect ENOENT');
  }
  async inspect(id: string): Promise<EngineContainer | null> {
    return this.containers.get(id) ?? [...this.containers.values()].find((c) => c.name === id) ?? null;
  }
  async runningContainers(): Promise<string[]> {
    return [...this.containers.values()].filter((c) => c.running).map((c) => c.id);
  }
  events(onEvent: (e: EngineEvent) => void, signal: AbortSignal): Promise<void> {
    this.emit = onEvent;
    return new Promise((resolve) => {
      this.end = resolve;
      signal.addEventListener('abort', () => resolve());
    });
  }
  send(e: EngineEvent): void {
    this.emit?.(e);
  }
  goAway(): void {
    this.up = false;
    this.end?.();
  }
}

const settle = () => new Promise((r) => setTimeout(r, 30));
const NET = 'n'.repeat(64);

function setup(owner: SocketOwner = 'ours') {
  const dir = mkdtempSync(join(tmpdir(), 'loom-docker-'));
  const clock = new FakeClock();
  const engine = new FakeEngine();
  const links: EndpointLinks & { removed: string[] } = { removed: [], create: async (id) => ({ hostVeth: `vld${id.slice(0, 11)}`, containerVeth: `vld${id.slice(0, 11)}c` }), remove: async (h) => void links.removed.push(h) };
  const store = memoryStateStore({
    networks: { [NET]: { id: NET, pools: ['0.0.0.0/0'] } },
    endpoints: {
      live: { id: 'live', networkId: NET, cidr: '10.32.0.5/12', mac: '02:00:00:00:00:05', hostVeth: 'vldlive', containerId: null, name: null, joinedAt: 0 },
      stale: { id: 'stale', networkId: NET, cidr: '10.32.0.6/12', mac: '02:00:00:00:00:06', hostVeth: 'vldstale', containerId: null, name: null, joinedAt: 0 },
    },
    addresses: { '10.32.0.5': 'docker-a', '10.32.0.6': 'docker-b' },
    attachments: {},
  });
  const released: string[] = [];
  const dns: string[] = [];
  const macs: string[][] = [];
  const netnsLinks = new MemoryNetnsLinks();
  const docker = new DockerSubsystem(
    {
      clock,
      logger: silentLogger,
      netnsLinks,
      engine,
      links,
      store,
      owner: () => owner,
      macs: { setLocalMacs: (m) => macs.push([...m]) },
      dns: { onContainerStarted: (name, address, id) => dns.push(`+${name} ${address} ${id}`), onContainerGone: (id) => dns.push(`-${id}`) },
      resolver: () => ({ nameserver: '10.32.0.1', domain: 'loom.local' }),
      addresses: {
        covers: () => true,
        assign: async (id, spec) => (spec.kind === 'static' ? spec.cidr : parseCidr(id.startsWith('docker-attach') ? '10.32.0.9/12' : '10.32.0.8/12')),
        release: async (id) => (released.push(id), 1),
      },
    },
    { config: { enabled: true, api: { kind: 'unix', path: join(dir, 'docker.sock') }, pluginDir: join(dir, 'plugins') }, stateDir: dir, bridge: 'loom', mtu: 1450, range: '10.32.0.0/12', defaultSubnet: '10.32.0.0/12' },
  );
  const cleanup = async () => {
    await docker.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, clock, engine, links, store, released, dns, macs, netnsLinks, docker, cleanup };
}

test('a Docker of another network namespace is not served: no plugin socket, state says why', async () => {
  const s = setup('other');
  try {
    await s.docker.start();
    await settle();
    assert.equal(s.docker.report().state, 'other-namespace');
    assert.equal(s.docker.report().pluginSocket, null);
    assert.ok(!existsSync(join(s.dir, 'plugins', 'loom.sock')));
  } finally {
    await s.cleanup();
  }
});

test('connect: plugin socket served, resync names running endpoints and frees those of removed containers; connect events name new ones', async () => {
  const s = setup();
  s.engine.containers.set('c1', { id: 'c1', name: 'web', running: true, pid: 10, networks: { mynet: { networkId: NET, endpointId: 'live', ipAddress: '10.32.0.5' } } });
  try {
    await s.docker.start();
    await settle();
    const r = s.docker.report();
    assert.equal(r.state, 'connected');
    assert.ok(r.pluginSocket && existsSync(r.pluginSocket));
    assert.deepEqual(s.dns, ['+web 10.32.0.5 live', '-stale'], 'web named again; the stale endpoint name removed');
    assert.deepEqual(s.links.removed, ['vldstale']);
    assert.deepEqual(s.released, ['docker-b'], "the removed container's address went back");
    assert.deepEqual(s.macs.at(-1), ['02:00:00:00:00:05']);
    assert.equal(s.store.load().endpoints['live']?.name, 'web');

    // A new endpoint, then Docker's connect event names it.
    await s.docker.plugin.handle('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: 'fresh', Interface: { Address: '10.32.0.7/12' } });
    await s.docker.plugin.handle('/NetworkDriver.Join', { NetworkID: NET, EndpointID: 'fresh', SandboxKey: '/x' });
    s.engine.containers.set('c2', { id: 'c2', name: 'api', running: true, pid: 11, networks: { mynet: { networkId: NET, endpointId: 'fresh', ipAddress: '10.32.0.7' } } });
    s.engine.send({ type: 'network', action: 'connect', actorId: NET, attributes: { container: 'c2' } });
    s.engine.send({ type: 'network', action: 'connect', actorId: 'not-ours', attributes: { container: 'c2' } });
    await settle();
    assert.deepEqual(s.dns.slice(2), ['+api 10.32.0.7 fresh']);
  } finally {
    await s.cleanup();
  }
});

test("connect event: a container without --dns gets the host's Loom DNS in its resolv.conf; one with --dns, or on another network, is left alone", async () => {
  const s = setup();
  const docker = '# Docker\nnameserver 127.0.0.11\noptions ndots:0\n';
  const files = ['plain', 'given', 'foreign'].map((n) => {
    const f = join(s.dir, `${n}.resolv.conf`);
    writeFileSync(f, docker);
    return f;
  }) as [string, string, string];
  try {
    await s.docker.start();
    await settle();
    for (const [id, ep] of [['p', 'ep-p'], ['g', 'ep-g']] as const) {
      await s.docker.plugin.handle('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: ep, Interface: { Address: id === 'p' ? '10.32.0.20/12' : '10.32.0.21/12' } });
      await s.docker.plugin.handle('/NetworkDriver.Join', { NetworkID: NET, EndpointID: ep, SandboxKey: '/x' });
    }
    s.engine.containers.set('p', { id: 'p', name: 'plain', running: true, pid: 20, networks: { mynet: { networkId: NET, endpointId: 'ep-p', ipAddress: '10.32.0.20' } }, resolvConfPath: files[0], dns: [], dnsSearch: [] });
    s.engine.containers.set('g', { id: 'g', name: 'given', running: true, pid: 21, networks: { mynet: { networkId: NET, endpointId: 'ep-g', ipAddress: '10.32.0.21' } }, resolvConfPath: files[1], dns: ['10.32.0.1'], dnsSearch: [] });
    s.engine.containers.set('f', { id: 'f', name: 'foreign', running: true, pid: 22, networks: { bridge: { networkId: 'b', endpointId: 'x', ipAddress: '172.17.0.2' } }, resolvConfPath: files[2] });
    s.engine.send({ type: 'network', action: 'connect', actorId: NET, attributes: { container: 'p' } });
    s.engine.send({ type: 'network', action: 'connect', actorId: NET, attributes: { container: 'g' } });
    s.engine.send({ type: 'network', action: 'connect', actorId: 'b', attributes: { container: 'f' } });
    await settle();
    assert.match(readFileSync(files[0], 'utf8'), /^nameserver 10\.32\.0\.1\nsearch loom\.local\noptions ndots:1\n$/m);
    assert.doesNotMatch(readFileSync(files[0], 'utf8'), /127\.0\.0\.11/);
    assert.equal(readFileSync(files[1], 'utf8'), docker, '--dns given: left alone');
    assert.equal(readFileSync(files[2], 'utf8'), docker, 'not a Loom network: left alone');
    assert.ok(s.dns.includes('+plain 10.32.0.20 ep-p') && s.dns.includes('+given 10.32.0.21 ep-g'), 'both named');
  } finally {
    await s.cleanup();
  }
});

test('loom attach of a Docker container: attached, attached again on start with a new PID, released on destroy; unknown names refused', async () => {
  const s = setup();
  s.engine.containers.set('c9', { id: 'c9', name: 'other', running: true, pid: 100, networks: { bridge: { networkId: 'b', endpointId: 'x', ipAddress: '172.17.0.2' } } });
  s.engine.containers.set('c8', { id: 'c8', name: 'stopped', running: false, pid: 0, networks: {} });
  try {
    await s.docker.start();
    await settle();
    const a = await s.docker.attach('other', DEFAULT_ADDRESS_SPEC);
    assert.equal(a.cidr, '10.32.0.9/12');
    assert.equal(a.ipamId, 'docker-attach-c9');
    assert.ok(s.netnsLinks.ops.includes('/proc/100/ns/net: addr add 10.32.0.9/12 dev ethwe'));
    assert.ok(s.dns.includes(`+other 10.32.0.9 c9`));
    await assert.rejects(s.docker.attach('nope', DEFAULT_ADDRESS_SPEC), (e: unknown) => e instanceof LoomError && e.code === 'ERR_NOT_FOUND' && /no Docker container "nope"/.test(e.message));
    await assert.rejects(s.docker.attach('stopped', DEFAULT_ADDRESS_SPEC), (e: unknown) => e instanceof LoomError && e.code === 'ERR_CONFLICT');

    s.netnsLinks.removeNamespace({ pid: 100 }); // the old process died: its pair went with its namespace
    s.engine.containers.set('c9', { id: 'c9', name: 'other', running: true, pid: 200, networks: {} });
    s.engine.send({ type: 'container', action: 'start', actorId: 'c9', attributes: {} });
    await settle();
    assert.ok(s.netnsLinks.ops.includes('/proc/200/ns/net: addr add 10.32.0.9/12 dev ethwe'), 'the same address in the new namespace');

    s.engine.containers.delete('c9');
    s.engine.send({ type: 'container', action: 'destroy', actorId: 'c9', attributes: {} });
    await settle();
    assert.ok(s.released.includes('docker-attach-c9'));
    assert.equal(s.dns.at(-1), '-c9');
    assert.equal(s.docker.report().attachments, 0);
  } finally {
    await s.cleanup();
  }
});

test('Docker going away: the loop retries with backoff and reconnects; nothing throws', async () => {
  const s = setup();
  try {
    await s.docker.start();
    await settle();
    assert.equal(s.docker.report().state, 'connected');
    s.engine.goAway();
    await settle();
    assert.equal(s.docker.report().state, 'waiting');
    await assert.rejects(s.docker.attach('x', DEFAULT_ADDRESS_SPEC), (e: unknown) => e instanceof LoomError && e.code === 'ERR_UNAVAILABLE');
    s.clock.advance(1_000);
    await settle();
    assert.equal(s.docker.report().state, 'waiting', 'still down: retried and waiting again');
    s.engine.up = true;
    s.clock.advance(2_000);
    await settle();
    assert.equal(s.docker.report().state, 'connected');
  } finally {
    await s.cleanup();
  }
});
