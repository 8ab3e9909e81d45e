/**
 * The CRI harness against the reference plugins, before any Loom: containerd 1.6 with its CRI
 * plugin in one lab host (its own config, root, state and socket), the local busybox sandbox
 * image, and pods driven through the CRI v1 gRPC API as kubelet drives them, on a conflist of
 * the reference `bridge` + `host-local` + `portmap`. Proves the harness itself:
 *   1. Version answers (containerd, API v1);
 *   2. RunPodSandbox gives a READY pod with an address of the conflist's subnet, in a network
 *      namespace of its own that the host reaches (ping both ways);
 *   3. StopPodSandbox tears the network down (no veth left, host-local's reservation gone, the
 *      pod NOTREADY); RemovePodSandbox forgets it (ListPodSandbox empty, no mount left);
 *   4. after containerd's own teardown nothing of it is left (processes, mounts, folder), also
 *      when a pod was never stopped through the CRI (second test: a failed test's path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withLab } from '../helpers/lab.js';
import { criSkipReason, hostVeths, inPod, podPings, runPod, withCriNodes, type CriNode, type Pod } from '../helpers/cri/nodes.js';
import { isAlive, podCgroupDirs, type LabContainerd } from '../../src/lab/index.js';

const skip = criSkipReason() ?? false;
const SUBNET = '10.99.61';

test('CRI harness: containerd runs pods on the reference bridge + host-local plugins and tears them down', { skip, timeout: 90_000 }, async (t) => {
  await withLab(t, { hosts: 1 }, async (lab) => {
    let leftover: { dir: string; pids: number[] } | undefined;
    await withCriNodes(t, lab, ['h1'], { referencePlugins: ['loopback', 'bridge', 'host-local', 'portmap'] }, async ([node]) => {
      const { containerd, cri } = node!;
      const ipamDir = writeBridgeConflist(containerd);

      const version = await cri.version();
      assert.equal(version.runtimeName, 'containerd');
      assert.equal(version.runtimeApiVersion, 'v1');

      const pod = await runPodWhenReady(node!, 'web');
      assert.match(pod.netnsPath, /^\/(var\/)?run\/netns\/cni-/, 'containerd mounts the pod netns where ip netns does');
      assert.match(pod.ip, new RegExp(`^${SUBNET.replace(/\./g, '\\.')}\\.\\d+$`));
      const addr = (await inPod(pod, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
      assert.match(addr, new RegExp(` ${pod.ip.replace(/\./g, '\\.')}/24 `), 'eth0 in the pod carries the address the CRI reports');
      assert.equal((await hostVeths(lab, 'h1')).length, 1, 'one veth in the host for the pod');
      assert.ok(await podPings(pod, `${SUBNET}.1`), 'the pod reaches its gateway on the host');
      assert.equal((await lab.exec('h1', 'ping', ['-c', '1', '-W', '2', pod.ip], { allowFailure: true })).code, 0, 'the host reaches the pod');
      assert.ok(existsSync(join(ipamDir, 'labbr', pod.ip)), 'host-local holds the address');
      assert.deepEqual((await cri.listPodSandbox()).map((p) => p.id), [pod.id]);

      await cri.stopPodSandbox(pod.id);
      await cri.stopPodSandbox(pod.id); // kubelet may stop twice: idempotent
      assert.equal((await cri.podSandboxStatus(pod.id)).status.state, 'SANDBOX_NOTREADY');
      assert.deepEqual(await hostVeths(lab, 'h1'), [], 'StopPodSandbox removed the veth');
      assert.ok(!existsSync(join(ipamDir, 'labbr', pod.ip)), 'StopPodSandbox released the address');
      assert.ok(!isAlive(pod.pid), 'the sandbox process is gone');
      assert.ok(!existsSync(pod.netnsPath), `the pod's network namespace mount ${pod.netnsPath} is gone`);

      await cri.removePodSandbox(pod.id);
      await cri.removePodSandbox(pod.id); // idempotent too
      assert.deepEqual(await cri.listPodSandbox(), []);
      assert.deepEqual(containerd.mounts(), [], 'no rootfs or netns mount left under containerd');
      assert.deepEqual(containerd.podProcesses(), []);
      leftover = { dir: containerd.dir, pids: [containerd.pid] };
    });
    assert.ok(leftover, 'the body ran');
    assert.ok(!existsSync(leftover.dir), 'containerd folder removed');
    assert.ok(!leftover.pids.some(isAlive), 'containerd stopped');
    assert.ok(!readdirSync('/proc').some((p) => /^\d+$/.test(p) && isShimOf(Number(p), leftover!.dir)), 'no shim left');
  });
});

/**
 * What a failed test leaves when it never reaches the CRI's Stop/Remove: LabContainerd.stop alone
 * (ctr kills and deletes the tasks, the pod's processes, its /run/netns mount and every mount
 * under the folder go) must leave nothing.
 */
test('CRI harness: containerd stop alone removes a running pod (processes, netns, mounts, cgroups, folder)', { skip, timeout: 90_000 }, async (t) => {
  await withLab(t, { hosts: 1 }, async (lab) => {
    await withCriNodes(t, lab, ['h1'], { referencePlugins: ['loopback', 'bridge', 'host-local', 'portmap'] }, async ([node]) => {
      const { containerd } = node!;
      writeBridgeConflist(containerd);
      const pod = await runPodWhenReady(node!, 'orphan');
      assert.ok(isAlive(pod.pid) && existsSync(pod.netnsPath) && containerd.mounts().length > 0 && containerd.podProcesses().length > 0, 'the pod runs');
      await containerd.stop();
      assert.ok(!isAlive(pod.pid), 'the sandbox process is gone');
      assert.ok(!existsSync(pod.netnsPath), `${pod.netnsPath} is gone`);
      assert.deepEqual(containerd.mounts(), []);
      assert.deepEqual(podCgroupDirs(lab.prefix), [], 'the pod cgroups are removed');
      assert.ok(!existsSync(containerd.dir), 'the folder is removed');
      assert.ok(!isAlive(containerd.pid), 'containerd stopped');
    });
  });
});

/** The reference bridge + host-local + portmap conflist in the node's conf dir; returns host-local's data dir. */
function writeBridgeConflist(containerd: LabContainerd): string {
  const ipamDir = join(containerd.dir, 'host-local');
  const conflist = {
    cniVersion: '1.0.0',
    name: 'labbr',
    plugins: [
      { type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: `${SUBNET}.0/24` }]] } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
  writeFileSync(join(containerd.paths.cniConfDir, '10-labbr.conflist'), JSON.stringify(conflist));
  return ipamDir;
}

/** The CRI plugin picks a conflist up from its folder watch; until then RunPodSandbox fails. */
async function runPodWhenReady(node: CriNode, name: string): Promise<Pod> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await runPod(node, name);
    } catch (err) {
      if (Date.now() > deadline || !/cni/i.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Whether `pid` is a containerd shim of the containerd whose folder is `dir` (its -address lies in it). */
function isShimOf(pid: number, dir: string): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('containerd-shim') && cmd.includes(dir);
  } catch {
    return false;
  }
}
