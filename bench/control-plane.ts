/**
 * Control-plane benchmark: simulated meshes of 100 and 1,000 routers (one process, in-memory
 * transport, fake clock). Measures simulated time to converge after a join and after a death,
 * change-driven gossip bytes per peer per change, and heap per router.
 *
 * Run: npm run build && node dist/bench/control-plane.js [sizes...]   (default: 100 1000)
 *
 * "Per change" = per new version of some peer's entry (each connection made or lost changes
 * the entries of both ends). Anti-entropy (full state every 30 s) is background cost, not
 * change-driven: it is switched off during the measurement and reported on its own line from
 * the measured size of a full state.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { encodeEntries } from '../src/mesh/topology-codec.js';
import { createTestMesh, seededRandom, type TestMesh } from '../test/helpers/test-mesh.js';

const CONN_LIMIT = 8;
const LATENCY_MS = 5;

interface Row {
  n: number;
  buildMs: number | null;
  joinMs: number | null;
  joinBytesPerPeerPerChange: number;
  deathMs: number | null;
  deathBytesPerPeerPerChange: number;
  fullStateBytes: number;
  detail: string[];
  heapPerRouterKiB: number;
  wallSeconds: number;
}

function gcNow(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

/** Sum of every live router's own entry version: each +1 is one change some peer published. */
function ownVersionSum(mesh: TestMesh): number {
  let sum = 0;
  for (const r of mesh.live()) sum += r.status().peers.find((p) => p.name === r.mesh.self)?.version ?? 0;
  return sum;
}

const CHANGE_KINDS = ['neighbour', 'broadcast', 'unicast', 'repair', 'repairState'] as const;

/** Runs `change`, then until converged and quiet; returns simulated ms and bytes per peer per change. */
async function measure(mesh: TestMesh, change: () => Promise<void>): Promise<{ ms: number | null; bytesPerPeerPerChange: number; byKind: string }> {
  const bytesBefore = mesh.totalGossipBytes([...CHANGE_KINDS]);
  const kindsBefore = CHANGE_KINDS.map((k) => mesh.totalGossipBytes([k]));
  const versionsBefore = ownVersionSum(mesh);
  const start = mesh.clock.now();
  await change();
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
  // Keep counting past the repair check (1-1.5 s after the last change) and discovery dials.
  await mesh.runUntil(() => false, 3_000);
  const bytes = mesh.totalGossipBytes([...CHANGE_KINDS]) - bytesBefore;
  // A joiner's first version counts too (its entry is new to everyone).
  const changes = Math.max(1, ownVersionSum(mesh) - versionsBefore);
  const byKind = CHANGE_KINDS.map((k, i) => `${k} ${((mesh.totalGossipBytes([k]) - kindsBefore[i]!) / mesh.live().length / changes).toFixed(1)}`).join(', ');
  return { ms, bytesPerPeerPerChange: bytes / mesh.live().length / changes, byKind: `${changes} changes; B/peer/change: ${byKind}` };
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
  });
  const victim = 1 + Math.floor(rand() * (n - 2));
  const death = await measure(mesh, () => mesh.kill(victim));

  const fullStateBytes = fullStateSize(mesh);
  await mesh.stop();
  return {
    n,
    buildMs,
    joinMs: join.ms,
    joinBytesPerPeerPerChange: join.bytesPerPeerPerChange,
    deathMs: death.ms,
    deathBytesPerPeerPerChange: death.bytesPerPeerPerChange,
    fullStateBytes,
    detail: [`n=${n} join: ${join.byKind}`, `n=${n} death: ${death.byKind}`],
    heapPerRouterKiB,
    wallSeconds: (performance.now() - wallStart) / 1000,
  };
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
  }
  const header = ['peers', 'build ms', 'join ms', 'join B/peer/change', 'death ms', 'death B/peer/change', 'full state B', 'heap KiB/router', 'wall s'];
  const lines = rows.map((r) => [
    String(r.n),
    fmt(r.buildMs),
    fmt(r.joinMs),
    r.joinBytesPerPeerPerChange.toFixed(1),
    fmt(r.deathMs),
    r.deathBytesPerPeerPerChange.toFixed(1),
    String(r.fullStateBytes),
    r.heapPerRouterKiB.toFixed(1),
    r.wallSeconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const print = (cells: string[]): void => console.log(cells.map((c, i) => c.padStart(widths[i]!)).join('  '));
  console.log(`control plane: sparse mesh, connLimit ${CONN_LIMIT}, discovery on, one-way latency ${LATENCY_MS} ms (simulated time)`);
  print(header);
  for (const l of lines) print(l);
  const small = rows.find((r) => r.n === 100);
  const big = rows.find((r) => r.n === 1000);
  if (small && big) {
    const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a');
    console.log(
      `bytes/peer/change 1000 vs 100: join ${ratio(big.joinBytesPerPeerPerChange, small.joinBytesPerPeerPerChange)}, ` +
        `death ${ratio(big.deathBytesPerPeerPerChange, small.deathBytesPerPeerPerChange)}; baseline log(1000)/log(100) = ${(Math.log(1000) / Math.log(100)).toFixed(2)}`,
    );
    console.log(`target: 1,000 peers converge within 10 s simulated: join ${big.joinMs !== null && big.joinMs <= 10_000 ? 'met' : 'MISSED'}, death ${big.deathMs !== null && big.deathMs <= 10_000 ? 'met' : 'MISSED'}`);
  }
  for (const r of rows) for (const d of r.detail) console.log(d);
  for (const r of rows) {
    console.log(`anti-entropy background at n=${r.n}: full state ~${r.fullStateBytes} B to each of <= ${CONN_LIMIT} neighbours every 30 s = ~${((r.fullStateBytes * CONN_LIMIT) / 30).toFixed(0)} B/s per peer`);
  }
}

await main();
