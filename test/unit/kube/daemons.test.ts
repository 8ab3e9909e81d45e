/**
 * Three real daemons in this process (real Router over TCP, real IPAM on SQLite, the kube
 * subsystem as `loom launch --kube-peers --kube-api URL` builds it) against one fake Kubernetes
 * API on loopback. Each "node" is a loopback address (127.0.0.N: all of 127/8 is local already,
 * nothing is added to any namespace), its InternalIP in the fake API. Shows end to end: the
 * routers find each other from the node list alone, IPAM's consensus is sized from the node
 * count, and when a node is deleted after its router stopped, exactly one of the others
 * reclaims its space and the ConfigMap forgets it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/core/logger.js';
import { startDaemon, type RunningDaemon } from '../../../src/daemon/foreground.js';
import { parseLaunchOptions } from '../../../src/daemon/options.js';
import { createSubsystems } from '../../../src/daemon/subsystems.js';
import { decodeState } from '../../../src/kube/peer-registry.js';
import type { KubeReport } from '../../../src/kube/subsystem.js';
import { Router } from '../../../src/mesh/router.js';
import { TcpTransport } from '../../../src/mesh/transport-tcp.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';
import { ipamSubsystemOf } from '../../helpers/subsystem-of.js';
import { testApiSocket } from '../../helpers/api-socket.js';

const NODES = [
  { name: 'node-1', ip: '127.0.0.41' },
  { name: 'node-2', ip: '127.0.0.42' },
  { name: 'node-3', ip: '127.0.0.43' },
];

async function until(cond: () => boolean, what: string, maxMs = 20_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A port free on every node address (checked by binding each). */
async function portFreeOnAll(ips: string[]): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const servers: net.Server[] = [];
    let ok = true;
    for (const ip of ips) {
      const s = net.createServer();
      const bound = await new Promise<boolean>((resolve) => s.once('error', () => resolve(false)).listen({ host: ip, port }, () => resolve(true)));
      if (bound) servers.push(s);
      else ok = false;
    }
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (ok) return port;
  }
  throw new Error('no common free port');
}

function kubeReport(d: RunningDaemon): KubeReport {
  return d.subsystems.get('kube')!.report!() as KubeReport;
}

test('three daemons find each other from the Kubernetes nodes; a deleted node is reclaimed by exactly one of the others', { timeout: 60_000 }, async () => {
  const api = new FakeKubeApi();
  for (const n of NODES) api.addNode(n.name, n.ip);
  const url = await api.listen();
  const port = await portFreeOnAll(NODES.map((n) => n.ip));
  const dirs: string[] = [];
  const daemons: RunningDaemon[] = [];
  try {
    for (const n of NODES) {
      const dir = mkdtempSync(join(tmpdir(), 'loom-kube-daemon-'));
      dirs.push(dir);
      const config = {
        ...parseLaunchOptions({ stateDir: dir, nickname: n.name, dataplane: 'off', dns: false, port: String(port), kubePeers: true, kubeApi: url, kubeNodeName: n.name }, [], {}, n.name),
        httpPort: 0,
        apiSocket: testApiSocket(),
      };
      daemons.push(
        await startDaemon(
          {
            logger: silentLogger,
            createRouter: (cfg, identity, logger) =>
              new Router({ transport: new TcpTransport({ host: n.ip, port: cfg.port, logger, dialTimeoutMs: 2_000, closeLingerMs: 500 }), logger }, { identity, port: cfg.port, discovery: cfg.discovery, connLimit: cfg.connLimit, peers: cfg.peers }),
            subsystems: createSubsystems({ kube: { reclaimIntervalMs: 300, watchTimeoutSeconds: 30 } }),
          },
          config,
        ),
      );
    }
    const [d1, d2, d3] = daemons as [RunningDaemon, RunningDaemon, RunningDaemon];
    const names = daemons.map((d) => d.identity.name);

    // Peers from the node list alone: no peer was given on any command line.
    assert.deepEqual(kubeReport(d1).targets, [`127.0.0.42:${port}`, `127.0.0.43:${port}`]);
    await until(() => daemons.every((d) => d.router.mesh.reachablePeers().length === 3), 'a full mesh');

    // IPAM's consensus was sized from the three nodes; the ring is made and every peer owns space.
    const ipams = daemons.map((d) => ipamSubsystemOf(d.subsystems)!);
    assert.equal(ipams[0]!.ipam.status().mode, 'consensus');
    const a3 = await ipams[2]!.allocate('pod-on-node-3');
    await until(() => ipams.every((i) => i.ipam.status().peers.length === 3), 'space on all three');

    // Every router registered itself in the ConfigMap.
    await until(() => decodeState(api.configMap('kube-system', 'loom-peers')?.data).peers.length === 3, 'three records');

    // node-3 goes: its router stops, then the node object is deleted.
    await d3.stop();
    await until(() => !d1.router.mesh.isReachable(names[2]!) && !d2.router.mesh.isReachable(names[2]!), 'node-3 unreachable');
    api.deleteNode('node-3');
    await until(() => !kubeReport(d1).targets.includes(`127.0.0.43:${port}`) && !kubeReport(d2).targets.includes(`127.0.0.43:${port}`), 'node-3 forgotten');
    await until(() => ipams.slice(0, 2).every((i) => !i.ipam.status().peers.some((p) => p.name === names[2])), 'node-3 space taken over', 15_000);

    // The ring can reach both before the reclaimer has finished its ConfigMap write: wait for that too,
    // then a few more passes, in which nobody may reclaim it again.
    const reclaims = (): { peer: string; node: string; moved: number }[] => [d1, d2].flatMap((d) => kubeReport(d).reclaim?.reclaimed ?? []);
    await until(() => reclaims().length > 0, 'the reclaim recorded');
    await new Promise((r) => setTimeout(r, 1_000));
    const reclaimed = reclaims();
    assert.equal(reclaimed.length, 1, `exactly one reclaim: ${JSON.stringify(reclaimed)}`);
    assert.equal(reclaimed[0]!.peer, names[2]);
    assert.ok(reclaimed[0]!.moved > 0);
    const final = decodeState(api.configMap('kube-system', 'loom-peers')!.data);
    assert.deepEqual(final.peers.map((p) => p.node).sort(), ['node-1', 'node-2']);
    assert.equal(final.reclaim, null);
    // The address node-3 handed out is now in a live peer's space, and both live peers agree.
    assert.equal(ipams[0]!.ipam.status().rangeSize, ipams[1]!.ipam.status().rangeSize);
    assert.ok(a3.includes('/'));
  } finally {
    for (const d of daemons) await d.stop().catch(() => undefined);
    await api.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});
