/**
 * "Nodes" for CRI tests: a lab host running containerd with its CRI plugin (src/lab/containerd.ts),
 * the local sandbox image imported, and a CRI client on its socket; pods made the way kubelet
 * makes them (RunPodSandbox with metadata, hostname and a cgroup parent) and looked into through
 * the sandbox's process (`nsenter -t PID -n`), which works from any mount namespace.
 * `withCriNodes` always tears down: pods through the CRI first (so the CNI plugin's DEL runs and
 * the test's leftover checks mean something), then containerd and its folder.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { buildSandboxImage, LabContainerd, REFERENCE_CNI_DIR, STATIC_BUSYBOX, type HostRef, type Lab, type LabContainerdOptions } from '../../../src/lab/index.js';
import { systemRunner, type CommandResult } from '../../../src/os/runner.js';
import { labSkipReason } from '../lab.js';
import { CriClient, containerdSandboxInfo, type PodSandboxConfig } from './client.js';

const BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/** Why CRI tests cannot run here, or null. */
export function criSkipReason(): string | null {
  const lab = labSkipReason();
  if (lab !== null) return lab;
  const missing = ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'nsenter', 'ping', 'tar'].filter((c) => !BIN_DIRS.some((d) => existsSync(`${d}/${c}`)));
  if (!existsSync(STATIC_BUSYBOX)) missing.push('busybox-static');
  if (!existsSync(join(REFERENCE_CNI_DIR, 'loopback'))) missing.push('containernetworking-plugins');
  return missing.length > 0 ? `missing ${missing.join(', ')} (bash scripts/install.sh)` : null;
}

export interface CriNode {
  readonly host: HostRef;
  readonly containerd: LabContainerd;
  readonly cri: CriClient;
}

export interface Pod {
  readonly id: string;
  readonly name: string;
  readonly ip: string;
  /** The sandbox's process (busybox sleep), whose network namespace is the pod's. */
  readonly pid: number;
  /** The network namespace mount containerd made for the pod (/run/netns/cni-<uuid>). */
  readonly netnsPath: string;
}

const images = new WeakMap<Lab, Promise<string>>();

/** The sandbox image tarball of this lab, built once. */
export function labSandboxImage(lab: Lab): Promise<string> {
  let image = images.get(lab);
  if (!image) {
    image = buildSandboxImage(join(lab.workDir, 'sandbox-image'));
    images.set(lab, image);
  }
  return image;
}

export async function startCriNode(lab: Lab, host: HostRef, options: LabContainerdOptions = {}): Promise<CriNode> {
  const image = await labSandboxImage(lab);
  const containerd = await LabContainerd.start(lab, host, options);
  try {
    await containerd.importImage(image);
  } catch (err) {
    await containerd.stop();
    throw err;
  }
  return { host, containerd, cri: new CriClient(containerd.criAddress) };
}

/** Every pod stopped and removed through the CRI (bounded, best effort), then containerd stopped and its folder removed. */
export async function stopCriNode(node: CriNode): Promise<void> {
  try {
    const pods = await node.cri.listPodSandbox();
    for (const p of pods) {
      await node.cri.stopPodSandbox(p.id).catch(() => undefined);
      await node.cri.removePodSandbox(p.id).catch(() => undefined);
    }
  } catch {
    // containerd is gone or wedged: its own stop cleans up by force
  } finally {
    node.cri.close();
    await node.containerd.stop();
  }
}

/**
 * Starts one node per host, runs `body`, and always stops them all; on failure prints each
 * containerd's log tail as test diagnostics.
 */
export async function withCriNodes(
  t: TestContext,
  lab: Lab,
  hosts: readonly HostRef[],
  options: LabContainerdOptions,
  body: (nodes: CriNode[]) => Promise<void>,
): Promise<void> {
  const nodes: CriNode[] = [];
  try {
    // In parallel (each host's containerd is independent); every one that started is stopped below.
    const started = await Promise.allSettled(hosts.map((h) => startCriNode(lab, h, options)));
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    await body(nodes);
  } catch (err) {
    for (const n of nodes) t.diagnostic(`--- containerd in ${lab.host(n.host).name} ---\n${n.containerd.logTail(12).split('\n').map((l) => l.slice(0, 400)).join('\n')}`);
    throw err;
  } finally {
    for (const n of nodes) await stopCriNode(n);
  }
}

/** A pod config as kubelet would send it, in the node's cgroup parent. */
export function podConfig(node: CriNode, name: string, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  return {
    metadata: { name, uid: randomUUID(), namespace: 'default', attempt: 0 },
    hostname: name,
    labels: { app: 'loom-test' },
    linux: { cgroupParent: node.containerd.cgroupParent },
    ...extra,
  };
}

/** RunPodSandbox, then the pod's address and sandbox process from a verbose PodSandboxStatus. */
export async function runPod(node: CriNode, name: string, extra: Partial<PodSandboxConfig> = {}): Promise<Pod> {
  const id = await node.cri.runPodSandbox(podConfig(node, name, extra));
  const reply = await node.cri.podSandboxStatus(id, true);
  if (reply.status.state !== 'SANDBOX_READY') throw new Error(`pod ${name} is ${reply.status.state}`);
  const ip = reply.status.network?.ip ?? '';
  if (ip === '') throw new Error(`pod ${name} has no IP in its status`);
  const info = containerdSandboxInfo(reply);
  if (info.netnsPath === null) throw new Error(`pod ${name} has no network namespace path in containerd's info`);
  return { id, name, ip, pid: info.pid, netnsPath: info.netnsPath };
}

/** A command inside the pod's network namespace (nsenter into the sandbox process). */
export function inPod(pod: Pod, cmd: string, args: readonly string[], options: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<CommandResult> {
  return systemRunner.run('nsenter', ['-t', String(pod.pid), '-n', cmd, ...args], { timeoutMs: options.timeoutMs ?? 15_000, ...(options.allowFailure === undefined ? {} : { allowFailure: options.allowFailure }) });
}

/** One ping from the pod to `ip`, retried up to `attempts` times; true when one answered. */
export async function podPings(pod: Pod, ip: string, attempts = 10): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if ((await inPod(pod, 'ping', ['-c', '1', '-W', '1', ip], { allowFailure: true })).code === 0) return true;
  }
  return false;
}

/** Names of the veth devices in a host, its own uplink (eth0) aside. */
export async function hostVeths(lab: Lab, host: HostRef): Promise<string[]> {
  const out = (await lab.exec(host, 'ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout;
  return out
    .split('\n')
    .map((l) => /^\d+:\s+([^@:]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n !== '' && n !== 'eth0');
}
