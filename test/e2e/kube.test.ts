/**
 * Kubernetes peer discovery and reclaim with real routers, as `loom launch --kube-peers` runs
 * them (bin/loom, the background launch and its re-exec), in lab namespaces. The Kubernetes API
 * is our fake one (test/helpers/fake-kube-api.ts) running in a lab host of its own (h4, not a
 * mesh member), reached over the lab's underlay; the test edits its nodes through a file
 * (kube-api.fixture.ts). Proves:
 *   1. three routers given no peers find each other from the node list, and IPAM's consensus is
 *      sized from it (consensus=3; h3 then takes space by allocating an address);
 *   2. every router records itself in the ConfigMap;
 *   3. when h3's router stops and node-3 is deleted, h1 and h2 forget its address and exactly
 *      one of them reclaims its space; the ConfigMap then holds node-1 and node-2 only.
 * Needs root and ip (skips otherwise). Everything stays in the lab; the lab kills what it started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { decodeState } from '../../src/kube/peer-registry.js';
import { labSkipReason, withLab } from '../helpers/lab.js';

const here = dirname(fileURLToPath(import.meta.url));
const isTs = import.meta.url.endsWith('.ts');
const fixture = join(here, `kube-api.fixture.${isTs ? 'ts' : 'js'}`);
const skip = labSkipReason() ?? false;

interface KubeSection {
  targets: string[];
  watcher: { synced: boolean };
  reclaim: { reclaimed: { peer: string; node: string; moved: number }[] } | null;
}

async function report(cli: LoomCli, h: LabHost): Promise<{ router: { name: string; peers: { name: string }[] }; ipam: { state: string; peers: { name: string }[] }; kube: KubeSection }> {
  return JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as never;
}

/** POST /ipam/allocate on the host's router API, its local socket (no CLI command allocates without a container). */
async function allocate(lab: Lab, h: LabHost, containerId: string): Promise<void> {
  const body = JSON.stringify({ containerId });
  const script = `const r=require('node:http').request({socketPath:'\\0loom/api',method:'POST',path:'/ipam/allocate',headers:{'content-type':'application/json','content-length':Buffer.byteLength(process.argv[1])}},(res)=>{res.pipe(process.stdout);res.on('end',()=>process.exit(res.statusCode===200?0:1))});r.on('error',(e)=>{console.error(e.message);process.exit(1)});r.end(process.argv[1])`;
  await lab.exec(h, process.execPath, ['-e', script, body], { timeoutMs: 40_000 });
}

test('routers find each other from Kubernetes nodes; a deleted node is reclaimed by exactly one other', { skip, timeout: 120_000 }, async (t) => {
  await withLab(t, { hosts: 4 }, async (lab, cli) => {
    const [h1, h2, h3, h4] = lab.hosts as [LabHost, LabHost, LabHost, LabHost];
    const dir = join(lab.workDir, 'kube-api');
    mkdirSync(dir, { recursive: true });
    const writeNodes = (hosts: LabHost[]): void => {
      writeFileSync(join(dir, 'nodes.json.tmp'), JSON.stringify(hosts.map((h) => ({ name: `node-${h.index}`, ip: h.address }))));
      renameSync(join(dir, 'nodes.json.tmp'), join(dir, 'nodes.json'));
    };
    writeNodes([h1, h2, h3]);
    lab.start(h4, process.execPath, [...(isTs ? ['--import', 'tsx'] : []), fixture, h4.address, dir], { logFile: join(dir, 'api.log') });
    const url = await pollUntil(async () => (existsSync(join(dir, 'url')) ? readFileSync(join(dir, 'url'), 'utf8') : undefined), { what: 'the fake API', timeoutMs: 10_000, intervalMs: 50 });

    const nodes = [h1, h2, h3];
    const names = new Map<LabHost, string>();
    for (const h of nodes) {
      const { name } = await cli.launch(h, { args: ['--kube-peers', '--kube-api', url, '--kube-node-name', `node-${h.index}`, '--dataplane', 'off', '--no-dns'] });
      names.set(h, name);
    }

    // 1. No peer on any command line: the mesh comes from the nodes.
    await pollUntil(async () => ((await Promise.all(nodes.map((h) => report(cli, h)))).every((r) => r.router.peers.length === 3) ? true : undefined), { what: 'a full mesh', timeoutMs: 30_000, intervalMs: 250 });
    const r1 = await report(cli, h1);
    assert.deepEqual(r1.kube.targets, [`${h2.address}:6783`, `${h3.address}:6783`]);
    assert.equal(r1.kube.watcher.synced, true);
    await pollUntil(async () => ((await Promise.all(nodes.map((h) => report(cli, h)))).every((r) => r.ipam.state === 'ready') ? true : undefined), { what: 'the ring made', timeoutMs: 30_000, intervalMs: 250 });
    assert.match(await cli.status(h1, 'ipam'), /consensus/);
    // The quorum (2 of 3) may split the ring before h3 is there: h3 gets space by asking for an address.
    await allocate(lab, h3, 'pod-on-node-3');
    await pollUntil(async () => ((await Promise.all(nodes.map((h) => report(cli, h)))).every((r) => r.ipam.peers.some((p) => p.name === names.get(h3))) ? true : undefined), { what: 'h3 owning space', timeoutMs: 30_000, intervalMs: 250 });

    // 2. Every router recorded itself.
    const recorded = (): string[] => decodeState(JSON.parse(readFileSync(join(dir, 'configmap.json'), 'utf8')) as unknown).peers.map((p) => `${p.node}=${p.peer}`).sort();
    await pollUntil(async () => (recorded().length === 3 ? true : undefined), { what: 'three records', timeoutMs: 15_000, intervalMs: 100 });
    assert.deepEqual(recorded(), nodes.map((h) => `node-${h.index}=${names.get(h)!}`).sort());

    // 3. node-3 goes: its router stops, then the node object is deleted.
    await cli.stop(h3);
    await pollUntil(async () => ((await Promise.all([h1, h2].map((h) => report(cli, h)))).every((r) => r.router.peers.length === 2) ? true : undefined), { what: 'h3 gone from the mesh', timeoutMs: 20_000, intervalMs: 250 });
    writeNodes([h1, h2]);
    const reclaims = async (): Promise<{ peer: string; node: string; moved: number }[]> => (await Promise.all([h1, h2].map((h) => report(cli, h)))).flatMap((r) => r.kube.reclaim?.reclaimed ?? []);
    await pollUntil(async () => ((await reclaims()).length > 0 ? true : undefined), { what: 'a reclaim of node-3', timeoutMs: 30_000, intervalMs: 250 });
    for (const h of [h1, h2]) assert.deepEqual((await report(cli, h)).kube.targets, [`${(h === h1 ? h2 : h1).address}:6783`], `${h.name} forgot node-3`);
    await new Promise((r) => setTimeout(r, 1_500)); // more passes: nobody may reclaim it again
    const done = await reclaims();
    assert.equal(done.length, 1, JSON.stringify(done));
    assert.deepEqual({ peer: done[0]!.peer, node: done[0]!.node }, { peer: names.get(h3), node: 'node-3' });
    assert.ok(done[0]!.moved > 0);
    await pollUntil(async () => ((await Promise.all([h1, h2].map((h) => report(cli, h)))).every((r) => r.ipam.peers.every((p) => p.name !== names.get(h3))) ? true : undefined), { what: "node-3's space owned by the others", timeoutMs: 10_000, intervalMs: 250 });
    await pollUntil(async () => (recorded().length === 2 ? true : undefined), { what: 'the record of node-3 removed', timeoutMs: 5_000, intervalMs: 100 });
    assert.deepEqual(recorded(), [h1, h2].map((h) => `node-${h.index}=${names.get(h)!}`).sort());
    assert.equal((JSON.parse(readFileSync(join(dir, 'configmap.json'), 'utf8')) as Record<string, string>)['reclaim'], undefined, 'the lock released');
  });
});
