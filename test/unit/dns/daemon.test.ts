import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import { FakeClock, LoomError, recordingLogger, silentLogger, type PeerName } from '../../../src/core/index.js';
import type { GossipChannel, GossipData, Gossiper, MeshView } from '../../../src/mesh/types.js';
import { DnsSubsystem, EXTERN_CONTAINER_ID } from '../../../src/dns/daemon.js';
import { parseDnsOptions } from '../../../src/dns/daemon-options.js';
import { RecordSet } from '../../../src/dns/records.js';
import { nativeDnsLibrary } from '../../../src/os/dns-responder.js';
import { query, rcodeOf, startFakeUpstream, udpAsk, tcpAsk } from './dns-client.js';

const SELF = '02:00:00:00:00:01' as PeerName;
const OTHER = '02:00:00:00:00:02' as PeerName;

/** A router stand-in: one peer (plus OTHER when `otherReachable`), channels recorded. */
function fakeRouter(otherReachable = true) {
  const broadcasts: GossipData[] = [];
  const gossipers = new Map<string, Gossiper>();
  const mesh: MeshView = {
    self: SELF,
    reachablePeers: () => (otherReachable ? [SELF, OTHER] : [SELF]),
    isReachable: (p) => p === SELF || (otherReachable && p === OTHER),
    nicknameOf: (p) => (p === SELF ? 'host1' : p === OTHER ? 'host2' : undefined),
    onChange: () => () => {},
  };
  return {
    mesh,
    broadcasts,
    gossipers,
    newGossipChannel(name: string, gossiper: Gossiper): GossipChannel {
      gossipers.set(name, gossiper);
      return { name, gossipUnicast: () => {}, gossipBroadcast: (u) => void broadcasts.push(u), gossipNeighbours: () => {} };
    },
  };
}

/** The A record addresses of a reply, in order. */
function aRecords(reply: Buffer): string[] {
  return (dnsPacket.decode(reply).answers ?? []).map((a) => (a.type === 'A' ? a.data : `?${a.type}`));
}

function isCode(code: string) {
  return (e: unknown) => e instanceof LoomError && e.code === code;
}

describe('DnsSubsystem records', () => {
  test('opens gossip channel "dns" at construction and broadcasts local changes', () => {
    const router = fakeRouter();
    const dns = new DnsSubsystem({ router, clock: new FakeClock(), logger: silentLogger });
    assert.equal(router.gossipers.get('dns'), dns.store);
    assert.deepEqual(dns.add('web', '10.32.0.5', 'c1'), { added: true, record: { name: 'web.loom.local', address: '10.32.0.5', containerId: 'c1' } });
    assert.equal(router.broadcasts.length, 1);
    assert.equal(dns.add('WEB.loom.local.', '10.32.0.5', 'c1').added, false, 'same record again');
    assert.equal(router.broadcasts.length, 1);
    assert.equal(dns.add('web', '10.32.0.6').record.containerId, EXTERN_CONTAINER_ID);
    assert.deepEqual(dns.lookup('web').sort(), ['10.32.0.5', '10.32.0.6']);
    assert.deepEqual(dns.lookup('web.loom.local'), dns.lookup('web'));
  });

  test('bad names, addresses and container ids are ERR_INVALID_ARGUMENT; names outside the domain are refused', () => {
    const dns = new DnsSubsystem({ router: fakeRouter(), clock: new FakeClock(), logger: silentLogger }, { domain: 'cluster.test.' });
    assert.equal(dns.domain, 'cluster.test');
    assert.throws(() => dns.add('web.example.com', '10.0.0.1'), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => dns.add('cluster.test', '10.0.0.1'), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => dns.add('we b', '10.0.0.1'), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => dns.add('web', '10.0.0.256'), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => dns.add('web', '10.0.0.1', '../etc'), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => dns.remove({}), isCode('ERR_INVALID_ARGUMENT'));
    assert.deepEqual(dns.lookup('web'), []);
  });

  test('remove matches every field given, and only this host\'s records', () => {
    const router = fakeRouter();
    const dns = new DnsSubsystem({ router, clock: new FakeClock(), logger: silentLogger });
    dns.add('web', '10.32.0.5', 'c1');
    dns.add('web', '10.32.0.6', 'c2');
    dns.add('db', '10.32.0.5', 'c1');
    // A record from another peer, as gossip brings it.
    const remote = new RecordSet([{ name: 'web.loom.local', address: '10.32.1.1', containerId: 'r1' as never, origin: OTHER, version: 1, tombstone: false }]);
    dns.store.onGossip(remote.encode());
    assert.deepEqual(dns.lookup('web').sort(), ['10.32.0.5', '10.32.0.6', '10.32.1.1']);

    assert.equal(dns.remove({ address: '10.32.0.5', name: 'web' }), 1);
    assert.deepEqual(dns.lookup('db'), ['10.32.0.5'], 'other names of the address stay');
    assert.equal(dns.remove({ containerId: 'c2' }), 1);
    assert.equal(dns.remove({ name: 'web' }), 0, "the remote record is not ours to remove");
    assert.deepEqual(dns.lookup('web'), ['10.32.1.1']);
    assert.equal(dns.remove({ address: '10.32.0.5' }), 1);
    assert.deepEqual(dns.lookup('db'), []);
  });

  test('container hooks register and remove, and never throw on bad input (they log)', () => {
    const logger = recordingLogger();
    const dns = new DnsSubsystem({ router: fakeRouter(), clock: new FakeClock(), logger });
    dns.onContainerStarted('web', '10.32.0.7', 'abc123');
    dns.onContainerStarted('api', '10.32.0.7', 'abc123');
    assert.deepEqual(dns.lookup('web'), ['10.32.0.7']);
    dns.onContainerStarted('bad name!', '10.32.0.8', 'x1');
    dns.onContainerStarted('ok', 'not-an-ip', 'x1');
    dns.onContainerGone('not a valid id!');
    assert.equal(logger.records.filter((r) => r.level === 'warn').length, 3);
    dns.onContainerGone('abc123');
    assert.deepEqual(dns.lookup('web'), []);
    assert.deepEqual(dns.lookup('api'), []);
  });

  test('report: records with the origin nickname, counts, no listeners before start', () => {
    const dns = new DnsSubsystem({ router: fakeRouter(false), clock: new FakeClock(), logger: silentLogger }, { ttlSeconds: 5, resolvConf: '/x/resolv.conf' });
    dns.add('web', '10.32.0.5', 'c1');
    dns.store.onGossip(new RecordSet([{ name: 'hidden.loom.local', address: '10.32.1.1', containerId: 'r1' as never, origin: OTHER, version: 1, tombstone: false }]).encode());
    const r = dns.report();
    assert.equal(r.domain, 'loom.local');
    assert.equal(r.ttlSeconds, 5);
    assert.equal(r.resolvConf, '/x/resolv.conf');
    assert.deepEqual(r.listeners, []);
    assert.deepEqual(r.records, [{ name: 'web.loom.local', address: '10.32.0.5', containerId: 'c1', origin: SELF, originNickname: 'host1', version: 1 }]);
    assert.deepEqual(r.counts, { live: 1, hidden: 1, tombstones: 0 });
    assert.equal(r.stats.queries, 0);
  });
});

describe('DnsSubsystem listeners (real sockets on 127.0.0.1)', () => {
  test('an address given before start is bound at start; listenOn after start binds at once; both answer from one store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-dnsd-'));
    const upstream = await startFakeUpstream('192.0.2.99');
    writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    // The path as `loom launch` would set it from this environment (LOOM_DNS_UDP, LOOM_DNS_NATIVE, read at the edge).
    const launch = parseDnsOptions({}, process.env);
    const dns = new DnsSubsystem(
      { router: fakeRouter(), clock: new FakeClock(), logger: silentLogger },
      { listenAddresses: ['127.0.0.1'], port: 0, resolvConf: join(dir, 'resolv.conf'), upstreamPort: upstream.port, udpPath: launch.udpPath, nativeResponder: launch.nativeResponder },
    );
    try {
      const early = await dns.listenOn('127.0.0.1');
      assert.equal(early.udp, undefined, 'not bound before start');
      await dns.start();
      dns.add('web', '10.32.0.5', 'c1');
      const [first] = dns.report().listeners;
      assert.ok(first?.udp && first.tcp, JSON.stringify(dns.report().listeners));
      const native = launch.nativeResponder && typeof (await nativeDnsLibrary()) !== 'string';
      const expected = launch.udpPath === 'auto' ? (native ? 'native' : 'batched') : launch.udpPath;
      assert.equal(first.udpPath, expected, 'the report says how UDP is served');
      const udpPort = Number(first.udp.split(':')[1]);
      const tcpPort = Number(first.tcp.split(':')[1]);

      const reply = dnsPacket.decode(await udpAsk(udpPort, query('web.loom.local')));
      assert.deepEqual(reply.answers?.map((a) => (a.type === 'A' ? [a.data, a.ttl] : a.type)), [['10.32.0.5', 1]]);
      const [tcpReply] = await tcpAsk(tcpPort, [query('web')]);
      assert.deepEqual(aRecords(tcpReply!), ['10.32.0.5']);
      assert.equal(rcodeOf(await udpAsk(udpPort, query('gone.loom.local'))), 3);
      assert.deepEqual(aRecords(await udpAsk(udpPort, query('example.org'))), ['192.0.2.99']);
      assert.deepEqual(upstream.asked, ['example.org']);

      // A second address (127.0.0.2 is loopback too on Linux); idempotent per address.
      const second = await dns.listenOn('127.0.0.2');
      assert.deepEqual(await dns.listenOn('127.0.0.2'), second);
      assert.equal(dns.report().listeners.length, 2);
      const port2 = Number(second.udp!.split(':')[1]);
      assert.deepEqual(aRecords(await udpAsk(port2, query('web'), '127.0.0.2')), ['10.32.0.5']);
      assert.equal(dns.report().stats.queries, 5);
      assert.equal(dns.report().stats.forwarded, 1);

      assert.equal(await dns.stopListening('127.0.0.2'), true);
      assert.equal(await dns.stopListening('127.0.0.2'), false);
      assert.equal(dns.report().stats.queries, 5, 'counts of a closed listener are kept');

      await dns.stop();
      await dns.stop();
      assert.deepEqual(dns.report().listeners, []);
      await assert.rejects(dns.listenOn('127.0.0.1'), isCode('ERR_UNAVAILABLE'));
    } finally {
      await dns.stop();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an address that cannot be bound fails start with ERR_UNAVAILABLE and leaves nothing bound', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface of this machine: bind fails with EADDRNOTAVAIL.
    const dns = new DnsSubsystem({ router: fakeRouter(), clock: new FakeClock(), logger: silentLogger }, { listenAddresses: ['127.0.0.1', '192.0.2.1'], port: 0 });
    await assert.rejects(dns.start(), isCode('ERR_UNAVAILABLE'));
    assert.deepEqual(dns.report().listeners, []);
    await assert.rejects(dns.listenOn('not-an-ip'), isCode('ERR_INVALID_ARGUMENT'));
  });
});
