/**
 * DNS end to end, as a user drives it: four lab hosts, routers on h1-h3 (`bin/loom launch`, IPAM
 * consensus among the three), a tiny upstream DNS server alone in h4 that the routers forward to
 * (their /etc/netns resolv.conf). Containers come from `loom run NAME net:default` and ask with
 * the real resolvers: glibc (`getent`, `ping` by name) and `dig`, through the resolv.conf Loom
 * bind-mounts into them. Proves: the host address is on the bridge and serves DNS; failover of a
 * name to another host; round robin and removal within 1 s of a kill; NXDOMAIN, NODATA, PTR,
 * forwarding, SERVFAIL with the upstream down, truncation and TCP; a removal made on one side of a
 * partition holds after the heal. Needs root, nft, unshare, nsenter, ping, dig (skips otherwise).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { labSkipReason, withLab, killPids } from '../helpers/lab.js';
import { UPSTREAM_ANSWER, UPSTREAM_DOMAIN, useUpstream } from '../helpers/upstream-dns.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import type { ContainerList } from '../../src/containers/routes.js';
import type { HostAddressStatus } from '../../src/daemon/host-address.js';

const missing = ['ping', 'unshare', 'nsenter', 'dig', 'getent'].filter((c) => !['/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(`${d}/${c}`)));
const skip = labSkipReason() ?? (missing.length > 0 ? `missing ${missing.join(', ')} (apt-get install -y iputils-ping bind9-dnsutils)` : false);
const CONVERGE_MS = 60_000;
const DOMAIN = 'loom.local';

/** Container PIDs of this run: killed by PID when the test ends, however it ends. */
const containerPids = new Set<number>();
function killContainers(): void {
  killPids(containerPids);
}

interface Box {
  host: LabHost;
  name: string;
  id: string;
  ip: string;
  pid: number;
}

async function containersOf(cli: LoomCli, h: LabHost): Promise<ContainerList> {
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784/containers').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  const list = JSON.parse(out.stdout) as ContainerList;
  for (const c of list.containers) containerPids.add(c.pid);
  return list;
}

/** `loom run --name NAME net:default -- sleep 3600` in `h`: an address from IPAM. */
async function run(cli: LoomCli, h: LabHost, name: string): Promise<Box> {
  const id = (await cli.run(h, ['run', '--name', name, 'net:default', '--', 'sleep', '3600'])).stdout.trim();
  const row = (await containersOf(cli, h)).containers.find((c) => c.id === id);
  assert.ok(row, `container ${name} (${id}) is listed on ${h.name}`);
  assert.match(row.cidrs[0] ?? '', /^10\.(3[2-9]|4[0-7])\.\d+\.\d+\/12$/, 'an address from the IPAM range');
  return { host: h, name, id, ip: row.cidrs[0]!.split('/')[0]!, pid: row.pid };
}

function exec(cli: LoomCli, box: Box, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cli.run(box.host, ['exec', box.name, '--', ...argv], { allowFailure: true, timeoutMs: 20_000 });
}

async function hostAddressOf(cli: LoomCli, h: LabHost): Promise<HostAddressStatus | undefined> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: HostAddressStatus };
  return report['host-address'];
}

interface DigResult {
  status: string;
  flags: string[];
  answers: string[];
}

/** `dig` in the host's namespace against `server`; the answers are the data fields. */
async function dig(lab: Lab, h: LabHost, server: string, args: string[]): Promise<DigResult> {
  const r = await lab.exec(h, 'dig', ['+time=4', '+tries=1', '+noall', '+comments', '+answer', `@${server}`, ...args], { allowFailure: true, timeoutMs: 15_000 });
  return parseDig(r.stdout);
}

function parseDig(text: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? `no reply (${text.trim().slice(0, 200)})`;
  const flags = (/;; flags: ([a-z ]+);/.exec(text)?.[1] ?? '').trim().split(/\s+/);
  const answers = text
    .split('\n')
    .filter((l) => l.length > 0 && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).slice(4).join(' '));
  return { status, flags, answers };
}

test('DNS end to end: containers resolve each other by name across three hosts', { skip, timeout: 420_000 }, async (t) => {
  process.on('exit', killContainers);
  try {
    await withLab(t, { hosts: 4, subnet: '192.168.98.0/24' }, (lab, cli) => body(t, lab, cli));
  } finally {
    killContainers();
    process.off('exit', killContainers);
  }
});

async function body(t: TestContext, lab: Lab, cli: LoomCli): Promise<void> {
  const [h1, h2, h3, h4] = lab.hosts as [LabHost, LabHost, LabHost, LabHost];
  const routers = [h1, h2, h3];
  const upstream = await useUpstream(lab, h4, routers);
  for (const h of routers) await cli.launch(h, { peers: routers.filter((o) => o !== h).map((o) => o.address) });

  // Each host's overlay address, once it is on the bridge and DNS serves on it.
  const server = new Map<LabHost, string>();
  for (const h of routers) {
    const status = await pollUntil(async () => {
      const s = await hostAddressOf(cli, h);
      return s?.dns && s.cidr ? s : undefined;
    }, { what: `${h.name} host address and DNS`, timeoutMs: CONVERGE_MS, intervalMs: 300 });
    server.set(h, status.cidr!.split('/')[0]!);
  }
  const dnsOf = (h: LabHost): string => server.get(h)!;
  assert.equal(new Set(server.values()).size, 3, 'three distinct host addresses');
  // The daemon serves UDP on the native responder by default (its library is part of the build).
  const env = process.env;
  const expectedPath = env['LOOM_DNS_UDP'] !== undefined && env['LOOM_DNS_UDP'] !== 'auto' ? env['LOOM_DNS_UDP'] : env['LOOM_DNS_NATIVE'] === '0' ? 'batched' : 'native';
  for (const h of routers) {
    const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { dns?: { listeners?: Array<{ udpPath?: string }> } };
    const paths = (report.dns?.listeners ?? []).map((l) => l.udpPath);
    assert.ok(paths.length > 0 && paths.every((p) => p === expectedPath), `${h.name}: UDP served on ${expectedPath}: ${JSON.stringify(paths)}`);
  }
  for (const h of routers) {
    const addr = await lab.exec(h, 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'loom']);
    assert.ok(addr.stdout.includes(`"local":"${dnsOf(h)}"`), `${h.name}: the address is on the bridge`);
  }

  /** Waits until every router's server answers `name` with exactly `expected` (any order); returns ms taken. */
  async function converged(name: string, expected: string[], timeoutMs = 5_000, intervalMs = 20): Promise<number> {
    const start = Date.now();
    const want = [...expected].sort().join(',');
    await pollUntil(
      async () => {
        const seen = await Promise.all(routers.map((h) => dig(lab, h, dnsOf(h), [name])));
        return seen.every((r) => [...r.answers].sort().join(',') === want) ? true : undefined;
      },
      { what: `every host answers ${name} with [${want}]`, timeoutMs, intervalMs },
    );
    return Date.now() - start;
  }

  await t.test('a container gets the host server, the search domain and ndots:1; the host keeps its own', async () => {
    const box = await run(cli, h1, 'probe1');
    const r = await exec(cli, box, ['cat', '/etc/resolv.conf']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^nameserver ${dnsOf(h1).replace(/\./g, '\\.')}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^search ${DOMAIN}$`, 'm'));
    assert.match(r.stdout, /^options ndots:1$/m);
    const hostFile = await lab.exec(h1, 'cat', ['/etc/resolv.conf']);
    assert.equal(hostFile.stdout, `nameserver ${upstream.address}\n`, "the host's resolv.conf is untouched");
    assert.equal((await getent(box, 'probe1')).address, box.ip, 'a container finds itself by name');
    await cli.run(h1, ['rm', 'probe1']);
  });

  async function getent(from: Box, name: string): Promise<{ code: number; address: string | undefined }> {
    const r = await exec(cli, from, ['getent', 'hosts', name]);
    return { code: r.code, address: r.stdout.trim().split(/\s+/)[0] };
  }

  /** `ping -c 1 NAME` from `from`: the address glibc resolved, and whether it answered. */
  async function pingName(from: Box, name: string): Promise<{ ok: boolean; address: string | undefined }> {
    const r = await exec(cli, from, ['ping', '-c', '1', '-W', '3', name]);
    return { ok: r.code === 0, address: /^PING \S+ \((\d+\.\d+\.\d+\.\d+)\)/m.exec(r.stdout)?.[1] };
  }

  await t.test('failover: service2 killed on h2 and started on h3; service1 on h1 reaches the new one by name', async () => {
    const service1 = await run(cli, h1, 'service1');
    const first = await run(cli, h2, 'service2');
    await converged(`service2.${DOMAIN}`, [first.ip], 10_000, 100);
    const before = await pingName(service1, 'service2');
    assert.deepEqual(before, { ok: true, address: first.ip }, 'service1 pings service2 on h2 by name');

    process.kill(first.pid, 'SIGKILL');
    await converged(`service2.${DOMAIN}`, [], 3_000);
    assert.equal((await getent(service1, 'service2')).code, 2, 'service2 is gone (getent: not found)');

    const second = await run(cli, h3, 'service2');
    assert.notEqual(second.ip, first.ip);
    await converged(`service2.${DOMAIN}`, [second.ip], 5_000);
    const after = await pingName(service1, 'service2');
    assert.deepEqual(after, { ok: true, address: second.ip }, 'service1 pings the new service2 on h3 by name');
    assert.equal((await getent(service1, `service2.${DOMAIN}`)).address, second.ip, 'the fully qualified name too');
  });

  const apis: Box[] = [];
  await t.test('round robin: three containers named api; dig returns all three in varying order; a killed one is gone everywhere within 1 s', async () => {
    for (const h of routers) apis.push(await run(cli, h, 'api'));
    const client = await run(cli, h2, 'client');
    await converged(`api.${DOMAIN}`, apis.map((b) => b.ip), 10_000, 100);
    const orders = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const r = await exec(cli, client, ['dig', '+short', `api.${DOMAIN}`]);
      const got = r.stdout.trim().split('\n');
      assert.deepEqual([...got].sort(), apis.map((b) => b.ip).sort(), 'every query returns all three');
      orders.add(got.join(','));
    }
    assert.ok(orders.size > 1, `the order varies across queries (${orders.size} orders in 12)`);

    const victim = apis[0]!;
    process.kill(victim.pid, 'SIGKILL');
    const ms = await converged(`api.${DOMAIN}`, apis.slice(1).map((b) => b.ip), 3_000);
    t.diagnostic(`kill of api on ${victim.host.name} -> two records on every host after ${ms} ms`);
    assert.ok(ms <= 1000, `removed everywhere within 1 s (took ${ms} ms)`);
  });

  await t.test('loom rm removes the name on every host within 1 s', async () => {
    const victim = apis[1]!;
    await cli.run(victim.host, ['rm', victim.id]);
    const ms = await converged(`api.${DOMAIN}`, [apis[2]!.ip], 3_000);
    t.diagnostic(`loom rm of api on ${victim.host.name} -> one record on every host ${ms} ms after rm returned`);
    assert.ok(ms <= 1000, `removed everywhere within 1 s of rm (took ${ms} ms)`);
  });

  await t.test('answers: NXDOMAIN, NODATA for AAAA, PTR of a container address, forwarding, truncation and TCP', async () => {
    const api = apis[2]!;
    const s = dnsOf(h1);
    const nx = await dig(lab, h1, s, [`nosuch.${DOMAIN}`]);
    assert.equal(nx.status, 'NXDOMAIN');
    const authority = await lab.exec(h1, 'dig', ['+time=4', '+tries=1', '+noall', '+authority', `@${s}`, `nosuch.${DOMAIN}`], { allowFailure: true, timeoutMs: 15_000 });
    assert.match(authority.stdout, new RegExp(`^${DOMAIN.replace(/\./g, '\\.')}\\.\\s+\\d+\\s+IN\\s+SOA\\s`, 'm'), `NXDOMAIN carries the domain's SOA: ${authority.stdout}`);
    const aaaa = await dig(lab, h1, s, ['AAAA', `api.${DOMAIN}`]);
    assert.deepEqual([aaaa.status, aaaa.answers], ['NOERROR', []], 'AAAA of a known name: NOERROR, no answers');
    const ptr = await dig(lab, h1, s, ['-x', api.ip]);
    assert.deepEqual([ptr.status, ptr.answers], ['NOERROR', [`api.${DOMAIN}.`]], 'PTR of a container on h3, asked on h1');
    const forwarded = await dig(lab, h1, s, [`www.${UPSTREAM_DOMAIN}`]);
    assert.deepEqual([forwarded.status, forwarded.answers], ['NOERROR', [UPSTREAM_ANSWER]], 'a name outside the domain comes from the upstream');
    const upstreamNx = await dig(lab, h1, s, ['nosuch.invalid']);
    assert.equal(upstreamNx.status, 'NXDOMAIN', "the upstream's NXDOMAIN is passed on");

    const many = Array.from({ length: 50 }, (_, i) => `10.40.${Math.floor(i / 250)}.${(i % 250) + 1}`);
    await cli.run(h2, ['dns-add', ...many, '-h', 'many']);
    await converged(`many.${DOMAIN}`, many, 5_000, 100);
    const udp = await dig(lab, h1, s, ['+noedns', '+ignore', `many.${DOMAIN}`]);
    assert.ok(udp.flags.includes('tc'), `UDP answer truncated (flags: ${udp.flags.join(' ')})`);
    assert.ok(udp.answers.length < 50, `UDP carries fewer than 50 (${udp.answers.length})`);
    const tcp = await dig(lab, h1, s, ['+tcp', `many.${DOMAIN}`]);
    assert.equal(tcp.flags.includes('tc'), false);
    assert.deepEqual([...tcp.answers].sort(), [...many].sort(), 'TCP returns all 50');
    await cli.run(h2, ['dns-remove', '-h', 'many']);
  });

  await t.test('partition: a removal on one side holds everywhere after the heal', async () => {
    await cli.run(h1, ['dns-add', '10.41.0.1', '-h', 'gone']);
    await cli.run(h1, ['dns-add', '10.41.0.2', '-h', 'stays']);
    await converged(`gone.${DOMAIN}`, ['10.41.0.1'], 5_000, 100);
    await converged(`stays.${DOMAIN}`, ['10.41.0.2'], 5_000, 100);

    const block = await lab.partition([h1], [h2, h3]);
    await cli.run(h1, ['dns-remove', '-h', 'gone']);
    assert.equal((await dig(lab, h1, dnsOf(h1), [`gone.${DOMAIN}`])).status, 'NXDOMAIN', 'gone at once on h1');
    // The other side still holds the live copy (hidden once it sees h1 unreachable); wait until it does.
    await pollUntil(async () => ((await dig(lab, h2, dnsOf(h2), [`stays.${DOMAIN}`])).answers.length === 0 ? true : undefined), {
      what: 'h2 to hide the records of unreachable h1',
      timeoutMs: CONVERGE_MS,
      intervalMs: 500,
    });
    await lab.unblock(block);

    // The heal is visible when h1's other record shows again on the far side.
    await converged(`stays.${DOMAIN}`, ['10.41.0.2'], CONVERGE_MS, 300);
    for (let i = 0; i < 5; i++) {
      for (const h of routers) assert.equal((await dig(lab, h, dnsOf(h), [`gone.${DOMAIN}`])).status, 'NXDOMAIN', `gone stays removed on ${h.name}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const status = await cli.run(h3, ['status', 'dns']);
    assert.doesNotMatch(status.stdout, /gone\.loom\.local/);
  });

  await t.test('a router restart keeps the host address (once on the bridge) and serves its containers again', async () => {
    const before = dnsOf(h1);
    const service1 = (await containersOf(cli, h1)).containers.find((c) => c.name === 'service1');
    assert.ok(service1, 'service1 runs on h1');
    await cli.stop(h1);
    await cli.launch(h1, { peers: [h2.address, h3.address] });
    const status = await pollUntil(async () => {
      const s = await hostAddressOf(cli, h1);
      return s?.dns ? s : undefined;
    }, { what: 'h1 serves DNS again', timeoutMs: CONVERGE_MS, intervalMs: 200 });
    assert.equal(status.cidr?.split('/')[0], before, 'the same address after the restart');
    const addrs = JSON.parse((await lab.exec(h1, 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'loom'])).stdout) as Array<{ addr_info: unknown[] }>;
    assert.equal(addrs[0]?.addr_info.length, 1, 'one address on the bridge, not two');
    const box: Box = { host: h1, name: 'service1', id: service1.id, ip: service1.cidrs[0]!.split('/')[0]!, pid: service1.pid };
    const found = await pollUntil(async () => {
      const r = await getent(box, 'api');
      return r.code === 0 ? r.address : undefined;
    }, { what: 'service1 resolves api after the restart', timeoutMs: 10_000, intervalMs: 200 });
    assert.equal(found, apis[2]!.ip);
  });

  await t.test('upstream down: names outside the domain get SERVFAIL, local names still answer', async () => {
    await lab.stopProcess(upstream.process.pid);
    const r = await dig(lab, h1, dnsOf(h1), [`www2.${UPSTREAM_DOMAIN}`]);
    assert.equal(r.status, 'SERVFAIL');
    const local = await dig(lab, h1, dnsOf(h1), [`api.${DOMAIN}`]);
    assert.deepEqual(local.answers, [apis[2]!.ip]);
  });

  for (const h of routers) {
    const names = (await containersOf(cli, h)).containers.map((c) => c.id);
    if (names.length > 0) await cli.run(h, ['rm', ...names]);
    assert.deepEqual((await containersOf(cli, h)).containers, []);
  }
}
