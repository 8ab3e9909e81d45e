/**
 * IPAM end to end, as a user drives it: four lab hosts, routers through `bin/loom launch` with
 * the default `--ipalloc-init` (consensus; N = peers given + 1, so h1 (N = 1) proposes the split
 * among the peers it reaches once that set is stable; h2 -> h1 and h3 -> h2 join with N = 2 and
 * take the ring from gossip), containers through `bin/loom run` WITHOUT an address.
 * Proves, on the real daemon, store and data plane:
 *   1. 15 concurrent `loom run` on three hosts get 15 distinct usable addresses of 10.32.0.0/12,
 *      and all 210 ordered container pairs ping;
 *   2. a `kill -9` of a router loses no allocation: its containers keep their addresses and new
 *      ones on the restarted router do not collide;
 *   3. allocations on both sides of a partition do not collide, and every `loom status ipam`
 *      agrees once the mesh heals;
 *   4. `net:CIDR` allocates inside that subnet, and a static address inside the range is claimed
 *      through IPAM: a second container (same host or another peer) with it is ERR_CONFLICT;
 *   5. a peer launched with another range is refused, visibly in `loom status ipam` on both sides.
 * At the end the containers are killed by PID; the routers release their addresses (grace).
 * Needs root, nft, unshare, nsenter, ping (skips otherwise). Everything stays in the lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipFor, withLab, killPids } from '../helpers/lab.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import { type Lab, type LabHost, pidExists } from '../../src/lab/index.js';
import type { IpamStatus } from '../../src/ipam/status.js';
import { cidrContains, cidrEnd, formatAddress, parseAddressInCidr, parseCidr, type Cidr } from '../../src/ipam/cidr.js';

const skip = labSkipFor(['ping', 'unshare', 'nsenter']);
const RANGE = '10.32.0.0/12';
const CONVERGE_MS = 60_000;
/** `loom run` may wait for a donation from another peer (IPAM's allocate timeout is 30 s). */
const RUN_TIMEOUT_MS = 60_000;

/** One container row of `loom ps` (attachment rows, which start with "-", are skipped). */
interface PsRow {
  host: LabHost;
  id: string;
  name: string;
  cidrs: string[];
  pid: number;
  alive: boolean;
}

/** `loom ps` is printed for people; its columns are ID NAME MAC CIDR[,CIDR] PID [(dead)]. */
function parsePs(text: string, host: LabHost): PsRow[] {
  const rows: PsRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 5 || cells[0] === '-') continue;
    const [id, name, , cidrs, pid, dead] = cells as [string, string, string, string, string, string | undefined];
    rows.push({ host, id, name, cidrs: cidrs === '-' ? [] : cidrs.split(','), pid: Number(pid), alive: dead === undefined });
  }
  return rows;
}

/** Addresses held by more than one container, with who holds them. */
function findDuplicates(rows: readonly PsRow[]): string[] {
  const holders = new Map<string, string[]>();
  for (const r of rows) for (const c of r.cidrs) holders.set(c.split('/')[0]!, [...(holders.get(c.split('/')[0]!) ?? []), `${r.host.name}/${r.name}`]);
  return [...holders].filter(([, who]) => who.length > 1).map(([addr, who]) => `${addr}: ${who.join(', ')}`);
}

/** True if `cidr` ("a.b.c.d/n") lies in `range` and is neither the network nor the broadcast address of its subnet or of the range. */
function usableIn(cidr: string, range: string): boolean {
  const { address, cidr: subnet } = parseAddressInCidr(cidr);
  const r = parseCidr(range);
  const edge = (c: Cidr): boolean => address === c.start || address === cidrEnd(c) - 1;
  return cidrContains(r, address) && cidrContains(r, subnet.start) && !edge(r) && !edge(subnet);
}

/** Runs `ping` for every pair, `concurrency` at a time, retrying failures up to `attempts` times in all; returns the pairs that never answered. */
async function collectPings(
  pairs: ReadonlyArray<readonly [PsRow, PsRow]>,
  ping: (from: PsRow, to: PsRow) => Promise<boolean>,
  options: { attempts: number; concurrency: number },
): Promise<string[]> {
  let todo = [...pairs];
  for (let attempt = 0; attempt < options.attempts && todo.length > 0; attempt++) {
    const failed: Array<readonly [PsRow, PsRow]> = [];
    for (let i = 0; i < todo.length; i += options.concurrency) {
      const batch = todo.slice(i, i + options.concurrency);
      const ok = await Promise.all(batch.map(([a, b]) => ping(a, b)));
      batch.forEach((pair, j) => {
        if (!ok[j]) failed.push(pair);
      });
    }
    todo = failed;
  }
  return todo.map(([a, b]) => `${a.host.name}/${a.name}->${b.host.name}/${b.name}`);
}

/**
 * Container PIDs seen in this run. Containers live in namespaces of their own, where the lab's
 * process sweep does not look, so the test kills them itself (by PID) when it ends, however it ends.
 */
const containerPids = new Set<number>();
function killContainers(): void {
  killPids(containerPids);
}

/** `loom ps` on a host, parsed; records every PID for cleanup. */
async function ps(cli: LoomCli, h: LabHost): Promise<PsRow[]> {
  const rows = parsePs((await cli.run(h, ['ps'], { timeoutMs: 15_000 })).stdout, h);
  for (const r of rows) containerPids.add(r.pid);
  return rows;
}

async function psAll(cli: LoomCli, hosts: readonly LabHost[]): Promise<PsRow[]> {
  const all: PsRow[] = [];
  for (const h of hosts) all.push(...(await ps(cli, h)));
  return all;
}

/** `loom run --name NAME -- sleep 3600`: no address, so IPAM picks one. Returns the container id. */
async function runNoAddress(cli: LoomCli, h: LabHost, name: string): Promise<string> {
  const out = await cli.run(h, ['run', '--name', name, '--', 'sleep', '3600'], { timeoutMs: RUN_TIMEOUT_MS });
  return out.stdout.trim();
}

async function ipamStatus(cli: LoomCli, h: LabHost): Promise<IpamStatus> {
  const report = JSON.parse((await cli.run(h, ['report'], { timeoutMs: 10_000 })).stdout) as { ipam?: IpamStatus };
  if (!report.ipam) throw new Error(`no ipam section on ${h.name}`);
  return report.ipam;
}

/** The container's addresses as IPAM itself records them (GET /ipam/lookup; `loom ps` shows the container's record). */
async function ipamLookup(cli: LoomCli, h: LabHost, containerId: string): Promise<string[]> {
  const url = `http://127.0.0.1:6784/ipam/lookup?containerId=${encodeURIComponent(containerId)}`;
  const out = await cli.lab.exec(h, process.execPath, ['-e', `fetch(${JSON.stringify(url)}).then(r=>r.text()).then(t=>process.stdout.write(t))`], { timeoutMs: 10_000 });
  return (JSON.parse(out.stdout) as { cidrs?: string[] }).cidrs ?? [];
}

/** `loom status ipam` without the line about this peer's own allocations, which differs per host by design. */
async function sharedIpamView(cli: LoomCli, h: LabHost): Promise<string> {
  const text = (await cli.run(h, ['status', 'ipam'], { timeoutMs: 10_000 })).stdout;
  return text
    .split('\n')
    .filter((line) => !line.startsWith('this peer:'))
    .join('\n');
}

function assertAllUsableAndUnique(rows: readonly PsRow[], expected: number): void {
  const cidrs = rows.flatMap((r) => r.cidrs);
  assert.equal(cidrs.length, expected, `${expected} addresses: ${cidrs.join(' ')}`);
  assert.deepEqual(findDuplicates(rows), [], 'no address is given twice');
  for (const r of rows) for (const c of r.cidrs) assert.ok(usableIn(c, RANGE), `${r.host.name}/${r.name} ${c} is a usable address of ${RANGE}`);
}

/** Pings between containers straight from their namespaces (no CLI per ping), retrying a failed pair a few times while ARP and FDB settle. */
async function pingPairs(lab: Lab, pairs: ReadonlyArray<readonly [PsRow, PsRow]>): Promise<string[]> {
  const once = async (from: PsRow, to: PsRow): Promise<boolean> => {
    const r = await lab.exec(from.host, 'nsenter', ['--target', String(from.pid), '--net', 'ping', '-c', '1', '-W', '2', to.cidrs[0]!.split('/')[0]!], { allowFailure: true, timeoutMs: 10_000 });
    return r.code === 0;
  };
  return collectPings(pairs, once, { attempts: 4, concurrency: 8 });
}

test('IPAM end to end: unique addresses without coordination, across restarts and partitions', { skip, timeout: 900_000 }, async (t) => {
  process.on('exit', killContainers);
  try {
    await withLab(t, { hosts: 4, subnet: '192.168.97.0/24' }, body);
  } finally {
    killContainers();
    process.off('exit', killContainers);
  }

  async function body(lab: Lab, cli: LoomCli): Promise<void> {
    const [h1, h2, h3, h4] = lab.hosts as [LabHost, LabHost, LabHost, LabHost];
    const mesh = [h1, h2, h3];
    const started = Date.now();
    await cli.launch(h1);
    await cli.launch(h2, { peers: [h1.address] });
    await cli.launch(h3, { peers: [h2.address] });
    const timings: Record<string, number> = {};

    await t.test('15 concurrent `loom run` without an address: unique, usable, and every pair pings', async () => {
      const t0 = Date.now();
      const ids = await Promise.all(mesh.flatMap((h) => ['a', 'b', 'c', 'd', 'e'].map((s) => runNoAddress(cli, h, `${h.name}${s}`))));
      timings['15 concurrent runs (s)'] = (Date.now() - t0) / 1000;
      for (const id of ids) assert.match(id, /^[0-9a-f]{12}$/, 'run prints the container id');
      const rows = await psAll(cli, mesh);
      assert.equal(rows.length, 15);
      assertAllUsableAndUnique(rows, 15);
      for (const r of rows) assert.equal(r.cidrs[0]!.split('/')[1], '12', `${r.name} gets the range's prefix (no default subnet)`);

      // Every ordered pair (210): direct nsenter pings are cheap enough that a sample is not needed.
      const t1 = Date.now();
      const pairs = rows.flatMap((a) => rows.filter((b) => b !== a).map((b) => [a, b] as const));
      assert.equal(pairs.length, 210);
      assert.deepEqual(await pingPairs(lab, pairs), []);
      timings['210 pings (s)'] = (Date.now() - t1) / 1000;
    });

    await t.test('kill -9 of a router: its containers keep their addresses, new ones do not collide', async () => {
      const before = await ps(cli, h2);
      assert.equal(before.length, 5);
      const pid = cli.pid(h2)!;
      process.kill(pid, 'SIGKILL');
      await pollUntil(async () => (pidExists(pid) ? undefined : true), { what: 'h2 router gone', timeoutMs: 10_000, intervalMs: 50 });
      const t0 = Date.now();
      await cli.launch(h2, { peers: [h1.address] });
      const after = await ps(cli, h2);
      assert.deepEqual(
        after.map((r) => [r.id, r.name, r.cidrs, r.alive]),
        before.map((r) => [r.id, r.name, r.cidrs, true]),
        'the same containers with the same addresses',
      );
      assert.equal((await ipamStatus(cli, h2)).state, 'ready');
      for (const r of before) assert.deepEqual(await ipamLookup(cli, h2, r.id), r.cidrs, `the restarted IPAM still holds ${r.name}'s address`);
      await Promise.all(['f', 'g', 'h'].map((s) => runNoAddress(cli, h2, `h2${s}`)));
      timings['restart + 3 runs (s)'] = (Date.now() - t0) / 1000;
      assertAllUsableAndUnique(await psAll(cli, mesh), 18);
    });

    await t.test('allocations on both sides of a partition never collide; `loom status ipam` agrees after healing', async () => {
      const block = await lab.partition([h3], [h1, h2]);
      // Both sides must notice: otherwise this would only be the connected case.
      await pollUntil(
        async () => {
          const s1 = await ipamStatus(cli, h1);
          const s3 = await ipamStatus(cli, h3);
          return s1.unreachableOwners.length === 1 && s3.unreachableOwners.length === 2 ? true : undefined;
        },
        { what: 'both sides see the partition', timeoutMs: CONVERGE_MS, intervalMs: 500 },
      );
      const t0 = Date.now();
      await Promise.all([
        runNoAddress(cli, h1, 'h1p'),
        runNoAddress(cli, h1, 'h1q'),
        runNoAddress(cli, h2, 'h2p'),
        ...['p', 'q', 'r'].map((s) => runNoAddress(cli, h3, `h3${s}`)),
      ]);
      timings['6 runs in a partition (s)'] = (Date.now() - t0) / 1000;
      await lab.unblock(block);

      const t1 = Date.now();
      const agreed = await pollUntil(
        async () => {
          const views = await Promise.all(mesh.map((h) => sharedIpamView(cli, h)));
          const statuses = await Promise.all(mesh.map((h) => ipamStatus(cli, h)));
          if (statuses.some((s) => s.unreachableOwners.length > 0 || s.peers.some((p) => !p.reachable))) return undefined;
          return views.every((v) => v === views[0]) ? views[0] : undefined;
        },
        { what: 'every `loom status ipam` to agree after the partition heals', timeoutMs: CONVERGE_MS, intervalMs: 500 },
      );
      timings['heal until ipam agrees (s)'] = (Date.now() - t1) / 1000;
      t.diagnostic(`loom status ipam after healing:\n${agreed}`);
      assert.match(agreed, /ready/);
      assert.doesNotMatch(agreed, /unreachable|refused/);
      const rows = await psAll(cli, mesh);
      assertAllUsableAndUnique(rows, 24);

      // The containers made apart reach each other once healed (both ways).
      const byName = new Map(rows.map((r) => [r.name, r]));
      const pairs = [['h3p', 'h1p'], ['h1q', 'h3q'], ['h2p', 'h3r'], ['h3r', 'h2p']].map(([a, b]) => [byName.get(a!)!, byName.get(b!)!] as const);
      assert.deepEqual(await pingPairs(lab, pairs), []);
    });

    await t.test('net:CIDR allocates in that subnet and a static address in the range is claimed: never a duplicate', async () => {
      const subnet = '10.33.0.0/24';
      await Promise.all(mesh.map((h) => cli.run(h, ['run', '--name', `${h.name}n`, `net:${subnet}`, '--', 'sleep', '3600'], { timeoutMs: RUN_TIMEOUT_MS })));
      const inSubnet = (await psAll(cli, mesh)).filter((r) => r.name.endsWith('n'));
      assert.equal(inSubnet.length, 3);
      for (const r of inSubnet) assert.ok(usableIn(r.cidrs[0]!, subnet), `${r.name} ${r.cidrs[0]} is a usable address of ${subnet}`);
      assert.deepEqual(findDuplicates(inSubnet), []);
      assert.deepEqual(await pingPairs(lab, [[inSubnet[0]!, inSubnet[2]!], [inSubnet[2]!, inSubnet[1]!]]), [], 'the subnet works across hosts');

      // A free static address in h1's own space: the addresses just above h1's highest
      // allocation are, unless its block ends there, so a few candidates are tried (bounded);
      // a refused candidate creates nothing.
      const h1rows = await ps(cli, h1);
      const h1a = h1rows.find((r) => r.name === 'h1a')!;
      const top = Math.max(...h1rows.filter((r) => r.cidrs[0]!.endsWith('/12')).map((r) => parseAddressInCidr(r.cidrs[0]!).address));
      let fixed: string | undefined;
      let claimId = '';
      const refusals: string[] = [];
      for (let k = 1; k <= 8 && fixed === undefined; k++) {
        const candidate = `${formatAddress(top + k)}/12`;
        const r = await cli.run(h1, ['run', '--name', 'h1s', candidate, '--', 'sleep', '3600'], { allowFailure: true });
        if (r.code === 0) [fixed, claimId] = [candidate, r.stdout.trim()];
        else refusals.push(r.stderr.trim());
      }
      assert.ok(fixed !== undefined, `h1 claims a free address of its own space: ${refusals.join(' | ')}`);
      assert.deepEqual(await ipamLookup(cli, h1, claimId), [fixed], 'IPAM records the static address');
      for (const [h, taken, why] of [
        [h1, fixed, /ERR_CONFLICT.*in use by another container/],
        [h1, h1a.cidrs[0]!, /ERR_CONFLICT.*in use by another container/],
        [h2, fixed, /ERR_CONFLICT.*belongs to peer/],
      ] as const) {
        const r = await cli.run(h, ['run', '--name', 'dup', taken, '--', 'sleep', '3600'], { allowFailure: true });
        assert.notEqual(r.code, 0, `${h.name}: a second container with ${taken} is refused`);
        assert.match(r.stderr, why, r.stderr);
      }
      assertAllUsableAndUnique(await psAll(cli, mesh), 28);
    });

    await t.test('a peer with another --ipalloc-range is refused, visibly in `loom status ipam`', async () => {
      const ringBefore = (await ipamStatus(cli, h1)).peers.map((p) => [p.name, p.owned]);
      const { name: h4name } = await cli.launch(h4, { peers: [h1.address], args: ['--ipalloc-range', '10.96.0.0/16'] });
      const h1name = (await ipamStatus(cli, h1)).self;
      const [onH1, onH4] = await pollUntil(
        async () => {
          const a = await cli.run(h1, ['status', 'ipam'], { timeoutMs: 10_000 });
          const b = await cli.run(h4, ['status', 'ipam'], { timeoutMs: 10_000 });
          return a.stdout.includes('refused:') && b.stdout.includes('refused:') ? [a.stdout, b.stdout] : undefined;
        },
        { what: 'both sides refuse the other range', timeoutMs: CONVERGE_MS, intervalMs: 500 },
      );
      assert.match(onH1, new RegExp(`refused: .*${h4name}.* use range 10\\.96\\.0\\.0/16, not 10\\.32\\.0\\.0/12 \\(ERR_RANGE_MISMATCH`), onH1);
      assert.match(onH4, new RegExp(`refused: .*${h1name}.* use range 10\\.32\\.0\\.0/12, not 10\\.96\\.0\\.0/16 \\(ERR_RANGE_MISMATCH`), onH4);
      const s1 = await ipamStatus(cli, h1);
      assert.deepEqual(s1.peers.map((p) => [p.name, p.owned]), ringBefore, "h1's ring is unchanged");
      const s4 = await ipamStatus(cli, h4);
      assert.equal(s4.range, '10.96.0.0/16');
      assert.ok(s4.peers.every((p) => p.name === s4.self), 'h4 adopted none of the other range');
    });

    t.diagnostic(`timings: ${JSON.stringify({ ...timings, 'whole test incl. launches (s)': (Date.now() - started) / 1000 })}`);

    // Every container of the run goes, by PID (a `loom rm` waits out each container's stop
    // grace, ~50 s for 24); the routers notice the deaths and drop the records.
    const rows = await psAll(cli, mesh);
    assert.equal(rows.length, 28);
    killContainers();
    await pollUntil(async () => ([...containerPids].some(pidExists) ? undefined : true), { what: 'every container process gone', timeoutMs: 15_000, intervalMs: 100 });
    await pollUntil(async () => ((await psAll(cli, mesh)).length === 0 ? true : undefined), { what: 'the routers forget the dead containers', timeoutMs: 30_000, intervalMs: 500 });
    for (const h of mesh) {
      const s = await ipamStatus(cli, h);
      assert.equal(s.releasedInGrace, rows.filter((r) => r.host === h).length, `${h.name} released its dead containers' addresses (kept in grace)`);
    }
  }
});
