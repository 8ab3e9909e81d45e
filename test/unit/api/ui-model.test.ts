/**
 * The live page's model (ui/model.js, plain JavaScript shipped as is): what it draws from a
 * /report snapshot. Loaded from the package's ui/ folder, as the router serves it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultUiDir } from '../../../src/api/ui-routes.js';

interface Link { key: string; established: boolean; local: boolean; path: string; via: string; encrypted: boolean; pmtu: number | null; rttMs: number | null; txBps: number | null; rxBps: number | null }
interface Peer { name: string; nickname: string; address: string; self: boolean; reachable: boolean; containers: Array<{ name: string; addresses: string[]; mac: string }>; macs: string[]; macCount: number }
interface Model { self: string; peers: Peer[]; links: Link[]; ipam: { owners: Array<{ name: string; share: number }>; unreachableOwners: string[] }; dns: { records: unknown[] }; events: unknown[] }
interface ModelModule {
  buildModel(report: unknown, previous: { report: unknown; at: number } | null, at: number): Model;
  linkClass(link: Link): string;
  describeLink(link: Link, nicknameOf: (p: string) => string): string;
  pairKey(a: string, b: string): string;
  formatRate(bps: number | null): string;
  circleLayout(names: string[], size: number): Map<string, { x: number; y: number }>;
}

const load = async (): Promise<ModelModule> => (await import(pathToFileURL(join(defaultUiDir(), 'model.js')).href)) as ModelModule;

const A = 'aa:00:00:00:00:01';
const B = 'aa:00:00:00:00:02';
const C = 'aa:00:00:00:00:03';
const D = 'aa:00:00:00:00:04';

function report(bytes: number): unknown {
  const conn = (name: string, nickname: string, address: string) => ({ name, nickname, address, outbound: true, established: true });
  return {
    version: '0.1.0',
    router: {
      name: A,
      nickname: 'h1',
      encryption: false,
      connections: [],
      routes: { unicast: [{ destination: B, via: B, hops: 1 }, { destination: C, via: C, hops: 1 }], broadcast: [] },
      peers: [
        { name: A, nickname: 'h1', connections: [conn(B, 'h2', '192.168.1.2:6783'), conn(C, 'h3', '192.168.1.3:6783')] },
        { name: B, nickname: 'h2', connections: [conn(A, 'h1', '192.168.1.1:6783'), conn(C, 'h3', '192.168.1.3:6783')] },
        { name: C, nickname: 'h3', connections: [conn(A, 'h1', '192.168.1.1:6783'), conn(B, 'h2', '192.168.1.2:6783')] },
        { name: D, nickname: 'h4', connections: [] },
      ],
    },
    dataplane: {
      peers: [
        { peer: B, path: 'fastdp', encrypted: false, mtu: 1450, pmtu: 1500, macs: 0 },
        { peer: C, path: 'sleeve', via: B, encrypted: true, mtu: 1422, reason: 'UDP to the peer is blocked', macs: 1 },
      ],
      relay: { neighbours: [{ peer: B, rttMs: 0.5, pmtu: 1500 }, { peer: C, rttMs: 1.5, pmtu: 1400 }], stats: { neighbours: [{ peer: C, bytesSent: bytes, bytesReceived: bytes / 2 }] } },
      remoteMacs: [{ peer: C, count: 1, macs: ['02:00:00:00:00:03'] }],
    },
    containers: { containers: [{ name: 'web', cidrs: ['10.32.0.5/12'], mac: '02:00:00:00:00:01', alive: true }] },
    dns: { domain: 'loom.local', records: [{ name: 'db.loom.local', address: '10.40.0.1', origin: C, originNickname: 'h3' }] },
    ipam: { state: 'ready', range: '10.32.0.0/12', rangeSize: 1000, peers: [{ name: A, owned: 500, inUse: 1, reachable: true }, { name: D, owned: 500, inUse: 0, reachable: false }], unreachableOwners: [D] },
    events: { recent: [{ seq: 1, time: 1, kind: 'peer-joined', text: 'x' }] },
  };
}

test('the model: peers with addresses and reachability, links by pair with this host\'s data paths, containers under their host', async () => {
  const m = await load();
  const first = m.buildModel(report(1000), null, 0);
  assert.equal(first.self, A);
  assert.deepEqual(first.peers.map((p) => [p.nickname, p.address, p.reachable, p.self]), [['h1', '192.168.1.1', true, true], ['h2', '192.168.1.2', true, false], ['h3', '192.168.1.3', true, false], ['h4', '', false, false]]);
  assert.equal(first.links.length, 3, 'one link per pair, however many ends report it');
  const ac = first.links.find((l) => l.key === m.pairKey(A, C))!;
  assert.equal(m.linkClass(ac), 'relay-hop');
  assert.equal(m.describeLink(ac, (p) => (p === B ? 'h2' : p)), 'relay via h2');
  assert.deepEqual([ac.encrypted, ac.pmtu, ac.rttMs], [true, 1400, 1.5]);
  assert.equal(m.linkClass(first.links.find((l) => l.key === m.pairKey(A, B))!), 'fastdp');
  assert.equal(m.linkClass(first.links.find((l) => l.key === m.pairKey(B, C))!), 'mesh', 'a link between two others: its path is not known here');
  const h1 = first.peers[0]!;
  assert.deepEqual(h1.containers, [{ name: 'web', addresses: ['10.32.0.5/12'], mac: '02:00:00:00:00:01', alive: true }]);
  const h3 = first.peers[2]!;
  assert.deepEqual(h3.containers.map((c) => [c.name, c.addresses]), [['db.loom.local', ['10.40.0.1']]]);
  assert.deepEqual([h3.macs, h3.macCount], [['02:00:00:00:00:03'], 1]);
  assert.deepEqual(first.ipam.unreachableOwners, [D]);
  assert.deepEqual(first.ipam.owners.map((o) => o.share), [0.5, 0.5]);
  assert.equal(ac.txBps, null, 'no rate from a single snapshot');
});

test('the model: relay throughput from the byte counters of two snapshots; helpers', async () => {
  const m = await load();
  const prev = { report: report(1000), at: 0 };
  const next = m.buildModel(report(3000), prev, 2000);
  const ac = next.links.find((l) => l.key === m.pairKey(A, C))!;
  assert.equal(ac.txBps, 8000, '2000 bytes in 2 s');
  assert.equal(ac.rxBps, 4000);
  assert.equal(m.formatRate(8000), '8.0 kbit/s');
  assert.equal(m.formatRate(null), '–');
  const at = m.circleLayout([A, B], 600);
  assert.deepEqual(at.get(A), { x: 300, y: 300 - 600 * 0.34 });
  // A report with missing sections (subsystems off) still gives a model.
  const bare = m.buildModel({ router: { name: A, nickname: 'h1', peers: [{ name: A, nickname: 'h1', connections: [] }] } }, null, 0);
  assert.deepEqual([bare.peers.length, bare.links.length, bare.dns.records.length, bare.events.length], [1, 0, 0, 0]);
});
