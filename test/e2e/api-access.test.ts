/**
 * Who can reach a router's control API (docs/SECURITY.md), in real namespaces: routers in lab
 * hosts h1 and h2, peers on one underlay. Proves:
 * (1) root on h1 drives its router with the CLI through the local socket (`loom run`, `loom rm`);
 * (2) a container on h1 reaches neither the socket (another network namespace) nor TCP 6784: not
 *     on its own loopback, not on its host's addresses (Loom bridge, underlay), not on h2's
 *     (across the overlay to h2's bridge address, or h2's underlay address);
 * (3) h2 gets nothing on TCP 6784 of h1's underlay address, and its `@loom/api` is its own
 *     router's (each namespace has its own socket);
 * (4) an unprivileged user on h1 is refused on the socket (403 ERR_FORBIDDEN, the CLI says so),
 *     while TCP GET /status answers and TCP POST gets 403 ERR_FORBIDDEN.
 * Needs root, nft, unshare, nsenter, setpriv (skips otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipFor, withLab, killPids } from '../helpers/lab.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { HostAddressStatus } from '../../src/daemon/host-address.js';
import type { LabHost } from '../../src/lab/index.js';

const skip = labSkipFor(['unshare', 'nsenter', 'setpriv']);

const containerPids = new Set<number>();
const killContainers = (): void => killPids(containerPids);

/** One HTTP call a probe makes: on the abstract socket `socket`, or TCP `host`:6784. */
type Probe = { socket: string; method: string; path: string } | { host: string; method: string; path: string };
/** What came back: the status and error code, or the connection's error code (ECONNREFUSED...). */
interface ProbeResult {
  status?: number;
  code?: string;
  error?: string;
}

/**
 * A tiny client run where the probe must come from (`node -e`, argv = the probes as JSON): plain
 * node:http, 2 s per call, so it needs nothing but the node binary.
 */
const PROBE_SCRIPT = `
const http = require('node:http');
const one = (p) => new Promise((resolve) => {
  const at = p.socket !== undefined ? { socketPath: '\\0' + p.socket } : { host: p.host, port: 6784 };
  const body = p.method === 'GET' ? undefined : '{"peers":["10.9.9.9"]}';
  const req = http.request({ ...at, method: p.method, path: p.path, agent: false, timeout: 2000,
    headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
    let text = '';
    res.on('data', (c) => (text += c));
    res.on('end', () => { let code; try { code = JSON.parse(text).error?.code; } catch {} resolve({ status: res.statusCode, code }); });
    res.on('error', (e) => resolve({ error: e.code || e.message }));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => resolve({ error: e.code || e.message }));
  req.end(body);
});
(async () => { const out = []; for (const p of JSON.parse(process.argv[1])) out.push(await one(p)); process.stdout.write(JSON.stringify(out)); })();
`;

function parseProbes(stdout: string): ProbeResult[] {
  return JSON.parse(stdout) as ProbeResult[];
}

test('the control API: the whole of it for root on the host only; read-only TCP on loopback', { skip, timeout: 120_000 }, async (t) => {
  process.on('exit', killContainers);
  try {
    await withLab(t, { hosts: 2, subnet: '192.168.114.0/24' }, async (lab, cli) => {
      const [h1, h2] = lab.hosts as [LabHost, LabHost];
      const r1 = await cli.launch(h1, { peers: [h2.address] });
      const r2 = await cli.launch(h2, { peers: [h1.address] });
      const bridgeOf2 = await pollUntil(async () => hostAddressOf(cli, h2), { what: 'h2 address on its Loom bridge', timeoutMs: 30_000, intervalMs: 300 });

      // (1) Root, through the socket: a container is made and removed with the CLI.
      const id = (await cli.run(h1, ['run', '--name', 'c1', 'net:default', '--', 'sleep', '600'])).stdout.trim();
      const rows = await cli.containers(h1);
      for (const c of rows) containerPids.add(c.pid);
      assert.ok(rows.some((c) => c.id === id), 'loom run made the container');

      // (2) From inside it: no socket, nothing on TCP 6784 (own loopback, the host's bridge address).
      const route = (await cli.run(h1, ['exec', 'c1', '--', 'ip', '-4', 'route', 'show', 'default'])).stdout;
      const gateway = /default via (\d+\.\d+\.\d+\.\d+)/.exec(route)?.[1];
      assert.ok(gateway, `the container has a default route through the host: ${route}`);
      // First the overlay to h2 must carry packets (both routers programmed, the new container's
      // MAC known): until then a probe there times out instead of being refused. A probe that
      // connects fails at once: the API would be reachable.
      await pollUntil(
        async () => {
          const [r] = parseProbes((await cli.run(h1, ['exec', 'c1', '--', process.execPath, '-e', PROBE_SCRIPT, JSON.stringify([{ host: bridgeOf2, method: 'GET', path: '/status' }] satisfies Probe[])], { timeoutMs: 30_000 })).stdout);
          if (r?.status !== undefined) assert.fail(`a container reached h2's API across the overlay: ${JSON.stringify(r)}`);
          return r?.error === 'ECONNREFUSED' ? true : undefined;
        },
        { what: 'the overlay from c1 to h2 to carry packets (a refused probe)', timeoutMs: 30_000, intervalMs: 300 },
      );
      const fromContainer = parseProbes(
        (await cli.run(h1, ['exec', 'c1', '--', process.execPath, '-e', PROBE_SCRIPT, JSON.stringify([
          { socket: 'loom/api', method: 'GET', path: '/status' },
          { socket: 'loom/api', method: 'POST', path: '/connect' },
          { host: '127.0.0.1', method: 'GET', path: '/status' },
          { host: gateway, method: 'GET', path: '/status' },
          { host: gateway, method: 'POST', path: '/connect' },
          { host: h1.address, method: 'GET', path: '/status' },
          { host: bridgeOf2, method: 'GET', path: '/status' },
          { host: bridgeOf2, method: 'POST', path: '/connect' },
          { host: h2.address, method: 'GET', path: '/status' },
        ] satisfies Probe[])], { timeoutMs: 30_000 })).stdout,
      );
      assert.equal(fromContainer.length, 9);
      // Refused, not timed out: the packets arrive (the overlay to h2 works) and nothing listens there.
      for (const [i, r] of fromContainer.entries()) assert.deepEqual(r, { error: 'ECONNREFUSED' }, `container probe ${i}`);

      // (3) From another host: TCP 6784 of h1's underlay address is refused; h2's socket is h2's router.
      const fromOtherHost = parseProbes(
        (await lab.exec(h2, process.execPath, ['-e', PROBE_SCRIPT, JSON.stringify([
          { host: h1.address, method: 'GET', path: '/status' },
          { host: h1.address, method: 'POST', path: '/connect' },
        ] satisfies Probe[])], { timeoutMs: 20_000 })).stdout,
      );
      assert.deepEqual(fromOtherHost, [{ error: 'ECONNREFUSED' }, { error: 'ECONNREFUSED' }]);
      assert.equal((await cli.report(h2)).router.name, r2.name, 'the CLI on h2 reaches h2\'s router');
      assert.notEqual(r1.name, r2.name);

      // (4) An unprivileged user on h1: refused on the socket; TCP reads answer, TCP changes are 403.
      const asNobody = ['--reuid', '65534', '--regid', '65534', '--clear-groups'];
      const fromNobody = parseProbes(
        (await lab.exec(h1, 'setpriv', [...asNobody, process.execPath, '-e', PROBE_SCRIPT, JSON.stringify([
          { socket: 'loom/api', method: 'GET', path: '/status' },
          { socket: 'loom/api', method: 'POST', path: '/connect' },
          { host: '127.0.0.1', method: 'GET', path: '/status' },
          { host: '127.0.0.1', method: 'POST', path: '/connect' },
          { host: '127.0.0.1', method: 'DELETE', path: `/containers/${id}` },
        ] satisfies Probe[])], { timeoutMs: 20_000 })).stdout,
      );
      assert.deepEqual(fromNobody, [
        { status: 403, code: 'ERR_FORBIDDEN' },
        { status: 403, code: 'ERR_FORBIDDEN' },
        { status: 200 },
        { status: 403, code: 'ERR_FORBIDDEN' },
        { status: 403, code: 'ERR_FORBIDDEN' },
      ]);
      const cliAsNobody = await lab.exec(h1, 'setpriv', [...asNobody, cli.bin, 'rm', 'c1'], { allowFailure: true, timeoutMs: 20_000 });
      assert.equal(cliAsNobody.code, 1);
      assert.match(cliAsNobody.stderr, /^loom: ERR_FORBIDDEN: /m);
      const statusAsNobody = await lab.exec(h1, 'setpriv', [...asNobody, cli.bin, 'status', '--http-addr', '127.0.0.1:6784'], { allowFailure: true, timeoutMs: 20_000 });
      assert.equal(statusAsNobody.code, 0, `loom status over the read-only TCP API works for anyone on the host: ${statusAsNobody.stderr}`);
      assert.ok((await cli.containers(h1)).some((c) => c.id === id), 'nothing the refused calls asked for happened');
      assert.match(cli.logTail(h1, 200), /refused a local API connection/);

      // (1, end) Root removes the container through the socket.
      await cli.run(h1, ['rm', 'c1']);
      assert.deepEqual(await cli.containers(h1), []);
      await assertRouterStillServes(cli, h1);
    });
  } finally {
    killContainers();
    process.off('exit', killContainers);
  }
});

/** The host's address on its Loom bridge, once it has one (undefined before). */
async function hostAddressOf(cli: LoomCli, h: LabHost): Promise<string | undefined> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { 'host-address'?: HostAddressStatus };
  return report['host-address']?.cidr?.split('/')[0];
}

async function assertRouterStillServes(cli: LoomCli, h: LabHost): Promise<void> {
  assert.match(await cli.status(h), /Name: /);
}
