/**
 * IPAM benchmark: allocations per second on one peer (in-process; through the daemon API see
 * bench/ipam-api.ts), ring merge cost and encoded ring size with 1,000 peers, and the time a peer
 * without space waits for a donation (simulated: 1 ms per message hop on a FakeClock). Every
 * figure is printed next to a baseline measured in the same run (a Map insert loop), as a ratio,
 * so numbers from different machines can be compared.
 *
 * Run: node --import tsx bench/ipam.ts   (or node dist/bench/ipam.js after npm run build)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { PeerName } from '../src/core/ids.js';
import { parseAddress, parseCidr } from '../src/ipam/cidr.js';
import { Ring } from '../src/ipam/ring.js';
import { decodeRing, encodeRing } from '../src/ipam/ring-codec.js';
import { SqliteStore } from '../src/ipam/store-sqlite.js';
import { IpamNet, peerName } from '../test/unit/ipam/harness.js';

function perSecond(n: number, ms: number): number {
  return Math.round((n / ms) * 1000);
}

function baselineMapInserts(n: number): number {
  const t0 = performance.now();
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) m.set(`container-${i}`, i);
  const ms = performance.now() - t0;
  if (m.size !== n) throw new Error('baseline broken');
  return perSecond(n, ms);
}

async function allocationsPerSecond(n: number, stateDir: string | null, synchronous: 'FULL' | 'NORMAL' = 'FULL'): Promise<number> {
  const net = new IpamNet();
  const store = stateDir ? new SqliteStore(stateDir, { synchronous }) : undefined;
  const self = peerName(1);
  const ipam = net.add(self, { range: '10.32.0.0/12', bootstrap: `seed=${self}` }, 0, store);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await ipam.allocate(`container-${i}`);
  const ms = performance.now() - t0;
  ipam.stop();
  store?.close();
  return perSecond(n, ms);
}

function ringWith1000Peers(): { merge: number; encode: number; decode: number; bytes: number; entries: number } {
  const range = parseCidr('10.32.0.0/12');
  const peers = Array.from({ length: 1000 }, (_, i) => peerName(i + 1));
  const base = Ring.initial(range, peers);
  for (const p of peers) base.setStats(p, 1000, 10);
  const a = base.clone();
  const b = base.clone();
  // Each side sees different donations: half the peers split their piece and give half away.
  for (let i = 0; i < 1000; i += 2) {
    const [run] = a.ownedBy(peers[i]!);
    if (run) a.transfer(run.start + ((run.end - run.start) >> 1), run.end, peers[i]!, peers[(i + 1) % 1000]!);
  }
  for (let i = 1; i < 1000; i += 2) {
    const [run] = b.ownedBy(peers[i]!);
    if (run) b.transfer(run.start + ((run.end - run.start) >> 1), run.end, peers[i]!, peers[(i + 1) % 1000]!);
  }
  const rounds = 200;
  let t0 = performance.now();
  for (let i = 0; i < rounds; i++) a.clone().merge(b);
  const merge = (performance.now() - t0) / rounds;
  const merged = a.clone();
  merged.merge(b);
  t0 = performance.now();
  let bytes: Uint8Array = new Uint8Array();
  for (let i = 0; i < rounds; i++) bytes = encodeRing(merged);
  const encode = (performance.now() - t0) / rounds;
  t0 = performance.now();
  for (let i = 0; i < rounds; i++) decodeRing(bytes);
  const decode = (performance.now() - t0) / rounds;
  return { merge, encode, decode, bytes: bytes.length, entries: merged.entries.length };
}

const HOP_MS = 1;
const MAX_ROUNDS = 10_000;

/**
 * Simulated time and messages from `allocate` to its answer, delivering one hop per round and
 * advancing the clock HOP_MS per round (also when nothing is in flight, so timers can fire).
 */
async function timeToAllocate(net: IpamNet, self: PeerName, id: string): Promise<{ ms: number; messages: number; cidr: string }> {
  const t0 = net.clock.now();
  const m0 = net.delivered;
  let cidr: string | null = null;
  let failure: unknown = null;
  net.ipam(self).allocate(id).then((r) => (cidr = r.cidr), (e: unknown) => (failure = e));
  for (let round = 0; round < MAX_ROUNDS; round++) {
    await new Promise((r) => setImmediate(r));
    if (cidr !== null || failure !== null) break;
    net.deliverRound();
    net.clock.advance(HOP_MS);
  }
  if (failure !== null) throw failure instanceof Error ? failure : new Error('allocation failed', { cause: failure });
  if (cidr === null) throw new Error(`no allocation within ${MAX_ROUNDS} rounds`);
  return { ms: net.clock.now() - t0, messages: net.delivered - m0, cidr };
}

/** Two seeded peers own a /24; an observer with no space allocates (needs a donation). Baseline: a seeded peer allocating from its own space. */
async function donationTime(): Promise<{ own: { ms: number; messages: number }; donated: { ms: number; messages: number } }> {
  const net = new IpamNet();
  const [a, b, c] = [peerName(1), peerName(2), peerName(3)];
  const seed = `seed=${a},${b}`;
  net.add(a, { range: '10.32.0.0/24', bootstrap: seed });
  net.add(b, { range: '10.32.0.0/24', bootstrap: seed });
  net.add(c, { range: '10.32.0.0/24', bootstrap: 'observer' });
  net.settle();
  const own = await timeToAllocate(net, a, 'own-1');
  const donated = await timeToAllocate(net, c, 'donated-1');
  if (net.ipam(a).ringSnapshot().ownerOf(parseAddress(donated.cidr.split('/')[0]!)) !== c) throw new Error('donation not reflected in the ring');
  return { own, donated };
}

const N = 20_000;
baselineMapInserts(200_000); // warm-up
const baseline = baselineMapInserts(200_000);
const memory = await allocationsPerSecond(N, null);
const dir = mkdtempSync(join(tmpdir(), 'loom-ipam-bench-'));
const dir2 = mkdtempSync(join(tmpdir(), 'loom-ipam-bench-'));
let sqlite: number;
let sqliteNormal: number;
try {
  sqlite = await allocationsPerSecond(2_000, dir);
  sqliteNormal = await allocationsPerSecond(N, dir2, 'NORMAL');
} finally {
  rmSync(dir, { recursive: true, force: true });
  rmSync(dir2, { recursive: true, force: true });
}
const ring = ringWith1000Peers();
const donation = await donationTime();
const baselineMs1000 = 1e6 / baseline; // time of 1,000 Map inserts, ms

const rows: Array<[string, string, string]> = [
  ['baseline: Map inserts', `${baseline.toLocaleString()} /s`, '1.00'],
  ['allocate, memory store', `${memory.toLocaleString()} /s`, (memory / baseline).toFixed(4)],
  ['allocate, SQLite WAL+FULL', `${sqlite.toLocaleString()} /s`, (sqlite / baseline).toFixed(4)],
  ['allocate, SQLite WAL+NORMAL', `${sqliteNormal.toLocaleString()} /s`, (sqliteNormal / baseline).toFixed(4)],
  ['ring merge, 1,000 peers', `${ring.merge.toFixed(3)} ms (${ring.entries} entries)`, `${(ring.merge / baselineMs1000).toFixed(2)}x 1k inserts`],
  ['ring encode, 1,000 peers', `${ring.encode.toFixed(3)} ms`, `${(ring.encode / baselineMs1000).toFixed(2)}x 1k inserts`],
  ['ring decode, 1,000 peers', `${ring.decode.toFixed(3)} ms`, `${(ring.decode / baselineMs1000).toFixed(2)}x 1k inserts`],
  ['ring encoded size', `${ring.bytes.toLocaleString()} bytes`, '-'],
  ['allocate, own space (sim)', `${donation.own.ms} ms, ${donation.own.messages} messages`, '1.00'],
  ['allocate after donation (sim)', `${donation.donated.ms} ms, ${donation.donated.messages} messages`, `${donation.donated.ms} ms at ${HOP_MS} ms/hop`],
];
for (const [name, value, ratio] of rows) process.stdout.write(`${name.padEnd(30)} ${value.padEnd(32)} ratio ${ratio}\n`);
process.stdout.write('allocate via the daemon API: see bench/ipam-api.ts (wrk against POST /ipam/allocate; ~20k/s measured, target >= 10k/s)\n');
