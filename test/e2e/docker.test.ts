/**
 * Docker end to end, against the real Docker Engine 20.10: two lab hosts, each with a router
 * (`bin/loom launch`) and a dockerd of its own (test/helpers/dockerd.ts: the host's network
 * namespace, a private mount namespace with its own plugin dir). Proves, as a Docker user drives
 * it: `docker network create -d loom --ipam-driver loom`, `docker run --net` on both hosts, the
 * containers reach each other and a `loom run` container across hosts, names resolve across
 * hosts without `--dns` (the router points the container's resolv.conf at the host's Loom DNS;
 * one given `--dns` is left alone), `--ip`/`--subnet`/`--ip-range` honoured and an outside
 * subnet refused, `docker rm -f` releases address and name, `docker network rm` cleans up;
 * `loom attach` of a container on Docker's own bridge, kept through `docker restart`, released by
 * `docker rm`; a router restart keeps addresses and names. Needs root, docker.io, busybox-static.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipReason, withLab } from '../helpers/lab.js';
import { dockerSkipReason, IMAGE, TestDockerd } from '../helpers/dockerd.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { LabHost } from '../../src/lab/index.js';
import type { HostAddressStatus } from '../../src/daemon/host-address.js';
import type { DockerStatus } from '../../src/docker/api.js';

const skip = labSkipReason() ?? dockerSkipReason() ?? false;
const RANGE_RE = /^10\.(3[2-9]|4[0-7])\.\d+\.\d+$/;

interface Report {
  'host-address'?: HostAddressStatus;
  docker?: DockerStatus;
}

async function report(cli: LoomCli, h: LabHost): Promise<Report> {
  return JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as Report;
}

/** The host's DNS address once the host address serves DNS and Docker is connected. */
async function ready(cli: LoomCli, h: LabHost): Promise<string> {
  return pollUntil(
    async () => {
      const r = await report(cli, h);
      const cidr = r['host-address']?.cidr;
      return r['host-address']?.dns && cidr && r.docker?.state === 'connected' ? cidr.split('/')[0] : undefined;
    },
    { what: `${h.name}: host address with DNS and Docker connected`, timeoutMs: 40_000, intervalMs: 200 },
  );
}

async function ip(d: TestDockerd, name: string, net = 'mynet'): Promise<string> {
  return (await d.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name])).stdout.trim();
}

async function pings(d: TestDockerd, name: string, target: string): Promise<boolean> {
  const r = await d.docker(['exec', name, 'ping', '-c', '1', '-W', '2', target], { allowFailure: true, timeoutMs: 15_000 });
  return r.code === 0;
}

async function pingsSoon(d: TestDockerd, name: string, target: string, what: string): Promise<void> {
  await pollUntil(async () => ((await pings(d, name, target)) ? true : undefined), { what, timeoutMs: 20_000, intervalMs: 300 });
}

async function resolves(d: TestDockerd, name: string, query: string): Promise<string | null> {
  const r = await d.docker(['exec', name, 'nslookup', query], { allowFailure: true, timeoutMs: 15_000 });
  const m = /Name:\s+\S+\s+Address(?: 1)?:\s+(\d+\.\d+\.\d+\.\d+)/.exec(r.stdout);
  return r.code === 0 && m ? m[1]! : null;
}

test('docker: a Loom network across two hosts, names, --ip/--subnet/--ip-range, rm and network rm', { skip, timeout: 150_000 }, async (t) => {
  await withLab(t, { hosts: 2 }, async (lab, cli) => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    const d1 = new TestDockerd(lab, h1);
    const d2 = new TestDockerd(lab, h2);
    try {
      await Promise.all([d1.start(), d2.start()]);
      await Promise.all([d1.importImage(), d2.importImage()]);
      await cli.launch(h1, { peers: [h2.address], args: d1.loomArgs });
      await cli.launch(h2, { peers: [h1.address], args: d2.loomArgs });
      const [dns1, dns2] = await Promise.all([ready(cli, h1), ready(cli, h2)]);

      for (const d of [d1, d2]) await d.docker(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', 'mynet']);
      // No --dns/--dns-search: the router points each container's resolv.conf at its host's Loom DNS.
      await d1.docker(['run', '-d', '--net', 'mynet', '--name', 'web1', IMAGE, 'sleep', '3600']);
      await d2.docker(['run', '-d', '--net', 'mynet', '--name', 'web2', IMAGE, 'sleep', '3600']);
      for (const [d, name, addr] of [[d1, 'web1', dns1], [d2, 'web2', dns2]] as const) {
        let conf = '';
        await pollUntil(async () => ((conf = (await d.docker(['exec', name, 'cat', '/etc/resolv.conf'])).stdout).includes(`nameserver ${addr}\n`) ? true : undefined), {
          what: `${name}'s resolv.conf at its host's Loom DNS`,
          timeoutMs: 10_000,
          intervalMs: 200,
        }).catch((err: unknown) => {
          throw new Error(`${String(err)}; resolv.conf: ${JSON.stringify(conf)}`);
        });
        assert.match(conf, /^search loom\.local$/m);
        assert.match(conf, /^options ndots:1$/m);
        assert.doesNotMatch(conf, /127\.0\.0\.11/, "Docker's embedded DNS is not in the way");
      }
      const ip1 = await ip(d1, 'web1');
      const ip2 = await ip(d2, 'web2');
      assert.match(ip1, RANGE_RE, 'web1 has an address from Loom IPAM');
      assert.match(ip2, RANGE_RE, 'web2 has an address from Loom IPAM');
      assert.notEqual(ip1, ip2);
      const ifaces = (await d1.docker(['exec', 'web1', 'ip', '-o', 'link'])).stdout;
      assert.match(ifaces, /ethwe0/, 'the container has its Loom interface');

      // Across hosts, and to a `loom run` container.
      await pingsSoon(d1, 'web1', ip2, 'web1 -> web2 across hosts');
      await pingsSoon(d2, 'web2', ip1, 'web2 -> web1 across hosts');
      const lr = (await cli.run(h2, ['run', '--name', 'lr', 'net:default', '--', 'sleep', '3600'])).stdout.trim();
      const lrRow = (await cli.containers(h2)).find((c) => c.id === lr);
      const lrIp = lrRow?.cidrs[0]?.split('/')[0] ?? '';
      assert.match(lrIp, RANGE_RE);
      await pingsSoon(d1, 'web1', lrIp, 'web1 -> loom run container on h2');

      // Names across hosts through Loom DNS.
      await pollUntil(async () => ((await resolves(d1, 'web1', 'web2.loom.local')) === ip2 ? true : undefined), { what: 'web2.loom.local from web1', timeoutMs: 20_000, intervalMs: 300 });
      assert.equal(await resolves(d2, 'web2', 'web1.loom.local'), ip1);
      assert.equal(await resolves(d1, 'web1', 'lr.loom.local'), lrIp);
      await pingsSoon(d1, 'web1', 'web2', 'web1 pings web2 by its short name (search loom.local)');

      // --subnet/--ip-range/--ip inside the range (in h1's part of the ring: a static address must
      // be in the space of the peer that claims it, as in Weave); a subnet outside is refused clearly.
      const ab = ip1.split('.').slice(0, 2).join('.');
      const fixedIp = `${ab}.200.7`;
      await d1.docker(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', `${ab}.200.0/24`, '--ip-range', `${ab}.200.128/25`, 'subnet']);
      await d1.docker(['run', '-d', '--net', 'subnet', '--name', 'ranged', IMAGE, 'sleep', '3600']);
      const ranged = await ip(d1, 'ranged', 'subnet');
      assert.match(ranged, new RegExp(`^${ab.replace('.', '\\.')}\\.200\\.(12[89]|1[3-9]\\d|2\\d\\d)$`), `an address from --ip-range (got ${ranged})`);
      await d1.docker(['run', '-d', '--net', 'subnet', '--ip', fixedIp, '--name', 'fixed', IMAGE, 'sleep', '3600']);
      assert.equal(await ip(d1, 'fixed', 'subnet'), fixedIp);
      await pingsSoon(d1, 'ranged', fixedIp, 'ranged -> fixed on the --subnet network');
      const outside = await d1.docker(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '192.168.200.0/24', 'outside'], { allowFailure: true });
      assert.notEqual(outside.code, 0);
      assert.match(outside.stderr, /not inside Loom's range 10\.32\.0\.0\/12/);
      const noIpam = await d1.docker(['network', 'create', '-d', 'loom', 'noipam'], { allowFailure: true });
      assert.notEqual(noIpam.code, 0);
      assert.match(noIpam.stderr, /--ipam-driver loom/);
      const taken = await d1.docker(['run', '-d', '--net', 'subnet', '--ip', fixedIp, '--name', 'twin', IMAGE, 'sleep', '3600'], { allowFailure: true });
      assert.notEqual(taken.code, 0, 'an address in use is refused');
      await d1.docker(['rm', '-f', 'twin'], { allowFailure: true });

      // docker rm -f releases the name (everywhere) and the address.
      await d2.docker(['rm', '-f', 'web2']);
      await pollUntil(async () => ((await resolves(d1, 'web1', 'web2.loom.local')) === null ? true : undefined), { what: 'web2.loom.local gone on h1', timeoutMs: 20_000, intervalMs: 300 });
      const ep2 = (await report(cli, h2)).docker;
      assert.equal(ep2?.endpoints, 0, 'no endpoint left on h2');
      await d1.docker(['rm', '-f', 'fixed']);
      await d1.docker(['run', '-d', '--net', 'subnet', '--ip', fixedIp, '--name', 'fixed2', IMAGE, 'sleep', '3600']);
      assert.equal(await ip(d1, 'fixed2', 'subnet'), fixedIp, "a removed container's address can be taken again");

      // docker network rm cleans up.
      await d2.docker(['network', 'rm', 'mynet']);
      const after = (await report(cli, h2)).docker;
      assert.equal(after?.networks, 0);
      assert.equal(after?.endpoints, 0);
      const links = (await lab.exec(h2, 'ip', ['-o', 'link', 'show'])).stdout;
      assert.doesNotMatch(links, /vld[0-9a-f]/, 'no endpoint veth left on h2');
    } finally {
      await Promise.all([d1.stop(), d2.stop()]);
    }
  });
});

/** The A records of `name` from `server`, asked from the host's namespace (Node's resolver; '' for none). */
async function dig(cli: LoomCli, h: LabHost, server: string, name: string): Promise<string> {
  const script = `const r=new (require('node:dns').promises.Resolver)({timeout:3000,tries:1});r.setServers([process.argv[1]]);r.resolve4(process.argv[2]).then(a=>console.log(a.join(' ')),()=>console.log(''))`;
  const r = await cli.lab.exec(h, process.execPath, ['-e', script, server, name], { allowFailure: true, timeoutMs: 10_000 });
  return r.stdout.trim();
}

test('docker: loom attach through docker restart, router restart keeps addresses and names, Docker going away and back', { skip, timeout: 150_000 }, async (t) => {
  await withLab(t, { hosts: 1 }, async (lab, cli) => {
    const [h1] = lab.hosts as [LabHost];
    const d = new TestDockerd(lab, h1);
    try {
      await d.start();
      await d.importImage();
      await cli.launch(h1, { args: d.loomArgs });
      const dns = await ready(cli, h1);
      await d.docker(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', 'mynet']);
      // With --dns/--dns-search the user decides: Docker's resolv.conf (its embedded DNS) stays.
      await d.docker(['run', '-d', '--net', 'mynet', '--name', 'web1', '--dns', dns, '--dns-search', 'loom.local', IMAGE, 'sleep', '3600']);
      const ip1 = await ip(d, 'web1');
      await pollUntil(async () => ((await resolves(d, 'web1', 'web1.loom.local')) === ip1 ? true : undefined), { what: 'web1.loom.local through --dns', timeoutMs: 20_000, intervalMs: 300 });
      const given = (await d.docker(['exec', 'web1', 'cat', '/etc/resolv.conf'])).stdout;
      assert.doesNotMatch(given, /written by Loom/, 'a container given --dns is left alone');
      assert.match(given, /^nameserver 127\.0\.0\.11$/m, "Docker's embedded DNS, forwarding to the --dns server");
      let lastDig = '';
      await pollUntil(async () => ((lastDig = await dig(cli, h1, dns, 'web1.loom.local')) === ip1 ? true : undefined), { what: 'web1.loom.local by dig', timeoutMs: 20_000, intervalMs: 300 }).catch((err: unknown) => {
        throw new Error(`${String(err)}; dig said ${JSON.stringify(lastDig)}`);
      });

      // A container on Docker's own bridge, put on Loom by name.
      await d.docker(['run', '-d', '--name', 'other', IMAGE, 'sleep', '3600']);
      const attached = (await cli.run(h1, ['attach', 'other'])).stdout.trim().split(' ')[0] ?? '';
      const otherIp = attached.split('/')[0] ?? '';
      assert.match(otherIp, RANGE_RE, `loom attach printed an address (${attached})`);
      await pingsSoon(d, 'web1', otherIp, 'web1 -> attached container');
      await pollUntil(async () => ((await resolves(d, 'web1', 'other.loom.local')) === otherIp ? true : undefined), { what: 'other.loom.local', timeoutMs: 15_000, intervalMs: 300 });
      const missing = await cli.run(h1, ['attach', 'no-such-container'], { allowFailure: true });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr + missing.stdout, /ERR_NOT_FOUND.*no-such-container/);

      // docker restart: a new netns; Loom attaches it again with the same address.
      await d.docker(['restart', '-t', '0', 'other']);
      await pollUntil(async () => ((await d.docker(['exec', 'other', 'ip', '-o', '-4', 'addr', 'show', 'ethwe'], { allowFailure: true })).stdout.includes(`${otherIp}/`) ? true : undefined), {
        what: 'other re-attached after docker restart',
        timeoutMs: 20_000,
        intervalMs: 300,
      });
      await pingsSoon(d, 'web1', otherIp, 'web1 -> attached container after docker restart');

      // Router restart: addresses and names survive; new containers get other addresses.
      await cli.stop(h1);
      await cli.launch(h1, { args: d.loomArgs });
      await ready(cli, h1);
      assert.equal(await ip(d, 'web1'), ip1, 'web1 keeps its address');
      await pollUntil(async () => ((await dig(cli, h1, dns, 'web1.loom.local')) === ip1 ? true : undefined), { what: 'web1.loom.local after router restart', timeoutMs: 20_000, intervalMs: 300 });
      await pollUntil(async () => ((await dig(cli, h1, dns, 'other.loom.local')) === otherIp ? true : undefined), { what: 'other.loom.local after router restart', timeoutMs: 20_000, intervalMs: 300 });
      await pingsSoon(d, 'web1', otherIp, 'web1 -> other after router restart');
      await d.docker(['run', '-d', '--net', 'mynet', '--name', 'web3', IMAGE, 'sleep', '3600']);
      const ip3 = await ip(d, 'web3');
      assert.ok(ip3 !== ip1 && ip3 !== otherIp, `no address handed out twice (${ip3})`);
      await pingsSoon(d, 'web3', ip1, 'web3 -> web1');

      // docker rm of the attached container releases its address and name.
      await d.docker(['rm', '-f', 'other']);
      await pollUntil(async () => ((await dig(cli, h1, dns, 'other.loom.local')) === '' ? true : undefined), { what: 'other.loom.local removed', timeoutMs: 20_000, intervalMs: 300 });
      assert.equal((await report(cli, h1)).docker?.attachments, 0);

      // Docker goes away and comes back: the router notices, keeps running, reconnects.
      const routerPid = cli.pid(h1);
      await d.kill();
      await pollUntil(async () => ((await report(cli, h1)).docker?.state !== 'connected' ? true : undefined), { what: 'router notices Docker is gone', timeoutMs: 20_000, intervalMs: 300 });
      await d.start();
      await pollUntil(async () => ((await report(cli, h1)).docker?.state === 'connected' ? true : undefined), { what: 'router reconnects to Docker', timeoutMs: 40_000, intervalMs: 300 });
      assert.equal(cli.pid(h1), routerPid, 'the router did not restart');
      await d.docker(['start', 'web1']);
      await d.docker(['run', '-d', '--net', 'mynet', '--name', 'web4', IMAGE, 'sleep', '3600']);
      await pingsSoon(d, 'web4', await ip(d, 'web1'), 'web4 -> web1 after Docker came back');
      const log = cli.logTail(h1, 400);
      assert.match(log, /docker: not connected; retrying/);
    } finally {
      await d.stop();
    }
  });
});
