/**
 * Two daemons in this process, each with a real Router over one MemoryNetwork on a FakeClock and
 * the real DNS subsystem. Records go in through the HTTP API of one and come out of the other's
 * DNS server as real UDP answers (127.0.0.1, port 0). The clock is driven by hand: nothing sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import { ApiClient } from '../../../src/api/client.js';
import { FakeClock, recordingLogger, silentLogger, type Logger } from '../../../src/core/index.js';
import { startDaemon, type RunningDaemon } from '../../../src/daemon/foreground.js';
import { parseLaunchOptions } from '../../../src/daemon/options.js';
import type { SubsystemFactory } from '../../../src/daemon/subsystem.js';
import { createDnsSubsystemFactory } from '../../../src/daemon/subsystems.js';
import type { DnsSubsystem } from '../../../src/dns/daemon.js';
import { dnsSubsystemOf } from '../../helpers/subsystem-of.js';
import { Router } from '../../../src/mesh/router.js';
import { MemoryNetwork } from '../../../src/mesh/transport-memory.js';
import type { GossipData } from '../../../src/mesh/types.js';
import { query, rcodeOf, udpAsk } from './dns-client.js';
import { testApiSocket } from '../../helpers/api-socket.js';

const RCODE_NXDOMAIN = 3;

/** Advances the fake clock in small steps, letting promise-based protocol steps run in between. */
async function driveUntil(clock: FakeClock, done: () => boolean, limitMs: number): Promise<boolean> {
  for (let elapsed = 0; elapsed <= limitMs && !done(); elapsed += 10) {
    clock.advance(10);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return done();
}

interface Host {
  daemon: RunningDaemon;
  client: ApiClient;
  dns: DnsSubsystem | undefined;
  /** UDP port of its DNS server on 127.0.0.1, 0 when none. */
  udpPort: number;
}

async function startHost(
  net: MemoryNetwork,
  clock: FakeClock,
  dir: string,
  index: number,
  options: { peers?: string[]; subsystems?: readonly SubsystemFactory[]; logger?: Logger } = {},
): Promise<Host> {
  const address = `10.0.0.${index}:6783`;
  const config = {
    ...parseLaunchOptions({ stateDir: join(dir, `host${index}`), nickname: `host${index}`, dataplane: 'off', dnsListenAddress: '127.0.0.1', dnsResolvConf: join(dir, 'resolv.conf') }, options.peers ?? [], {}, 'h'),
    httpPort: 0,
    apiSocket: testApiSocket(),
  };
  const daemon = await startDaemon(
    {
      logger: options.logger ?? silentLogger,
      clock,
      subsystems: options.subsystems ?? [createDnsSubsystemFactory({ port: 0 })],
      createRouter: (cfg, identity, logger) =>
        new Router({ transport: net.transport(address), clock, logger }, { identity, port: cfg.port, discovery: cfg.discovery, connLimit: cfg.connLimit, peers: cfg.peers }),
    },
    config,
  );
  const dns = dnsSubsystemOf(daemon.subsystems);
  const udp = dns?.report().listeners[0]?.udp;
  return { daemon, client: new ApiClient({ socket: daemon.apiAddress.socket! }), dns, udpPort: udp ? Number(udp.split(':')[1]) : 0 };
}

/** The A record addresses of a reply, in order. */
function aRecords(reply: Buffer): string[] {
  return (dnsPacket.decode(reply).answers ?? []).map((a) => (a.type === 'A' ? a.data : `?${a.type}`));
}

function connected(a: Host, b: Host): boolean {
  return [a, b].every((h) => h.daemon.router.status().connections.some((c) => c.state === 'established'));
}

test('a record added through the API of host 1 resolves on host 2, and its removal is NXDOMAIN there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-dnsmesh-'));
  writeFileSync(join(dir, 'resolv.conf'), ''); // no upstreams: nothing leaves this machine
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const hosts: Host[] = [];
  try {
    const host1 = await startHost(net, clock, dir, 1);
    hosts.push(host1);
    // Added before host 2 exists: host 2 learns it from the full state sent on the new connection.
    await host1.client.dnsAdd({ name: 'early', address: '10.32.0.4', containerId: 'c0' });
    const host2 = await startHost(net, clock, dir, 2, { peers: ['10.0.0.1'] });
    hosts.push(host2);
    assert.ok(host2.udpPort > 0);
    assert.ok(await driveUntil(clock, () => connected(host1, host2), 30_000), 'connected');
    assert.ok(await driveUntil(clock, () => host2.dns!.lookup('early').length === 1, 5_000), 'full state on connect');

    const added = await host1.client.dnsAdd({ name: 'web', address: '10.32.0.5', containerId: 'c1' });
    assert.equal(added.added, true);
    assert.ok(await driveUntil(clock, () => host2.dns!.lookup('web').length === 1, 5_000), 'broadcast reached host 2');

    const answer = await udpAsk(host2.udpPort, query('web.loom.local'));
    assert.equal(rcodeOf(answer), 0);
    assert.deepEqual(aRecords(answer), ['10.32.0.5']);
    const status2 = await host2.client.dnsStatus();
    const row = status2.records.find((r) => r.name === 'web.loom.local');
    assert.equal(row?.origin, host1.daemon.identity.name);
    assert.equal(row?.originNickname, 'host1');
    assert.deepEqual((await host2.client.dnsLookup('web')).addresses, ['10.32.0.5']);

    const removed = await host1.client.dnsRemove({ name: 'web' });
    assert.equal(removed.removed, 1);
    // Removing through host 2 cannot touch host 1's record.
    assert.equal((await host2.client.dnsRemove({ name: 'early' })).removed, 0);
    assert.ok(await driveUntil(clock, () => host2.dns!.lookup('web').length === 0, 5_000), 'removal reached host 2');
    assert.equal(rcodeOf(await udpAsk(host2.udpPort, query('web.loom.local'))), RCODE_NXDOMAIN);
    assert.deepEqual((await host2.client.dnsLookup('early')).addresses, ['10.32.0.4']);
  } finally {
    for (const h of hosts.reverse()) await h.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed gossip on channel "dns" is logged by the receiving router, not fatal: the connection and DNS keep working', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-dnsmesh-'));
  writeFileSync(join(dir, 'resolv.conf'), '');
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const hosts: Host[] = [];
  // Host 1 runs a rogue "dns" channel whose full state is garbage; host 2 runs the real one.
  const garbage: GossipData = { encode: () => Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 7), merge: (other) => other };
  const rogue: SubsystemFactory = {
    name: 'rogue',
    create({ router }) {
      router.newGossipChannel('dns', { gossip: () => garbage, onGossip: () => null, onGossipBroadcast: () => null, onGossipUnicast: () => {} });
      return { name: 'rogue', start: async () => {}, stop: async () => {} };
    },
  };
  const logger2 = recordingLogger();
  try {
    const host1 = await startHost(net, clock, dir, 1, { subsystems: [rogue] });
    hosts.push(host1);
    const host2 = await startHost(net, clock, dir, 2, { peers: ['10.0.0.1'], logger: logger2 });
    hosts.push(host2);
    assert.ok(await driveUntil(clock, () => connected(host1, host2), 30_000), 'connected');
    assert.ok(
      await driveUntil(clock, () => logger2.records.some((r) => r.msg === 'gossip rejected' && (r.obj as { code?: string }).code === 'ERR_PROTOCOL'), 5_000),
      'the bad payload was rejected with ERR_PROTOCOL and logged',
    );
    await host2.client.dnsAdd({ name: 'still', address: '10.32.0.8' });
    assert.deepEqual(aRecords(await udpAsk(host2.udpPort, query('still.loom.local'))), ['10.32.0.8']);
    clock.advance(1_000);
    assert.ok(connected(host1, host2), 'the connection survived');
  } finally {
    for (const h of hosts.reverse()) await h.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
