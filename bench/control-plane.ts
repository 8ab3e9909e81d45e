/**
 * Control-plane benchmark: simulated meshes of 100 and 1,000 routers (one process, in-memory
 * transport, fake clock). Measures simulated time to converge after a join and after a death,
 * change-driven gossip bytes per peer per change, and heap per router.
 *
 * Run: npm run build && node dist/bench/control-plane.js [sizes...]   (default: 100 1000)
 *
 * "Per change" = per new version of some peer's entry (each connection made or lost changes
 * the entries of both ends). Anti-entropy (a 9-byte topology fingerprint per neighbour every
 * 30 s) is background cost, not change-driven: it is switched off during the measurement.
 * Prints a markdown table for docs/BENCHMARKS.md; progress goes to stderr.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { encodeEntries } from '../src/mesh/topology-codec.js';
import { createTestMesh, seededRandom, type TestMesh } from '../test/helpers/test-mesh.js';

const CONN_LIMIT = 8;
const LATENCY_MS = 5;


function gcNow(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

/** Each live router's own entry version, by index: each +1 is one change some peer published. */
function ownVersions(mesh: TestMesh): Map<number, number> {
  const out = new Map<number, number>();
  mesh.routers.forEach((r, i) => {
    if (mesh.isAlive(i)) out.set(i, r.entryVersion(r.mesh.self) ?? 0);
  });
  return out;
}

/** Changes published between two snapshots by routers alive at the end (a new router counts from 0). */
function changesBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [i, v] of after) sum += v - (before.get(i) ?? 0);
  return sum;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const CHANGE_KINDS = ['neighbour', 'broadcast', 'unicast', 'repair', 'repairState'] as const;

interface ChangeCost {
  /** Simulated ms from the change until the mesh was converged and quiet; null = not within 60 s. */
  ms: number | null;
  changes: number;
  /** Bytes received per peer per change, over the peers that existed before (not the joiner). */
  medianReceived: number;
  p95Received: number;
  maxReceived: number;
  /** Bytes received by the joiner (full state), per change; 0 for a death. */
  joinerReceived: number;
  /** All gossip bytes sent / live peers / changes. */
  totalPerPeer: number;
  byKind: string;
}

/** Runs `change`, then until converged and quiet, then 3 s more (repair checks, discovery dials). */
async function measure(mesh: TestMesh, change: () => Promise<number | null>): Promise<ChangeCost> {
  const bytesBefore = mesh.totalGossipBytes([...CHANGE_KINDS]);
  const kindsBefore = CHANGE_KINDS.map((k) => mesh.totalGossipBytes([k]));
  const receivedBefore = mesh.routers.map((r) => r.gossipStats().bytesReceived);
  const versionsBefore = ownVersions(mesh);
  const start = mesh.clock.now();
  const joiner = await change();
  let convergedAt: number | null = null;
  const settled = await mesh.runUntil(() => {
    if (!mesh.converged()) {
      convergedAt = null;
      return false;
    }
    convergedAt ??= mesh.clock.now();
    return mesh.quiet();
  }, 60_000);
  const ms = settled && convergedAt !== null ? convergedAt - start : null;
  await mesh.runUntil(() => false, 3_000);
  const changes = Math.max(1, changesBetween(versionsBefore, ownVersions(mesh)));
  const live = mesh.live().length;
  const received: number[] = [];
  mesh.routers.forEach((r, i) => {
    if (mesh.isAlive(i) && i !== joiner) received.push((r.gossipStats().bytesReceived - (receivedBefore[i] ?? 0)) / changes);
  });
  received.sort((a, b) => a - b);
  const joinerReceived = joiner === null ? 0 : mesh.routers[joiner]!.gossipStats().bytesReceived / changes;
  const bytes = mesh.totalGossipBytes([...CHANGE_KINDS]) - bytesBefore;
  const byKind = CHANGE_KINDS.map((k, i) => `${k} ${((mesh.totalGossipBytes([k]) - kindsBefore[i]!) / live / changes).toFixed(1)}`).join(', ');
  return {
    ms,
    changes,
    medianReceived: percentile(received, 0.5),
    p95Received: percentile(received, 0.95),
    maxReceived: received[received.length - 1] ?? 0,
    joinerReceived,
    totalPerPeer: bytes / live / changes,
    byKind: `${changes} changes; sent B/peer/change by kind: ${byKind}`,
  };
}

interface Row {
  n: number;
  buildMs: number | null;
  join: ChangeCost;
  death: ChangeCost;
  fullStateBytes: number;
  heapPerRouterKiB: number;
  wallSeconds: number;
}

async function run(n: number): Promise<Row> {
  const wallStart = performance.now();
  gcNow();
  const heapBefore = process.memoryUsage().heapUsed;
  const mesh = await createTestMesh(n, {
    connLimit: CONN_LIMIT,
    latencyMs: LATENCY_MS,
    seed: n,
    router: { antiEntropyIntervalMs: 3_600_000, heartbeatIntervalMs: 2_000, heartbeatTimeoutMs: 10_000 },
  });
  const rand = seededRandom(n * 31);
  for (let i = 1; i < n; i++) mesh.connect(i, Math.floor(rand() * i));
  const buildStart = mesh.clock.now();
  const built = await mesh.runUntil(() => mesh.converged() && mesh.quiet(), 300_000);
  const buildMs = built ? mesh.clock.now() - buildStart : null;
  gcNow();
  const heapPerRouterKiB = (process.memoryUsage().heapUsed - heapBefore) / n / 1024;

  const join = await measure(mesh, async () => {
    const j = await mesh.addRouter();
    mesh.connect(j, Math.floor(rand() * n));
    return j;
  });
  const victim = 1 + Math.floor(rand() * (n - 2));
  const death = await measure(mesh, async () => {
    await mesh.kill(victim);
    return null;
  });

  const fullStateBytes = fullStateSize(mesh);
  await mesh.stop();
  return { n, buildMs, join, death, fullStateBytes, heapPerRouterKiB, wallSeconds: (performance.now() - wallStart) / 1000 };
}

/** Bytes of one full-state topology message, as anti-entropy sends it. */
function fullStateSize(mesh: TestMesh): number {
  const peers = mesh.live()[0]!.status().peers;
  return encodeEntries(peers.map((p) => ({ ...p, connections: p.connections.map(({ name, address, outbound, established }) => ({ name, address, outbound, established })) }))).length;
}

function fmt(v: number | null, digits = 0): string {
  return v === null ? 'timeout' : v.toFixed(digits);
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number).filter((x) => Number.isInteger(x) && x >= 3);
  const ns = sizes.length > 0 ? sizes : [100, 1000];
  const rows: Row[] = [];
  for (const n of ns) {
    rows.push(await run(n));
    console.error(`n=${n} done in ${rows[rows.length - 1]!.wallSeconds.toFixed(1)} s wall`);
  }
  console.log(`control plane: sparse mesh, connLimit ${CONN_LIMIT}, discovery on, one-way latency ${LATENCY_MS} ms (simulated time)`);
  console.log('B = gossip bytes received per existing peer per change (the joiner excluded); total = all gossip bytes sent / peers / changes');
  console.log('');
  console.log('| peers | build ms | change | changes | converge ms | median B | p95 B | max B | total B/peer | joiner B | full state B | heap KiB/router | wall s |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    for (const [what, c] of [['join', r.join], ['death', r.death]] as const) {
      console.log(
        `| ${r.n} | ${fmt(r.buildMs)} | ${what} | ${c.changes} | ${fmt(c.ms)} | ${c.medianReceived.toFixed(0)} | ${c.p95Received.toFixed(0)} | ${c.maxReceived.toFixed(0)} | ` +
          `${c.totalPerPeer.toFixed(0)} | ${what === 'join' ? c.joinerReceived.toFixed(0) : '-'} | ${r.fullStateBytes} | ${r.heapPerRouterKiB.toFixed(0)} | ${r.wallSeconds.toFixed(1)} |`,
      );
    }
  }
  const small = rows.find((r) => r.n === 100);
  const big = rows.find((r) => r.n === 1000);
  console.log('');
  if (small && big) {
    const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a');
    for (const what of ['join', 'death'] as const) {
      console.log(
        `1000 vs 100, ${what}: median ${ratio(big[what].medianReceived, small[what].medianReceived)}, p95 ${ratio(big[what].p95Received, small[what].p95Received)}, ` +
          `total/n ${ratio(big[what].totalPerPeer, small[what].totalPerPeer)}; baseline log(1000)/log(100) = ${(Math.log(1000) / Math.log(100)).toFixed(2)}`,
      );
    }
    console.log(`target: 1,000 peers converge within 10 s simulated: join ${big.join.ms !== null && big.join.ms <= 10_000 ? 'met' : 'MISSED'}, death ${big.death.ms !== null && big.death.ms <= 10_000 ? 'met' : 'MISSED'}`);
  }
  for (const r of rows) console.log(`n=${r.n} join: ${r.join.byKind}\nn=${r.n} death: ${r.death.byKind}`);
  for (const r of rows) {
    console.log(`anti-entropy at n=${r.n}: a 9 B topology fingerprint to each of <= ${2 * CONN_LIMIT} neighbours every 30 s (a full state would be ~${r.fullStateBytes} B)`);
  }
}

await main();
