/**
 * loom-cni end to end, driven by a spec-faithful runtime (test/helpers/cni-runtime.ts) against a
 * real router (`bin/loom launch`) in lab namespaces, sandboxes being network namespaces of the
 * lab's prefix. Proves: every operation in every declared version (GC and STATUS refused with
 * code 1 under 0.4.0), idempotent ADD and DEL, CHECK against prevResult, malformed input answered
 * with the spec's error object and nothing left behind (no veth, no IPAM address, no DNS record,
 * no record), delegated IPAM (host-local), chaining with the reference portmap and bandwidth
 * plugins (a real TCP connection through the port mapping from another host), GC of attachments
 * the runtime no longer lists, and GC at start-up of a sandbox deleted while the router was down.
 * Every call goes through the native shim (dist/bin/loom-cni -> the router's POST /cni/exec); the
 * calls the router leaves to the Node plugin (delegated IPAM, another `api`, router down) go
 * through its fallback, dist/bin/loom-cni-node.
 * Needs root, nft, nsenter, /usr/lib/cni (skips otherwise).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { labSkipReason, withLab } from '../helpers/lab.js';
import { cniCall, conflistAdd, conflistRun, LOOM_CNI, REFERENCE_PLUGINS, type Conflist, type Sandbox } from '../helpers/cni-runtime.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { systemRunner } from '../../src/os/runner.js';
import { hostVethOf } from '../../src/cni/ids.js';

const missingPlugins = ['portmap', 'bandwidth', 'host-local'].filter((p) => !existsSync(join(REFERENCE_PLUGINS, p)));
const skip = labSkipReason() ?? (missingPlugins.length > 0 ? `missing reference CNI plugins ${missingPlugins.join(', ')} (apt-get install -y containernetworking-plugins)` : false);
const NET = 'loomtest';
const VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;

async function api(lab: Lab, h: LabHost, path: string): Promise<unknown> {
  const out = await lab.exec(h, process.execPath, ['-e', `fetch('http://127.0.0.1:6784${path}').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  return JSON.parse(out.stdout) as unknown;
}

/** A sandbox: a lab-prefixed netns (the lab removes it at the end, also on failure). */
async function sandbox(lab: Lab, tag: string, adopt = true): Promise<Sandbox> {
  const name = `${lab.prefix}-${tag}`;
  // From the test's own mount namespace: a netns added under `ip netns exec` would stay private to it.
  await systemRunner.run('ip', ['netns', 'add', name]);
  if (adopt) lab.adoptNetns(name);
  return { containerId: `${lab.prefix}${tag}0123456789abcdef`, netns: `/run/netns/${name}`, ifname: 'eth0' };
}

/** Several API answers with one process start (each costs ~0.3 s on a busy machine). */
async function apis(lab: Lab, h: LabHost, paths: string[]): Promise<unknown[]> {
  const script = `Promise.all(${JSON.stringify(paths)}.map(p=>fetch('http://127.0.0.1:6784'+p).then(r=>r.json()))).then(a=>process.stdout.write(JSON.stringify(a)))`;
  return JSON.parse((await lab.exec(h, process.execPath, ['-e', script])).stdout) as unknown[];
}

/** What a sandbox left on a host: its veth, its IPAM address, its DNS name, the router's record. */
async function leftovers(lab: Lab, h: LabHost, s: Sandbox, podName?: string): Promise<string[]> {
  const out: string[] = [];
  const veth = await lab.exec(h, 'ip', ['-o', 'link', 'show', 'dev', hostVethOf(s)], { allowFailure: true });
  if (veth.code === 0) out.push(`veth: ${veth.stdout.trim()}`);
  const [lookup, records, list] = (await apis(lab, h, [`/ipam/lookup?containerId=${encodeURIComponent(`cni:${s.containerId}:${s.ifname}`)}`, '/dns/records', '/cni/attachments'])) as [
    { cidrs?: string[] },
    unknown,
    { attachments: Array<{ containerId: string }> },
  ];
  const none = JSON.stringify(lookup).includes('ERR_NOT_FOUND');
  assert.ok(none || Array.isArray(lookup.cidrs), `IPAM lookup answered ${JSON.stringify(lookup)}`);
  if ((lookup.cidrs ?? []).length > 0) out.push(`ipam: ${(lookup.cidrs ?? []).join(',')}`);
  if (podName !== undefined && JSON.stringify(records).includes(`"${podName}`)) out.push(`dns: ${podName}`);
  if (list.attachments.some((a) => a.containerId === s.containerId)) out.push('router record');
  return out;
}

async function hostAddress(cli: LoomCli, h: LabHost): Promise<string> {
  return pollUntil(
    async () => {
      const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: { cidr: string | null; dns: boolean } };
      const ha = report['host-address'];
      return ha?.cidr && ha.dns ? ha.cidr.split('/')[0] : undefined;
    },
    { what: 'the host address serving DNS', timeoutMs: 30_000, intervalMs: 200 },
  );
}

function conf(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: version, name: NET, type: 'loom-cni', ...extra };
}

test('loom-cni: every operation and version, malformed input, delegated IPAM, chaining, GC (real router in a lab)', { skip, timeout: 240_000 }, async (t: TestContext) => {
  await withLab(t, { hosts: 2 }, async (lab, cli) => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    await cli.launch(h1);
    const gateway = await hostAddress(cli, h1);

    await t.test('VERSION answers every declared version', async () => {
      for (const v of VERSIONS) {
        const r = await cniCall(lab, h1, { command: 'VERSION', stdin: { cniVersion: v } });
        assert.equal(r.code, 0);
        assert.deepEqual(r.json, { cniVersion: v, supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
      }
      const empty = await cniCall(lab, h1, { command: 'VERSION', stdin: '' });
      assert.equal(empty.code, 0);
      // The shim's fast path is live on a real router: POST /cni/exec runs the call in the router.
      // On the router's local socket: the TCP API refuses every POST.
      const script = `const b=JSON.stringify({env:{CNI_COMMAND:'VERSION'},stdin:''});const r=require('node:http').request({socketPath:'\\0loom/api',method:'POST',path:'/cni/exec',headers:{'content-type':'application/json','content-length':b.length}},(res)=>{let t='';res.on('data',(c)=>(t+=c));res.on('end',()=>process.stdout.write(res.statusCode+' '+t))});r.end(b)`;
      const exec = (await lab.exec(h1, process.execPath, ['-e', script])).stdout;
      assert.equal(exec, '200 exit 0\n{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}\n');
    });

    for (const v of VERSIONS) {
      await t.test(`ADD, CHECK, DEL (cniVersion ${v})`, async () => {
        const s = await sandbox(lab, `v${v.replace(/\./g, '')}`);
        const pod = `pod${v.replace(/\./g, '')}`;
        const add = await cniCall(lab, h1, { command: 'ADD', ...s, args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}`, stdin: conf(v) });
        assert.equal(add.code, 0, add.stdout);
        const result = add.json as { cniVersion: string; interfaces: Array<{ name: string; sandbox?: string; mac?: string }>; ips: Array<{ address: string; gateway?: string; interface: number; version?: string }>; dns: { nameservers: string[]; search: string[] }; routes: Array<{ dst: string }> };
        assert.equal(result.cniVersion, v);
        assert.equal(result.interfaces.length, 2);
        assert.match(result.interfaces[0]!.name, /^vlc[0-9a-f]{12}$/);
        assert.deepEqual({ name: result.interfaces[1]!.name, sandbox: result.interfaces[1]!.sandbox }, { name: 'eth0', sandbox: s.netns });
        const ip = result.ips[0]!;
        assert.match(ip.address, /^10\.(3[2-9]|4[0-7])\.\d+\.\d+\/12$/);
        assert.equal(ip.interface, 1);
        assert.equal(ip.gateway, gateway);
        assert.equal(ip.version, v === '0.4.0' ? '4' : undefined);
        assert.deepEqual(result.dns, { nameservers: [gateway], search: ['loom.local'] });
        assert.deepEqual(result.routes, [{ dst: '0.0.0.0/0', gw: gateway }]);
        // The sandbox is really plugged in: its address, and the host's address answers.
        const inside = (await systemRunner.run('ip', ['-n', s.netns.split('/').pop()!, '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
        assert.ok(inside.includes(ip.address), inside);
        const ping = await systemRunner.run('ip', ['netns', 'exec', s.netns.split('/').pop()!, 'ping', '-c1', '-W2', gateway], { allowFailure: true });
        assert.equal(ping.code, 0, ping.stdout);
        const looked = (await api(lab, h1, `/dns/lookup?name=${pod}.loom.local`)) as { addresses: string[] };
        assert.deepEqual(looked.addresses, [ip.address.split('/')[0]]);

        // ADD again (no DEL between): the same result, nothing doubled.
        const again = await cniCall(lab, h1, { command: 'ADD', ...s, args: `K8S_POD_NAME=${pod}`, stdin: conf(v) });
        assert.equal(again.code, 0, again.stdout);
        assert.deepEqual((again.json as typeof result).ips, result.ips);

        const check = await cniCall(lab, h1, { command: 'CHECK', ...s, stdin: conf(v, { prevResult: result }) });
        assert.equal(check.code, 0, check.stdout);
        const wrong = await cniCall(lab, h1, { command: 'CHECK', ...s, stdin: conf(v, { prevResult: { ...result, ips: [{ ...ip, address: '10.32.99.99/12' }] } }) });
        assert.notEqual(wrong.code, 0);
        assert.equal(typeof (wrong.json as { code: number }).code, 'number');

        const gcStatus = await cniCall(lab, h1, { command: 'STATUS', stdin: conf(v) });
        if (v === '0.4.0') {
          assert.equal(gcStatus.code, 1);
          assert.equal((gcStatus.json as { code: number }).code, 1);
          const gc = await cniCall(lab, h1, { command: 'GC', stdin: conf(v) });
          assert.equal((gc.json as { code: number }).code, 1);
        } else if (v === '1.1.0') assert.equal(gcStatus.code, 0, gcStatus.stdout);

        const del = await cniCall(lab, h1, { command: 'DEL', ...s, stdin: conf(v, { prevResult: result }) });
        assert.equal(del.code, 0, del.stdout);
        assert.equal(del.stdout, '');
        assert.deepEqual(await leftovers(lab, h1, s, pod), []);
        const delAgain = await cniCall(lab, h1, { command: 'DEL', ...s, stdin: conf(v) });
        assert.equal(delAgain.code, 0, delAgain.stdout);
      });
    }

    await t.test('malformed input: the spec error object, and nothing left behind', async () => {
      const s = await sandbox(lab, 'bad');
      const cases: Array<{ what: string; call: Parameters<typeof cniCall>[2]; code: number }> = [
        { what: 'bad JSON', call: { command: 'ADD', ...s, stdin: '{"cniVersion": "1.0.0", "name":' }, code: 6 },
        { what: 'missing name', call: { command: 'ADD', ...s, stdin: { cniVersion: '1.0.0', type: 'loom-cni' } }, code: 7 },
        { what: 'missing cniVersion', call: { command: 'ADD', ...s, stdin: { name: NET, type: 'loom-cni' } }, code: 7 },
        { what: 'unknown version', call: { command: 'ADD', ...s, stdin: conf('9.9.9') }, code: 1 },
        { what: 'unknown command', call: { command: 'FROB', ...s, stdin: conf('1.0.0') }, code: 4 },
        { what: 'no command', call: { command: '', ...s, stdin: conf('1.0.0') }, code: 4 },
        { what: 'missing container id', call: { command: 'ADD', netns: s.netns, ifname: 'eth0', stdin: conf('1.0.0') }, code: 4 },
        { what: 'bad interface name', call: { command: 'ADD', ...s, ifname: 'a/b', stdin: conf('1.0.0') }, code: 4 },
        { what: 'relative netns', call: { command: 'ADD', ...s, netns: 'run/netns/x', stdin: conf('1.0.0') }, code: 4 },
        { what: 'netns that does not exist', call: { command: 'ADD', ...s, netns: `/run/netns/${lab.prefix}-nonexistent`, stdin: conf('1.0.0') }, code: 3 },
        { what: 'CHECK of an unknown container', call: { command: 'CHECK', ...s, stdin: conf('1.0.0') }, code: 3 },
        { what: 'runtimeConfig.ips', call: { command: 'ADD', ...s, stdin: conf('1.0.0', { runtimeConfig: { ips: ['10.32.0.9/12'] } }) }, code: 2 },
        { what: 'IPAM plugin that is not there', call: { command: 'ADD', ...s, stdin: conf('1.0.0', { ipam: { type: 'no-such-ipam' } }) }, code: 7 },
      ];
      for (const c of cases) {
        const r = await cniCall(lab, h1, c.call);
        assert.notEqual(r.code, 0, `${c.what}: exit code`);
        const e = r.json as { cniVersion?: unknown; code?: unknown; msg?: unknown };
        assert.ok(e !== null, `${c.what}: JSON on stdout, got ${r.stdout}`);
        assert.equal(e.code, c.code, `${c.what}: ${r.stdout}`);
        assert.equal(typeof e.msg, 'string');
        assert.equal(typeof e.cniVersion, 'string');
        assert.deepEqual(await leftovers(lab, h1, s), [], c.what);
      }
      const delUnknown = await cniCall(lab, h1, { command: 'DEL', ...s, containerId: 'neverseen', stdin: conf('1.0.0') });
      assert.equal(delUnknown.code, 0, delUnknown.stdout);
      const delNoNetns = await cniCall(lab, h1, { command: 'DEL', containerId: 'neverseen', ifname: 'eth0', stdin: conf('1.0.0') });
      assert.equal(delNoNetns.code, 0, delNoNetns.stdout);
    });

    await t.test('an ADD that fails in the router leaves nothing (the interface name is taken)', async () => {
      const s = await sandbox(lab, 'taken');
      const ns = s.netns.split('/').pop()!;
      await systemRunner.run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
      const r = await cniCall(lab, h1, { command: 'ADD', ...s, args: 'K8S_POD_NAME=taken', stdin: conf('1.0.0') });
      assert.notEqual(r.code, 0);
      assert.equal(typeof (r.json as { code: number }).code, 'number', r.stdout);
      assert.deepEqual(await leftovers(lab, h1, s, 'taken'), []);
    });

    await t.test('delegated IPAM (through the shim\'s Node fallback): host-local chooses the address, DEL gives it back', async () => {
      const s = await sandbox(lab, 'hl');
      const dataDir = join(lab.workDir, 'host-local');
      const ipam = { type: 'host-local', dataDir, ranges: [[{ subnet: '10.99.7.0/24', gateway: '10.99.7.1' }]] };
      const add = await cniCall(lab, h1, { command: 'ADD', ...s, stdin: conf('1.0.0', { ipam }) });
      assert.equal(add.code, 0, add.stdout);
      const ip = (add.json as { ips: Array<{ address: string; gateway?: string }> }).ips[0]!;
      assert.match(ip.address, /^10\.99\.7\.\d+\/24$/);
      assert.equal(ip.gateway, '10.99.7.1');
      assert.ok(existsSync(join(dataDir, NET, ip.address.split('/')[0]!)), 'host-local holds the address');
      const del = await cniCall(lab, h1, { command: 'DEL', ...s, stdin: conf('1.0.0', { ipam }) });
      assert.equal(del.code, 0, del.stdout);
      assert.ok(!existsSync(join(dataDir, NET, ip.address.split('/')[0]!)), 'host-local released the address');
      assert.deepEqual(await leftovers(lab, h1, s), []);
      rmSync(dataDir, { recursive: true, force: true });
    });

    await t.test('the router serves ADD, CHECK and DEL itself (a shim without loom-cni-node beside it), and declines a delegated IPAM', async () => {
      const dir = join(lab.workDir, 'shim-alone');
      mkdirSync(dir, { recursive: true });
      const plugin = join(dir, 'loom-cni');
      copyFileSync(LOOM_CNI, plugin);
      const s = await sandbox(lab, 'alone');
      const add = await cniCall(lab, h1, { command: 'ADD', ...s, stdin: conf('1.0.0'), plugin });
      assert.equal(add.code, 0, add.stdout);
      const check = await cniCall(lab, h1, { command: 'CHECK', ...s, stdin: conf('1.0.0', { prevResult: add.json }), plugin });
      assert.equal(check.code, 0, check.stdout);
      const del = await cniCall(lab, h1, { command: 'DEL', ...s, stdin: conf('1.0.0'), plugin });
      assert.deepEqual([del.code, del.stdout], [0, '']);
      assert.deepEqual(await leftovers(lab, h1, s), []);
      const delegated = await cniCall(lab, h1, { command: 'ADD', ...s, stdin: conf('1.0.0', { ipam: { type: 'host-local', ranges: [[{ subnet: '10.99.8.0/24' }]] } }), plugin });
      assert.deepEqual([delegated.code, delegated.json], [1, { cniVersion: '1.0.0', code: 11, msg: 'Loom router not reachable and loom-cni-node missing' }]);
      assert.deepEqual(await leftovers(lab, h1, s), []);
    });

    await t.test('a conf naming another router: the shim falls back to the Node plugin, which reports it unreachable (code 11)', async () => {
      const s = await sandbox(lab, 'otherapi');
      const r = await cniCall(lab, h1, { command: 'ADD', ...s, stdin: conf('1.0.0', { socket: 'loom/nobody-here' }) });
      assert.equal(r.code, 1, r.stdout);
      assert.deepEqual([(r.json as { code: number }).code, (r.json as { msg: string }).msg], [11, 'Loom router not reachable at @loom/nobody-here'], r.stdout);
      assert.deepEqual(await leftovers(lab, h1, s), []);
    });

    await t.test('chaining: loom-cni + portmap + bandwidth, ADD and DEL through the list', async () => {
      const s = await sandbox(lab, 'chain');
      const ns = s.netns.split('/').pop()!;
      const list: Conflist = {
        cniVersion: '1.0.0',
        name: NET,
        plugins: [
          { type: 'loom-cni' },
          { type: 'portmap', capabilities: { portMappings: true }, snat: true },
          { type: 'bandwidth', capabilities: { bandwidth: true } },
        ],
      };
      const chained: Sandbox = { ...s, runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }], bandwidth: { ingressRate: 100_000_000, ingressBurst: 1_000_000 } } };
      const add = await conflistAdd(lab, h1, list, chained);
      assert.equal(add.code, 0, add.stdout);
      const result = add.json as { interfaces: Array<{ name: string }>; ips: Array<{ address: string }> };
      const hostVeth = result.interfaces[0]!.name;
      const qdisc = (await lab.exec(h1, 'tc', ['qdisc', 'show', 'dev', hostVeth])).stdout;
      assert.match(qdisc, /tbf|ingress/, `bandwidth shaped ${hostVeth}: ${qdisc}`);
      // A server in the sandbox, reached through h1's port mapping on h1's address: from h1 itself (OUTPUT DNAT) and from h2 (PREROUTING DNAT, forwarded).
      const server = lab.start(h1, 'ip', ['netns', 'exec', ns, process.execPath, '-e', "require('net').createServer(c=>c.end('loom-cni portmap\\n')).listen(8080)"]);
      try {
        for (const from of [h1, h2]) {
        if (from === h2) await lab.exec(h1, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']); // h1 forwards into the sandbox (its own namespace)
        const got = await pollUntil(
          async () => {
            const r = await lab.exec(from, process.execPath, ['-e', `const s=require('net').connect(18080,'${h1.address}');let d='';s.on('data',x=>d+=x);s.on('end',()=>{process.stdout.write(d)});s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),2000).unref()`], { allowFailure: true });
            return r.code === 0 && r.stdout.includes('portmap') ? r.stdout : undefined;
          },
          { what: 'a TCP answer through the port mapping', timeoutMs: 15_000, intervalMs: 300 },
        ).catch(async (err: unknown) => {
          const direct = await lab.exec(h1, process.execPath, ['-e', `const s=require('net').connect(8080,'${result.ips[0]!.address.split('/')[0]}');s.on('data',x=>process.stdout.write(x));s.on('error',e=>{console.log(e.message);process.exit(1)})`], { allowFailure: true, timeoutMs: 5000 });
          const nat = await lab.exec(h1, 'iptables-save', ['-t', 'nat'], { allowFailure: true });
          const fwd = await lab.exec(h1, 'nft', ['list', 'ruleset'], { allowFailure: true });
          throw new Error(`direct from h1: ${direct.code} ${direct.stdout}\nnat: ${nat.stdout}\nnft: ${fwd.stdout.slice(0, 3000)}`, { cause: err });
        });
        assert.match(got, /loom-cni portmap/, `through the mapping from ${from.name}`);
        }
      } finally {
        await lab.stopProcess(server.pid);
      }
      const check = await conflistRun(lab, h1, 'CHECK', list, chained, add.json);
      // portmap 1.1.1's own CHECK looks for an IPv6 chain it never made for an IPv4-only sandbox ("could not
      // check ipv6 dnat", code 999): a reference-plugin limitation, so only loom-cni's and bandwidth's CHECK are held here.
      assert.deepEqual([check[0]!.code, check[2]!.code], [0, 0], check.map((a) => a.stdout).join(' '));
      const del = await conflistRun(lab, h1, 'DEL', list, chained, add.json);
      assert.deepEqual(del.map((a) => a.code), [0, 0, 0], del.map((a) => a.stdout).join(' '));
      assert.deepEqual(await leftovers(lab, h1, s), []);
      const nat = await lab.exec(h1, 'iptables-save', ['-t', 'nat'], { allowFailure: true });
      assert.ok(!nat.stdout.includes('18080'), 'portmap removed its rules');
    });

    await t.test('GC releases what the runtime no longer lists; STATUS answers', async () => {
      const keep = await sandbox(lab, 'gckeep');
      const drop = await sandbox(lab, 'gcdrop');
      for (const s of [keep, drop]) assert.equal((await cniCall(lab, h1, { command: 'ADD', ...s, stdin: conf('1.1.0') })).code, 0);
      const gc = await cniCall(lab, h1, { command: 'GC', stdin: conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }] }) });
      assert.equal(gc.code, 0, gc.stdout);
      assert.deepEqual(await leftovers(lab, h1, drop), []);
      assert.ok((await leftovers(lab, h1, keep)).length > 0, 'the listed attachment stays');
      assert.equal((await cniCall(lab, h1, { command: 'DEL', ...keep, stdin: conf('1.1.0') })).code, 0);
    });

    await t.test('a sandbox deleted while the router is down is released when it comes back; STATUS is 50 meanwhile', async () => {
      // Not adopted by the lab: the test deletes it itself (and again at the end, in case it failed before).
      const s = await sandbox(lab, 'gone', false);
      t.after(() => systemRunner.run('ip', ['netns', 'del', s.netns.split('/').pop()!], { allowFailure: true }));
      const add = await cniCall(lab, h1, { command: 'ADD', ...s, args: 'K8S_POD_NAME=gone', stdin: conf('1.1.0') });
      assert.equal(add.code, 0, add.stdout);
      const cidr = (add.json as { ips: Array<{ address: string }> }).ips[0]!.address;
      await cli.stop(h1);
      const down = await cniCall(lab, h1, { command: 'STATUS', stdin: conf('1.1.0') });
      assert.equal((down.json as { code: number }).code, 50, down.stdout);
      // The shim finds no router and runs the Node plugin: the spec's error object, code 11 (try again later).
      for (const command of ['ADD', 'DEL']) {
        const r = await cniCall(lab, h1, { command, ...s, stdin: conf('1.1.0') });
        assert.equal(r.code, 1, `${command} with the router down: ${r.stdout}`);
        const e = r.json as { cniVersion?: unknown; code?: unknown; msg?: unknown };
        assert.deepEqual([e.cniVersion, e.code, e.msg], ['1.1.0', 11, 'Loom router not reachable at @loom/api'], r.stdout);
      }
      await systemRunner.run('ip', ['netns', 'del', s.netns.split('/').pop()!]);
      await cli.launch(h1);
      let left: string[] = [];
      await pollUntil(async () => ((left = await leftovers(lab, h1, s, 'gone')).length === 0 ? true : undefined), { what: 'the gone sandbox released', timeoutMs: 15_000, intervalMs: 200 }).catch((err: unknown) => {
        throw new Error(`left after the restart: ${left.join('; ')}`, { cause: err });
      });
      // The released address goes back to IPAM: a new ADD may get it after the grace period, never a double.
      assert.match(cidr, /^10\./);
    });
  });
});
