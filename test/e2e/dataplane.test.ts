/**
 * Two "hosts" (network namespaces lm<hex>-h1/h2) on an underlay bridge (lm<hex>-ul). In each host:
 * the Loom bridge + kernel VXLAN from LinuxDataplane.apply, and two containers from
 * ContainerRuntime.run. Proves: every container pings every other, ARP resolves across hosts,
 * ethwe has MTU 1450 and a 1450-byte DF packet crosses, re-applying the same state does nothing,
 * teardown leaves no namespace and no process of this run. Needs root, unshare and ping; skips
 * otherwise. Everything stays inside the namespaces created here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainerRuntime, procProcessTable, type ContainerRecord } from '../../src/containers/index.js';
import type { DataplaneOp } from '../../src/dataplane/index.js';
import { systemRunner } from '../../src/os/runner.js';

const here = dirname(fileURLToPath(import.meta.url));
const isTs = import.meta.url.endsWith('.ts');
const agentPath = join(here, `dataplane-agent.fixture.${isTs ? 'ts' : 'js'}`);

function which(cmd: string): boolean {
  return ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, cmd)));
}
const missing = ['ip', 'bridge', 'unshare', 'nsenter', 'ping'].filter((c) => !which(c));
const skip = process.getuid?.() !== 0 ? 'needs root' : missing.length > 0 ? `missing ${missing.join(', ')} (apt-get install -y iputils-ping)` : false;

const prefix = `lm${randomBytes(3).toString('hex')}`;
const NS = { ul: `${prefix}-ul`, h1: `${prefix}-h1`, h2: `${prefix}-h2` };
const startedPids = new Set<number>();
const NAMES = { bridge: 'loom', vxlan: 'vxlan-loom' };
const HOSTS = [
  { key: 'h1' as const, ns: NS.h1, peer: '02:00:00:00:00:01', ip: '192.168.77.1' },
  { key: 'h2' as const, ns: NS.h2, peer: '02:00:00:00:00:02', ip: '192.168.77.2' },
];

/** Synchronous last-resort cleanup (also from process 'exit'): kill our PIDs, delete our namespaces. */
function emergencyCleanup(): void {
  for (const pid of startedPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const ns of Object.values(NS)) {
    if (existsSync(`/run/netns/${ns}`)) {
      try {
        // Synchronous (an 'exit' hook cannot await the async runner); still an argument array.
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 5000 });
      } catch {
        // best effort
      }
    }
  }
}

async function ip(args: string[], netns?: string): Promise<string> {
  return (await systemRunner.run('ip', args, netns ? { netns } : {})).stdout;
}

async function agent(ns: string, command: unknown): Promise<any> {
  const argv = [...(isTs ? ['--import', 'tsx'] : []), agentPath, JSON.stringify(command)];
  const out = await systemRunner.run('node', argv, { netns: ns, timeoutMs: 60_000 });
  return JSON.parse(out.stdout);
}

function desiredFor(host: (typeof HOSTS)[number], remoteMacs: Array<{ mac: string; peer: string }>) {
  const other = HOSTS.find((h) => h !== host)!;
  return {
    bridge: { name: NAMES.bridge, mtu: 1450 },
    vxlan: { name: NAMES.vxlan, vni: 42, port: 4789, mtu: 1450, localIp: host.ip, localBypass: false },
    peers: [{ name: other.peer, underlayIp: other.ip, via: 'fastdp' }],
    remoteMacs,
  };
}

async function quietNetns(ns: string): Promise<void> {
  await ip(['netns', 'add', ns]);
  await systemRunner.run('sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { netns: ns });
  await ip(['link', 'set', 'lo', 'up'], ns);
}

test('dataplane e2e: two hosts, kernel VXLAN, two containers each', { skip, timeout: 180_000 }, async (t) => {
  const onExit = () => emergencyCleanup();
  const onSignal = () => {
    emergencyCleanup();
    process.exit(130);
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  const stateDirs = { h1: mkdtempSync(join(tmpdir(), `${prefix}-h1-`)), h2: mkdtempSync(join(tmpdir(), `${prefix}-h2-`)) };
  const containers: Array<ContainerRecord & { host: 'h1' | 'h2' }> = [];
  try {
    // Underlay: a bridge in its own namespace, one veth per host.
    await quietNetns(NS.ul);
    await ip(['link', 'add', 'br0', 'type', 'bridge'], NS.ul);
    await ip(['link', 'set', 'br0', 'up'], NS.ul);
    for (const h of HOSTS) {
      await quietNetns(h.ns);
      await ip(['-n', NS.ul, 'link', 'add', h.key, 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      await ip(['link', 'set', h.key, 'master', 'br0', 'up'], NS.ul);
      await ip(['addr', 'add', `${h.ip}/24`, 'dev', 'eth0'], h.ns);
      await ip(['link', 'set', 'eth0', 'up'], h.ns);
    }

    // Bridge + vxlan with the flood entry towards the other host.
    for (const h of HOSTS) {
      const { ops } = (await agent(h.ns, { op: 'apply', desired: desiredFor(h, []) })) as { ops: DataplaneOp[] };
      assert.ok(ops.some((o) => o.op === 'create-vxlan'), 'first apply creates the vxlan device');
    }

    // Two containers per host.
    let n = 0;
    for (const h of HOSTS) {
      for (const suffix of ['a', 'b']) {
        n++;
        const spec = { name: `${h.key}-${suffix}`, cidr: `10.45.0.${n}/24`, cmd: ['sleep', '600'], bridge: NAMES.bridge, mtu: 1450 };
        const record = (await agent(h.ns, { op: 'run', stateDir: stateDirs[h.key], spec })) as ContainerRecord;
        startedPids.add(record.unsharePid).add(record.pid);
        containers.push({ ...record, host: h.key });
      }
    }

    // Program remote MACs; then the same state again must change nothing.
    for (const h of HOSTS) {
      const other = HOSTS.find((o) => o !== h)!;
      const remoteMacs = containers.filter((c) => c.host === other.key).map((c) => ({ mac: c.mac, peer: other.peer }));
      const first = (await agent(h.ns, { op: 'apply', desired: desiredFor(h, remoteMacs) })) as { ops: DataplaneOp[] };
      assert.deepEqual(first.ops.map((o) => o.op), ['fdb-replace', 'fdb-replace']);
      const again = (await agent(h.ns, { op: 'apply', desired: desiredFor(h, remoteMacs) })) as { ops: DataplaneOp[] };
      assert.deepEqual(again.ops, [], 're-applying the same desired state changes nothing');
      const state = await agent(h.ns, { op: 'read', names: NAMES });
      assert.equal(state.links[NAMES.vxlan].vxlan.localBypass, false, 'local bypass is off');
      assert.equal(state.links[NAMES.vxlan].master, NAMES.bridge);
      for (const m of remoteMacs) assert.ok(state.fdb.some((e: any) => e.mac === m.mac && e.dst === other.ip), `fdb has ${m.mac} -> ${other.ip}`);
    }

    const runtime = (host: 'h1' | 'h2') => new ContainerRuntime({}, { stateDir: stateDirs[host] });
    const addr = (c: ContainerRecord) => c.cidrs[0]!.split('/')[0]!;

    await t.test('hostname and MTU 1450 on ethwe in every container', async () => {
      for (const c of containers) {
        const rt = runtime(c.host);
        assert.equal((await rt.execCapture(c.id, ['hostname'])).stdout.trim(), c.name);
        const link = JSON.parse((await rt.execCapture(c.id, ['ip', '-j', 'link', 'show', 'ethwe'])).stdout)[0];
        assert.equal(link.mtu, 1450);
        assert.equal(link.address, c.mac);
      }
    });

    await t.test('every container pings every other (same host and across hosts)', async () => {
      for (const from of containers) {
        for (const to of containers) {
          if (from === to) continue;
          const r = await runtime(from.host).execCapture(from.id, ['ping', '-c', '1', '-W', '2', addr(to)], { allowFailure: true });
          assert.equal(r.code, 0, `${from.name} -> ${to.name}: ${r.stdout}${r.stderr}`);
        }
      }
    });

    await t.test('ARP resolves across hosts to the remote container MAC', async () => {
      for (const from of containers) {
        for (const to of containers.filter((c) => c.host !== from.host)) {
          const neigh = JSON.parse((await runtime(from.host).execCapture(from.id, ['ip', '-j', 'neigh', 'show', addr(to)])).stdout) as Array<{ lladdr?: string }>;
          assert.equal(neigh[0]?.lladdr, to.mac, `${from.name} resolves ${to.name}`);
        }
      }
    });

    await t.test('a full 1450-byte packet with DF crosses the fast path; 1451 does not leave the container', async () => {
      const from = containers.find((c) => c.host === 'h1')!;
      const to = containers.find((c) => c.host === 'h2')!;
      const rt = runtime('h1');
      const ok = await rt.execCapture(from.id, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1422', addr(to)], { allowFailure: true });
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const tooBig = await rt.execCapture(from.id, ['ping', '-c', '1', '-W', '1', '-M', 'do', '-s', '1423', addr(to)], { allowFailure: true });
      assert.notEqual(tooBig.code, 0);
      // Measured, not asserted: RTT across hosts (fast path) vs on one bridge.
      const rtt = async (a: ContainerRecord & { host: 'h1' | 'h2' }, b: ContainerRecord) => {
        const r = await runtime(a.host).execCapture(a.id, ['ping', '-q', '-c', '50', '-i', '0.01', '-W', '1', addr(b)], { allowFailure: true });
        return /= [\d.]+\/([\d.]+)\//.exec(r.stdout)?.[1] ?? '?';
      };
      const local = containers.find((c) => c.host === 'h1' && c !== from)!;
      t.diagnostic(`ping RTT avg ms: across hosts (kernel VXLAN) ${await rtt(from, to)}, same host ${await rtt(from, local)}`);
    });

    await t.test('teardown removes containers, their processes, vxlan and bridge', async () => {
      for (const h of HOSTS) {
        const out = await agent(h.ns, { op: 'teardown', stateDir: stateDirs[h.key], names: NAMES });
        assert.equal(out.removed.length, 2);
        assert.deepEqual(out.ops.map((o: DataplaneOp) => o.op), ['delete-link', 'delete-link']);
        const state = await agent(h.ns, { op: 'read', names: NAMES });
        assert.deepEqual(state.links, {});
        const links = JSON.parse(await ip(['-j', 'link', 'show'], h.ns)) as Array<{ ifname: string }>;
        assert.deepEqual(links.map((l) => l.ifname).sort(), ['eth0', 'lo']);
      }
      for (const c of containers) {
        assert.equal(procProcessTable.startTime(c.pid), null, `container ${c.name} (pid ${c.pid}) is gone`);
        assert.equal(procProcessTable.startTime(c.unsharePid), null, `unshare of ${c.name} (pid ${c.unsharePid}) is gone`);
      }
    });
  } finally {
    for (const pid of startedPids) if (procProcessTable.startTime(pid) !== null) procProcessTable.signal(pid, 'SIGKILL');
    for (const ns of [NS.h1, NS.h2, NS.ul]) await systemRunner.run('ip', ['netns', 'del', ns], { allowFailure: true });
    for (const d of Object.values(stateDirs)) rmSync(d, { recursive: true, force: true });
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
  }
  const left = (await ip(['netns', 'list'])).split('\n').filter((l) => l.startsWith(prefix));
  assert.deepEqual(left, [], 'no namespace of this run remains');
});
