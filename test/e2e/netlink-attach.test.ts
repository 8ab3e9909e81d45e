/**
 * attachNetwork over real rtnetlink, as root, in scratch namespaces only (every name starts with
 * `lnk<pid>-`; all of them are deleted in a finally and on exit; the root namespace is never
 * touched). A "host" namespace holds the bridge and runs the attach (a child node in it, through
 * `ip netns exec`, so the router's own namespace is that host's); "container" namespaces are
 * targets by path (/run/netns/X) and by PID. Proves: the peer is made directly in the target,
 * address, MTU, MAC, lo, link-up, 224.0.0.0/4 and default routes, arp_notify, the port forwarding;
 * a second attach is idempotent (adds a missing address only); exclusive is ERR_CONFLICT; a kernel
 * error after the pair exists names its errno and deletes the pair.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status !== 0 ? '`ip netns` is not available' : false;

const PREFIX = `lnk${process.pid}-`;
const HOST = `${PREFIX}h`;
const POD = `${PREFIX}c`;
const POD2 = `${PREFIX}p`;
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'netlink-attach.fixture.js');

function ip(args: string[], allowFailure = false): string {
  const out = spawnSync('ip', args, { encoding: 'utf8' });
  if (out.status !== 0 && !allowFailure) throw new Error(`ip ${args.join(' ')}: ${out.stderr}`);
  return out.stdout;
}

function inNs(ns: string, argv: string[]): string {
  const out = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${argv.join(' ')} in ${ns}: ${out.stderr}`);
  return out.stdout;
}

const started: number[] = [];
function cleanup(): void {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const ns of [POD2, POD, HOST]) ip(['netns', 'del', ns], true);
}
process.on('exit', cleanup);

interface Answer {
  result?: { hostVeth: string | null; mac: string };
  error?: { code: string; message: string };
  ms: number;
}

function attach(specs: unknown[]): Answer[] {
  return JSON.parse(inNs(HOST, [process.execPath, FIXTURE, JSON.stringify(specs)])) as Answer[];
}

interface IpLink {
  ifname: string;
  address: string;
  mtu: number;
  master?: string;
  flags: string[];
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

function links(ns: string): IpLink[] {
  return JSON.parse(ip(['-n', ns, '-j', 'addr', 'show'])) as IpLink[];
}

function routes(ns: string): string[] {
  return (JSON.parse(ip(['-n', ns, '-j', '-4', 'route', 'show'])) as Array<{ dst: string; gateway?: string; dev: string }>).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}`);
}

test('attach over rtnetlink: veth into the target, addresses, routes, arp_notify; idempotent; exclusive; rollback naming the errno', { skip, timeout: 60_000 }, () => {
  try {
    cleanup();
    for (const ns of [HOST, POD, POD2]) ip(['netns', 'add', ns]);
    ip(['-n', HOST, 'link', 'add', 'lnkbr', 'type', 'bridge']);
    ip(['-n', HOST, 'link', 'set', 'lnkbr', 'up']);
    const spec = { target: { path: `/run/netns/${POD}` }, cidr: '10.99.0.5/24', mac: '02:99:00:00:00:05', bridge: 'lnkbr', mtu: 1400, hostVeth: 'lnkv1', gateway: '10.99.0.1' };

    const [first, again, second, exclusive] = attach([spec, spec, { ...spec, cidr: '10.99.1.5/24' }, { ...spec, exclusive: true }]);
    assert.deepEqual(first!.result, { hostVeth: 'lnkv1', mac: '02:99:00:00:00:05' }, JSON.stringify(first));
    const ethwe = links(POD).find((l) => l.ifname === 'ethwe')!;
    assert.ok(ethwe, 'the peer was made in the target namespace');
    assert.equal(ethwe.address, '02:99:00:00:00:05');
    assert.equal(ethwe.mtu, 1400);
    assert.ok(ethwe.flags.includes('UP'));
    assert.deepEqual(ethwe.addr_info?.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), ['10.99.0.5/24', '10.99.1.5/24'], 'the second address only was added');
    assert.ok(links(POD).find((l) => l.ifname === 'lo')!.flags.includes('UP'), 'lo is up');
    assert.deepEqual(routes(POD).sort(), ['10.99.0.0/24 dev ethwe', '10.99.1.0/24 dev ethwe', '224.0.0.0/4 dev ethwe', 'default via 10.99.0.1 dev ethwe'].sort());
    assert.equal(inNs(POD, ['cat', '/proc/sys/net/ipv4/conf/ethwe/arp_notify']).trim(), '1');
    const port = links(HOST).find((l) => l.ifname === 'lnkv1')!;
    assert.equal(port.master, 'lnkbr');
    assert.equal(port.mtu, 1400);
    assert.ok(port.flags.includes('UP'));
    assert.ok(ip(['-n', HOST, '-j', 'link', 'show', 'dev', 'lnkv1']).length > 0);
    assert.match(spawnSync('bridge', ['-n', HOST, '-j', 'link', 'show', 'dev', 'lnkv1'], { encoding: 'utf8' }).stdout, /"state":"forwarding"/);
    assert.deepEqual(again!.result, { hostVeth: null, mac: '02:99:00:00:00:05' }, 'attach again: nothing new');
    assert.equal(second!.result?.hostVeth, null);
    assert.equal(exclusive!.error?.code, 'ERR_CONFLICT');
    assert.equal(links(HOST).filter((l) => l.ifname.startsWith('lnkv')).length, 1, 'no second pair');

    // By PID (/proc/PID/ns/net), and a kernel error after the pair exists: a gateway off the subnet.
    const holder = spawn('ip', ['netns', 'exec', POD2, 'sleep', '60'], { stdio: 'ignore' });
    started.push(holder.pid!);
    let pid = 0;
    for (let i = 0; i < 100 && pid === 0; i++) {
      const found = spawnSync('ip', ['netns', 'pids', POD2], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
      pid = Number(found ?? 0) || 0;
      if (pid === 0) spawnSync('sleep', ['0.05']);
    }
    assert.ok(pid > 0, 'the holder process runs in its namespace');
    const [unreachable, byPid, noBridge] = attach([
      { ...spec, target: { pid }, hostVeth: 'lnkv2', gateway: '10.77.0.1' },
      { ...spec, target: { pid }, hostVeth: 'lnkv2', cidr: '10.99.0.6/24' },
      { ...spec, target: { pid }, hostVeth: 'lnkv3', bridge: 'lnknone', ifname: 'eth1' },
    ]);
    assert.equal(unreachable!.error?.code, 'ERR_OS_COMMAND', JSON.stringify(unreachable));
    assert.match(unreachable!.error?.message ?? '', /ENETUNREACH|EINVAL/, 'the errno is named');
    assert.ok(byPid!.result, JSON.stringify(byPid));
    assert.equal(links(HOST).filter((l) => l.ifname.startsWith('lnkv')).length, 2, 'the failed pair was deleted; the second attach made lnkv2 again');
    assert.deepEqual(links(POD2).find((l) => l.ifname === 'ethwe')?.addr_info?.filter((a) => a.family === 'inet').map((a) => a.local), ['10.99.0.6']);
    assert.equal(noBridge!.error?.code, 'ERR_NOT_FOUND', JSON.stringify(noBridge));
    assert.equal(links(POD2).filter((l) => l.ifname === 'eth1').length, 0, 'nothing made without a bridge');
    const times = [first!, byPid!].map((a) => a.ms.toFixed(1));
    process.stderr.write(`# attach over rtnetlink (new pair): ${times.join(' ms, ')} ms\n`);
  } finally {
    cleanup();
  }
  assert.equal(ip(['netns', 'list']).split('\n').filter((l) => l.startsWith(PREFIX)).length, 0, 'no scratch namespace left');
});
