/**
 * Kubernetes' way onto Loom, without a cluster: two lab hosts, each with a Loom router
 * (`bin/loom launch`) and its own containerd 1.6 whose CRI plugin has `loom cni install` in its
 * CNI folders (the reference loopback, portmap and bandwidth beside it), pods driven through the
 * CRI v1 gRPC API exactly as kubelet drives them. Proves, per the CNI contract of issue 11:
 *   1. `loom cni install` writes the plugin and 10-loom.conflist (loom-cni chained with portmap)
 *      where the runtime looks;
 *   2. RunPodSandbox on each host gives a READY pod whose eth0 carries an address of Loom's range,
 *      held in Loom IPAM under `cni:<sandbox id>:eth0` on its host, with the pod's name
 *      (K8S_POD_NAME) in Loom DNS on both hosts;
 *   3. the two pods ping each other across the hosts over Loom;
 *   4. StopPodSandbox leaves no veth, no address (IPAM lookup 404), no DNS record, no attachment
 *      in the router's list; RemovePodSandbox forgets the pods and leaves no mount;
 *   5. (second test) a pod stopped while its router is down leaves nothing once the router is
 *      back and kubelet's StopPodSandbox retries succeed.
 * Skips when the native shim dist/bin/loom-cni is not built (npm run build needs gcc).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withLab } from '../helpers/lab.js';
import { criSkipReason, hostVeths, inPod, podPings, runPod, withCriNodes, type CriNode, type Pod } from '../helpers/cri/nodes.js';
import { pollUntil } from '../../src/demo/poll.js';
import { repoRoot, type LoomCli } from '../../src/demo/loom-cli.js';
import { isAlive, type Lab, type LabHost } from '../../src/lab/index.js';
import { cidrContains, parseAddressInCidr, parseCidr } from '../../src/ipam/cidr.js';

const LOOM_CNI = join(repoRoot(), 'dist', 'bin', 'loom-cni');
const skip = criSkipReason() ?? (existsSync(LOOM_CNI) ? false : 'dist/bin/loom-cni is not built (npm run build; the native shim needs gcc)');
const RANGE = '10.32.0.0/12';

/** The IPAM id the contract has the plugin hold a pod's address under (CNI_IFNAME is eth0 with containerd). */
function ipamIdOf(pod: Pod): string {
  return `cni:${pod.id}:eth0`;
}

/** GET on the host's router API (it listens on the host's own loopback): status and body. */
async function apiGet(lab: Lab, host: LabHost, path: string): Promise<{ status: number; body: string }> {
  const script = `fetch('http://127.0.0.1:6784' + process.argv[1]).then(async r => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))`;
  return JSON.parse((await lab.exec(host, process.execPath, ['-e', script, path], { timeoutMs: 10_000 })).stdout);
}

/** `loom cni install` into the node's CNI folders, as the DaemonSet's init step does into /opt/cni/bin and /etc/cni/net.d. */
async function installLoomCni(cli: LoomCli, host: LabHost, node: CriNode): Promise<void> {
  const { cniBinDir, cniConfDir } = node.containerd.paths;
  await cli.run(host, ['cni', 'install', '--bin-dir', cniBinDir, '--conf-dir', cniConfDir]);
}

/** RunPodSandbox, retried while the CRI plugin has not loaded the conflist yet (it watches the folder). */
async function runPodWhenReady(node: CriNode, name: string): Promise<{ pod: Pod; ms: number }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const started = Date.now();
    try {
      const pod = await runPod(node, name);
      return { pod, ms: Date.now() - started };
    } catch (err) {
      if (Date.now() > deadline || !/cni plugin not initialized|no network config/i.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test('CRI: pods on two hosts through containerd and loom-cni reach each other over Loom, and Stop/Remove leave nothing', { skip, timeout: 120_000 }, async (t) => {
  await withLab(t, { hosts: 2 }, async (lab, cli) => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    await cli.launch(h1);
    await cli.launch(h2, { peers: [h1.address] });
    await withCriNodes(t, lab, [h1, h2], { referencePlugins: ['loopback', 'portmap', 'bandwidth'] }, async (nodes) => {
      const hosts = [h1, h2];
      for (const [i, node] of nodes.entries()) await installLoomCni(cli, hosts[i]!, node);
      for (const node of nodes) {
        assert.equal(readFileSync(join(node.containerd.paths.cniBinDir, 'loom-cni')).subarray(0, 4).toString('latin1'), '\x7fELF', 'loom cni install wrote the native shim as the plugin');
        assert.ok(existsSync(join(node.containerd.paths.cniBinDir, 'loom-cni-node')), 'and its Node fallback beside it');
        const conflist = JSON.parse(readFileSync(join(node.containerd.paths.cniConfDir, '10-loom.conflist'), 'utf8'));
        assert.deepEqual(conflist.plugins.map((p: { type: string }) => p.type), ['loom-cni', 'portmap']);
      }
      const vethsBefore = await Promise.all(hosts.map((h) => hostVeths(lab, h)));

      const [a, b] = await Promise.all([runPodWhenReady(nodes[0]!, 'pod-a'), runPodWhenReady(nodes[1]!, 'pod-b')]);
      t.diagnostic(`RunPodSandbox with loom-cni (both at once): h1 ${a.ms} ms, h2 ${b.ms} ms`);
      const pods = [a.pod, b.pod];
      assert.notEqual(a.pod.ip, b.pod.ip);
      for (const [i, pod] of pods.entries()) {
        assert.ok(cidrContains(parseCidr(RANGE), parseAddressInCidr(`${pod.ip}/32`).address), `${pod.name} ${pod.ip} is in ${RANGE}`);
        const addr = (await inPod(pod, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
        assert.ok(addr.includes(` ${pod.ip}/`), `${pod.name}'s eth0 carries ${pod.ip}: ${addr}`);
        const held = await apiGet(lab, hosts[i]!, `/ipam/lookup?containerId=${encodeURIComponent(ipamIdOf(pod))}`);
        assert.equal(held.status, 200, `IPAM holds ${ipamIdOf(pod)}: ${held.body}`);
        assert.ok((JSON.parse(held.body) as { cidrs: string[] }).cidrs.some((c) => c.startsWith(`${pod.ip}/`)));
      }
      for (const pod of pods) {
        for (const h of hosts) {
          await pollUntil(
            async () => {
              const r = await apiGet(lab, h, `/dns/lookup?name=${pod.name}.loom.local`);
              return r.status === 200 && r.body.includes(`"${pod.ip}"`) ? true : undefined;
            },
            { what: `${pod.name}.loom.local in ${h.name}'s DNS`, timeoutMs: 10_000, intervalMs: 100 },
          );
        }
      }

      assert.ok(await podPings(a.pod, b.pod.ip, 20), 'pod-a (h1) reaches pod-b (h2) over Loom');
      assert.ok(await podPings(b.pod, a.pod.ip, 20), 'pod-b (h2) reaches pod-a (h1) over Loom');

      for (const [i, pod] of pods.entries()) {
        const node = nodes[i]!;
        const host = hosts[i]!;
        const started = Date.now();
        await node.cri.stopPodSandbox(pod.id);
        t.diagnostic(`StopPodSandbox with loom-cni in ${host.name}: ${Date.now() - started} ms`);
        await node.cri.stopPodSandbox(pod.id); // kubelet stops again when unsure: idempotent
        assert.equal((await node.cri.podSandboxStatus(pod.id)).status.state, 'SANDBOX_NOTREADY');
        assert.deepEqual(await hostVeths(lab, host), vethsBefore[i], `no veth of ${pod.name} left in ${host.name}`);
        assert.equal((await apiGet(lab, host, `/ipam/lookup?containerId=${encodeURIComponent(ipamIdOf(pod))}`)).status, 404, 'the address is released');
        assert.ok(!(await apiGet(lab, host, '/containers')).body.includes(`"${pod.ip}/`), `no attachment of ${pod.ip} in the router's list`);
        assert.ok(!isAlive(pod.pid), 'the sandbox process is gone');
        assert.ok(!existsSync(pod.netnsPath), `the pod's network namespace mount ${pod.netnsPath} is gone`);
        for (const h of hosts) {
          await pollUntil(async () => ((await apiGet(lab, h, `/dns/lookup?name=${pod.name}.loom.local`)).status === 404 ? true : undefined), {
            what: `${pod.name}.loom.local gone from ${h.name}'s DNS`,
            timeoutMs: 10_000,
            intervalMs: 100,
          });
        }
        await node.cri.removePodSandbox(pod.id);
        assert.deepEqual(await node.cri.listPodSandbox(), []);
        assert.deepEqual(node.containerd.mounts(), [], 'no rootfs or netns mount left');
      }
      const ipam = await cli.status(h1, 'ipam');
      t.diagnostic(`loom status ipam on h1 after the pods:\n${ipam}`);
    });
  });
});

/**
 * A pod stopped while its host's router is down, as happens on a node whose Loom pod restarts:
 * kubelet keeps calling StopPodSandbox until it succeeds, then RemovePodSandbox. Whichever way the
 * plugin takes (a DEL that succeeds without the router and leaves the release to the router's GC
 * when it is back, or a DEL that fails until the router answers), once the router is back and
 * kubelet's retries succeed, nothing of the pod is left: no veth, no address, no name, no record.
 */
test('CRI: a pod stopped while the router is down leaves nothing once the router is back', { skip, timeout: 120_000 }, async (t) => {
  await withLab(t, { hosts: 1 }, async (lab, cli) => {
    const [h1] = lab.hosts as [LabHost];
    await cli.launch(h1);
    await withCriNodes(t, lab, [h1], { referencePlugins: ['loopback', 'portmap', 'bandwidth'] }, async ([node]) => {
      await installLoomCni(cli, h1, node!);
      const vethsBefore = await hostVeths(lab, h1);
      const { pod } = await runPodWhenReady(node!, 'pod-gc');
      const held = await apiGet(lab, h1, `/ipam/lookup?containerId=${encodeURIComponent(ipamIdOf(pod))}`);
      assert.equal(held.status, 200, `IPAM holds ${ipamIdOf(pod)} while the pod runs`);

      await cli.stop(h1);
      const whileDown = await node!.cri.stopPodSandbox(pod.id).then(
        () => 'succeeded',
        (err: Error) => `failed: ${err.message.slice(0, 200)}`,
      );
      t.diagnostic(`StopPodSandbox with the router down ${whileDown}`);
      await cli.launch(h1);
      // kubelet's retry loop, bounded.
      await pollUntil(async () => ((await node!.cri.stopPodSandbox(pod.id).then(() => true)) ? true : undefined), {
        what: 'StopPodSandbox to succeed with the router back',
        timeoutMs: 30_000,
        intervalMs: 500,
      });
      await node!.cri.removePodSandbox(pod.id);
      assert.deepEqual(await node!.cri.listPodSandbox(), []);
      assert.deepEqual(await hostVeths(lab, h1), vethsBefore, 'no veth of the pod left');
      assert.ok(!isAlive(pod.pid), 'the sandbox process is gone');
      assert.ok(!existsSync(pod.netnsPath), `the pod's network namespace mount ${pod.netnsPath} is gone`);
      await pollUntil(async () => ((await apiGet(lab, h1, `/ipam/lookup?containerId=${encodeURIComponent(ipamIdOf(pod))}`)).status === 404 ? true : undefined), {
        what: `the router to release ${ipamIdOf(pod)}`,
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      await pollUntil(async () => ((await apiGet(lab, h1, `/dns/lookup?name=${pod.name}.loom.local`)).status === 404 ? true : undefined), {
        what: `${pod.name}.loom.local gone from DNS`,
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      assert.ok(!(await apiGet(lab, h1, '/containers')).body.includes(`"${pod.ip}/`), `no attachment of ${pod.ip} in the router's list`);
      assert.deepEqual(node!.containerd.mounts(), [], 'no rootfs or netns mount left');
    });
  });
});
