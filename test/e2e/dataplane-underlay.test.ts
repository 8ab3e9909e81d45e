/**
 * The data plane on a realistic underlay (issue 9), driven as a user would (`bin/loom launch/run/
 * exec/status`), two lab hosts on a realistic wire (GSO trains segmented before the underlay, so
 * the lab's nft drops act per packet as on a real network):
 *  (a) `--password` on both (every peer relayed and sealed), IPv4 fragments dropped, then 1 %
 *      random loss: a 50 MiB TCP transfer container to container completes each time, no IPv4
 *      fragment crosses the underlay meanwhile, and `loom status connections` shows `pmtu=`.
 *  (b) the same on an underlay of MTU 1400, and (c) of MTU 1280: the transfer completes with no
 *      fragment, and pmtu is within the underlay's MTU (and at most 100 below it).
 *  (d) the fast path (no password) on an underlay of MTU 1400, which cannot carry 1450-byte VXLAN
 *      frames: the router notices (the peer relayed, or a pmtu/MTU that fits), big pings
 *      (`ping -s 1400 -M want`) and a TCP transfer work, and nothing is fragmented on the underlay.
 * Every figure is printed as a diagnostic; a failing test says in its first line what was wrong.
 * Needs root, nft, ping (skips otherwise). Everything stays in the lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { labSkipFor, withLab } from '../helpers/lab.js';
import { pollUntil } from '../../src/demo/poll.js';
import type { LoomCli } from '../../src/demo/loom-cli.js';
import type { Lab, LabHost, DegradeSpec } from '../../src/lab/index.js';
import {
  TCP_SINK,
  dataPathLine,
  execIn,
  isRelayed,
  killContainers,
  peerPaths,
  pmtuOf,
  runContainer,
  transfer,
  waitPeerPaths,
  type Box,
  type PeerPath,
  type TransferResult,
} from '../helpers/underlay.js';

const skip = labSkipFor(['ping']);

const TRANSFER_BYTES = 50 * 1024 * 1024;
/** 50 MiB in 30 s is 14 Mbit/s: any working relay does far better; a relay that needs fragments does not finish. */
const TRANSFER_LIMIT_MS = 30_000;

function withContainers(t: Parameters<typeof withLab>[0], options: Parameters<typeof withLab>[1], body: Parameters<typeof withLab>[2]): Promise<void> {
  process.on('exit', killContainers);
  return withLab(t, options, body).finally(() => {
    killContainers();
    process.off('exit', killContainers);
  });
}

interface Pair {
  client: Box;
  sink: Box;
  /** h2's peer name, as h1 lists it. */
  peerOfH1: string;
}

/** Launches h1 and h2 (h2 -> h1), a container on each (a TCP sink on h2), and waits until each sees the other by `accept`. */
async function launchPair(cli: LoomCli, lab: Lab, net: string, password: string | undefined, accept: (row: PeerPath) => boolean, what: string): Promise<Pair> {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const launch = password === undefined ? {} : { password };
  await cli.launch(h1, launch);
  const peerOfH1 = (await cli.launch(h2, { ...launch, peers: [h1.address] })).name;
  const client = await runContainer(cli, { host: h1, name: 'c1', ip: `${net}.1` });
  const sink = await runContainer(cli, { host: h2, name: 'c2', ip: `${net}.2` }, [process.execPath, '-e', TCP_SINK]);
  await waitPeerPaths(cli, [h1, h2], what, (_h, rows) => rows.length === 1 && accept(rows[0]!) && (rows[0]!.macs ?? 1) >= 1);
  await pollUntil(async () => ((await execIn(cli, client, ['ping', '-c', '1', '-W', '1', sink.ip])).code === 0 ? true : undefined), {
    what: `ping ${client.ip} -> ${sink.ip}`,
    timeoutMs: 20_000,
    intervalMs: 200,
  });
  return { client, sink, peerOfH1 };
}

const sealed = (row: PeerPath): boolean => isRelayed(row) && row.encrypted !== false;

/**
 * The `pmtu=` check on h1's line for its peer: present, and when `range` is given within it.
 * Returns the problem, or null.
 */
async function checkPmtu(t: Parameters<typeof withLab>[0], cli: LoomCli, h1: LabHost, peer: string, label: string, range?: [number, number]): Promise<string | null> {
  const status = await cli.status(h1, 'connections');
  const line = dataPathLine(status, peer);
  const pmtu = pmtuOf(line);
  t.diagnostic(`${label}: h1's data path to h2: ${line?.trim() ?? '(no line)'}`);
  if (pmtu === null) return `${label}: \`loom status connections\` shows no pmtu= for the peer (line: "${line?.trim() ?? 'none'}")`;
  if (range && (pmtu < range[0] || pmtu > range[1])) return `${label}: pmtu=${pmtu} for the peer, expected ${range[0]}..${range[1]} on this underlay`;
  return null;
}

/**
 * One 50 MiB transfer c1 -> c2 under the lab's present condition, with the fragment counter
 * around it. Prints the figures; returns the problems (empty when all is well).
 */
async function transferChecked(t: Parameters<typeof withLab>[0], lab: Lab, cli: LoomCli, pair: Pair, label: string): Promise<string[]> {
  const counter = await lab.fragmentCounter();
  const before = await lab.underlayCounts();
  const r = await transfer(cli, pair.client, pair.sink, TRANSFER_BYTES, TRANSFER_LIMIT_MS);
  const fragments = await counter.read();
  const packets = (await lab.underlayCounts()).packets - before.packets;
  t.diagnostic(
    `${label}: 50 MiB c1 -> c2 ${r.ok ? `completed: ${r.mbps.toFixed(0)} Mbit/s (${(r.ms / 1000).toFixed(1)} s)` : `FAILED: ${progress(r)}`}; ` +
      `${fragments} IPv4 fragments and ${packets} IPv4 packets on the underlay`,
  );
  const problems: string[] = [];
  if (!r.ok) problems.push(`${label}: the 50 MiB TCP transfer did not complete within ${TRANSFER_LIMIT_MS / 1000} s: ${progress(r)}`);
  if (fragments > 0) problems.push(`${label}: ${fragments} IPv4 fragments crossed the underlay during the transfer (Loom must send none)`);
  return problems;
}

/** How far a failed transfer got: what the sender wrote into its socket (the sink confirms only the whole). */
function progress(r: TransferResult): string {
  const wrote = `the sender wrote ${(r.sent / 2 ** 20).toFixed(1)} MiB into its socket`;
  return r.received > 0 ? `${wrote}, the sink confirmed ${r.received} bytes` : `${wrote} in ${(r.ms / 1000).toFixed(1)} s${r.error ? ` (${r.error})` : ''}, no confirmation from the sink`;
}

function report(problems: readonly string[]): void {
  if (problems.length > 0) assert.fail(problems.join('\n'));
}

test('(a) sealed relay: 50 MiB with IPv4 fragments dropped, then with 1 % loss; no fragments; pmtu shown', { skip, timeout: 180_000 }, (t) =>
  withContainers(t, { hosts: 2, subnet: '192.168.91.0/24', realisticWire: true }, async (lab, cli) => {
    const [h1] = lab.hosts as [LabHost];
    const password = `pw-${randomBytes(8).toString('hex')}`;
    // Before launch: the routers' path MTU discovery meets the underlay as it is.
    const noFragments = await lab.degrade({ dropFragments: true });
    const pair = await launchPair(cli, lab, '10.61.0', password, sealed, 'h1 and h2 relayed and sealed');
    const problems: string[] = [];
    const pmtuProblem = await checkPmtu(t, cli, h1, pair.peerOfH1, 'fragments dropped');
    if (pmtuProblem) problems.push(pmtuProblem);
    problems.push(...(await transferChecked(t, lab, cli, pair, 'fragments dropped')));
    await lab.unblock(noFragments);
    const loss: DegradeSpec = { lossPercent: 1 };
    await lab.degrade(loss);
    problems.push(...(await transferChecked(t, lab, cli, pair, '1 % loss')));
    report(problems);
  }),
);

for (const mtu of [1400, 1280] as const) {
  test(`(${mtu === 1400 ? 'b' : 'c'}) sealed relay on an underlay of MTU ${mtu}: 50 MiB, no fragments, pmtu within ${mtu - 100}..${mtu}`, { skip, timeout: 150_000 }, (t) =>
    withContainers(t, { hosts: 2, subnet: mtu === 1400 ? '192.168.92.0/24' : '192.168.93.0/24', mtu, realisticWire: true }, async (lab, cli) => {
      const [h1] = lab.hosts as [LabHost];
      const password = `pw-${randomBytes(8).toString('hex')}`;
      const pair = await launchPair(cli, lab, mtu === 1400 ? '10.62.0' : '10.63.0', password, sealed, 'h1 and h2 relayed and sealed');
      const problems: string[] = [];
      const pmtuProblem = await checkPmtu(t, cli, h1, pair.peerOfH1, `MTU ${mtu}`, [mtu - 100, mtu]);
      if (pmtuProblem) problems.push(pmtuProblem);
      problems.push(...(await transferChecked(t, lab, cli, pair, `MTU ${mtu}`)));
      report(problems);
    }),
  );
}

test('(d) fast path on an underlay of MTU 1400 (no room for 1450-byte VXLAN frames): noticed, big pings and TCP work, no fragments', { skip, timeout: 150_000 }, (t) =>
  withContainers(t, { hosts: 2, subnet: '192.168.94.0/24', mtu: 1400, realisticWire: true }, async (lab, cli) => {
    const [h1] = lab.hosts as [LabHost];
    const pair = await launchPair(cli, lab, '10.64.0', undefined, (row) => row.path !== 'unreachable', 'h1 and h2 have a data path');
    const problems: string[] = [];
    // "Noticed": the peer goes by the relay, or what the router shows for it fits the underlay
    // (a pmtu or a segment MTU that leaves room for VXLAN's 50 bytes). Probing takes a moment.
    const fits = (row: PeerPath | undefined, line: string | undefined): boolean => {
      const pmtu = pmtuOf(line);
      return isRelayed(row) || (pmtu !== null && pmtu <= lab.mtu) || (row?.mtu !== undefined && row.mtu + 50 <= lab.mtu);
    };
    let row: PeerPath | undefined;
    let line: string | undefined;
    const noticed = await pollUntil(
      async () => {
        row = (await peerPaths(cli, h1))[0];
        line = dataPathLine(await cli.status(h1, 'connections'), pair.peerOfH1);
        return fits(row, line) ? true : undefined;
      },
      { what: 'the router to notice the underlay MTU', timeoutMs: 10_000, intervalMs: 500 },
    ).catch(() => false);
    t.diagnostic(`h1's data path to h2 on the MTU 1400 underlay: ${line?.trim() ?? '(no line)'}`);
    if (!noticed) {
      problems.push(`fast path on MTU 1400: the router did not notice that 1450-byte VXLAN frames do not fit (path ${row?.path ?? '?'}, mtu=${row?.mtu ?? '?'}, no pmtu <= ${lab.mtu}; line: "${line?.trim() ?? 'none'}")`);
    }
    const counter = await lab.fragmentCounter();
    const big = await execIn(cli, pair.client, ['ping', '-c', '6', '-i', '0.3', '-W', '2', '-s', '1400', '-M', 'want', pair.sink.ip], 20_000);
    const received = Number(/(\d+) received/.exec(big.stdout)?.[1] ?? '0');
    const bigFragments = await counter.read();
    t.diagnostic(`ping -s 1400 -M want c1 -> c2: ${received} of 6 replies; ${bigFragments} IPv4 fragments on the underlay`);
    if (received < 4) problems.push(`fast path on MTU 1400: big pings (ping -s 1400 -M want) got ${received} of 6 replies`);
    if (bigFragments > 0) problems.push(`fast path on MTU 1400: ${bigFragments} IPv4 fragments crossed the underlay during the big pings (Loom must send none)`);
    const tcp = await transfer(cli, pair.client, pair.sink, 20 * 1024 * 1024, TRANSFER_LIMIT_MS);
    const allFragments = await counter.read();
    t.diagnostic(`20 MiB c1 -> c2: ${tcp.ok ? 'completed' : 'FAILED'}, ${tcp.mbps.toFixed(0)} Mbit/s; ${allFragments - bigFragments} IPv4 fragments on the underlay`);
    if (!tcp.ok) problems.push(`fast path on MTU 1400: a 20 MiB TCP transfer did not complete within ${TRANSFER_LIMIT_MS / 1000} s: ${progress(tcp)}`);
    if (allFragments > bigFragments) problems.push(`fast path on MTU 1400: ${allFragments - bigFragments} IPv4 fragments crossed the underlay during the TCP transfer`);
    report(problems);
  }),
);
