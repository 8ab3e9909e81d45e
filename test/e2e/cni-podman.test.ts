/**
 * Podman 4.3 with its CNI backend on two lab hosts whose routers run Loom: the conflist and the
 * plugin come from `loom cni install` (into the lab's folders), each host's Podman has its own
 * --root/--runroot and containers.conf (network_backend "cni", runc, ulimits this VM allows),
 * containers come from `--rootfs` of a static-busybox tree (no registry). Proves: Podman
 * containers on the two hosts ping each other and a `loom run` container, and resolve each other
 * and it by name (NAME.loom.local) through the `dns` of the ADD result that Podman writes into
 * resolv.conf; full-size pings cross an underlay of MTU 1400 that drops IPv4 fragments and 2 % of
 * packets; `podman rm` (CNI DEL) releases each attachment. Needs root, podman, runc, busybox.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labSkipReason, withLab } from '../helpers/lab.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { systemRunner, type CommandResult } from '../../src/os/runner.js';

const BUSYBOX = '/usr/bin/busybox';
const missing = ['/usr/bin/podman', '/usr/sbin/runc', BUSYBOX, '/usr/bin/nsenter'].filter((p) => !existsSync(p));
const skip = labSkipReason() ?? (missing.length > 0 ? `missing ${missing.join(', ')} (apt-get install -y podman runc busybox-static)` : false);

/** A static-busybox root filesystem: enough for sleep, ping, nslookup, cat. */
function busyboxRootfs(dir: string): string {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'root']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep', 'ping', 'nslookup', 'cat', 'ip', 'hostname']) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\n');
  writeFileSync(join(dir, 'etc', 'resolv.conf'), '');
  writeFileSync(join(dir, 'etc', 'hosts'), '');
  return dir;
}

interface PodmanHost {
  host: LabHost;
  dir: string;
  conf: string;
}

/** Podman for one lab host: runs in the host's network namespace but the test's mount namespace, so the netns files it makes are the ones the router sees. */
function podman(p: PodmanHost, args: string[], allowFailure = false): Promise<CommandResult> {
  const global = ['--root', join(p.dir, 'root'), '--runroot', join(p.dir, 'runroot'), '--cni-config-dir', join(p.dir, 'net.d'), '--tmpdir', join(p.dir, 'tmp')];
  return systemRunner.run('nsenter', [`--net=/run/netns/${p.host.netns}`, 'podman', ...global, ...args], {
    env: { ...process.env, CONTAINERS_CONF: p.conf },
    timeoutMs: 90_000,
    allowFailure,
  });
}

async function hostAddress(cli: LoomCli, h: LabHost): Promise<string> {
  return pollUntil(
    async () => {
      const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: { cidr: string | null; dns: boolean } };
      const ha = report['host-address'];
      return ha?.cidr && ha.dns ? ha.cidr : undefined;
    },
    { what: `${h.name}'s host address serving DNS`, timeoutMs: 60_000, intervalMs: 300 },
  );
}

async function cniAttachments(lab: Lab, h: LabHost): Promise<Array<{ containerId: string; cidr: string }>> {
  const out = await lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/cni/attachments').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  return (JSON.parse(out.stdout) as { attachments: Array<{ containerId: string; cidr: string }> }).attachments;
}

test('Podman (CNI backend) containers on two Loom hosts reach each other and a `loom run` container, by address and by name', { skip, timeout: 300_000 }, async (t: TestContext) => {
  await withLab(t, { hosts: 2, mtu: 1400, realisticWire: true }, async (lab, cli) => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    const net = `${lab.prefix}net`;
    const rootfs = busyboxRootfs(join(lab.workDir, 'rootfs'));
    const binDir = join(lab.workDir, 'cni-bin');
    const hosts: PodmanHost[] = [];
    for (const h of [h1, h2]) {
      const dir = join(lab.workDir, `podman-${h.name}`);
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      await cli.run(h, ['cni', 'install', '--bin-dir', binDir, '--conf-dir', join(dir, 'net.d'), '--name', net]);
      const conf = join(dir, 'containers.conf');
      writeFileSync(
        conf,
        [
          '[containers]',
          'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
          '[network]',
          'network_backend = "cni"',
          `cni_plugin_dirs = ["${binDir}", "/usr/lib/cni"]`,
          `network_config_dir = "${join(dir, 'net.d')}"`,
          '[engine]',
          'runtime = "runc"',
          'events_logger = "file"',
          'cgroup_manager = "cgroupfs"',
          '',
        ].join('\n'),
      );
      hosts.push({ host: h, dir, conf });
    }
    const [p1, p2] = hosts as [PodmanHost, PodmanHost];
    const names = { a: `${lab.prefix}-pa`, b: `${lab.prefix}-pb`, run: `${lab.prefix}-lr` };
    let lrunId = '';
    try {

    await cli.launch(h1);
    await cli.launch(h2, { peers: [h1.address] });
    const gw1 = (await hostAddress(cli, h1)).split('/')[0]!;
    await hostAddress(cli, h2);

    lrunId = (await cli.run(h1, ['run', '--name', names.run, 'net:default', '--', 'sleep', '600'])).stdout.trim();
    const containers = await lab.exec(h1, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
    const lrunIp = (JSON.parse(containers.stdout) as { containers: Array<{ id: string; cidrs: string[] }> }).containers.find((c) => c.id === lrunId)?.cidrs[0]?.split('/')[0];
    assert.ok(lrunIp, 'the loom run container has an address');

    await podman(p1, ['run', '-d', '--name', names.a, '--network', net, '--rootfs', rootfs, 'sleep', '600']);
    await podman(p2, ['run', '-d', '--name', names.b, '--network', net, '--rootfs', rootfs, 'sleep', '600']);
    const [a1] = await cniAttachments(lab, h1);
    const [b1] = await cniAttachments(lab, h2);
    assert.ok(a1 && b1, 'each host holds one CNI attachment');
    const ipA = a1.cidr.split('/')[0]!;
    const ipB = b1.cidr.split('/')[0]!;

    const resolv = (await podman(p1, ['exec', names.a, 'cat', '/etc/resolv.conf'])).stdout;
    assert.match(resolv, new RegExp(`nameserver ${gw1.replace(/\./g, '\\.')}`), `the ADD result's DNS server is in resolv.conf:\n${resolv}`);
    assert.match(resolv, /search .*loom\.local/);

    const ping = (p: PodmanHost, name: string, target: string) =>
      pollUntil(async () => ((await podman(p, ['exec', name, 'ping', '-c1', '-W1', target], true)).code === 0 ? true : undefined), { what: `${name} -> ${target}`, timeoutMs: 20_000, intervalMs: 500 });
    await ping(p1, names.a, ipB);
    await ping(p2, names.b, ipA);
    await ping(p2, names.b, lrunIp);
    // By name: the two Podman containers and the `loom run` one, across hosts.
    await ping(p2, names.b, `${names.a}.loom.local`);
    await ping(p1, names.a, `${names.b}.loom.local`);
    await ping(p2, names.b, `${names.run}.loom.local`);
    await ping(p1, names.a, names.run); // the search domain from the result

    // The world's underlay: MTU 1400 (the lab's), every IPv4 fragment dropped and 2 % of packets
    // lost at random. Full-size pings (1372 data bytes fill a 1400-byte packet, so the 1450-byte
    // Loom segment must not be carried as fragments) still come back across hosts.
    const rough = await lab.degrade({ dropFragments: true, lossPercent: 2 });
    try {
      const big = await podman(p1, ['exec', names.a, 'ping', '-c', '20', '-i', '0.2', '-W', '2', '-s', '1372', ipB], true);
      const received = Number(/(\d+) packets received/.exec(big.stdout)?.[1] ?? 0);
      t.diagnostic(`MTU 1400, fragments dropped, 2 % loss: ${received}/20 full-size pings answered across hosts`);
      assert.ok(received >= 14, `full-size pings across a lossy, fragment-dropping, MTU-1400 underlay: ${received}/20 answered\n${big.stdout}${big.stderr}`);
    } finally {
      await lab.unblock(rough);
    }

    await podman(p1, ['rm', '-f', '-t', '0', names.a]);
    await podman(p2, ['rm', '-f', '-t', '0', names.b]);
    assert.deepEqual(await cniAttachments(lab, h1), [], 'podman rm (CNI DEL) released the attachment on h1');
    assert.deepEqual(await cniAttachments(lab, h2), [], 'and on h2');
    } finally {
      // Before the lab goes: Podman's containers (their DEL needs the routers) and the `loom run` one.
      await podman(p1, ['rm', '-f', '-t', '0', names.a], true);
      await podman(p2, ['rm', '-f', '-t', '0', names.b], true);
      if (lrunId !== '') await cli.run(h1, ['rm', lrunId], { allowFailure: true });
    }
  });
});
