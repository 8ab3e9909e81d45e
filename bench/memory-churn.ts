/**
 * The container churn of bench/memory.ts, run inside one lab host's network namespace (the
 * router's API socket is private to it): COUNT times `loom run` of a sleeper and `loom rm` of it,
 * one at a time, through the typed client in this one process (no CLI start-up per operation).
 * Prints one JSON line: { started, removed, ms }. Exits non-zero on the first failure, after
 * trying to remove the container it started.
 *
 *   node dist/bench/memory-churn.js COUNT NAME_PREFIX
 */
import { LoomClient } from '../src/client/index.js';

/** Exits at once on SIGTERM (a bare `sleep` as PID 1 would wait out the runtime's grace). */
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];

const count = Number(process.argv[2]);
const prefix = process.argv[3] ?? 'm';
if (!Number.isInteger(count) || count < 1 || count > 10_000 || !/^[a-z][a-z0-9-]{0,20}$/.test(prefix)) {
  console.error('usage: memory-churn COUNT(1..10000) NAME_PREFIX');
  process.exit(2);
}

const client = new LoomClient({ timeoutMs: 30_000 });
const started = Date.now();
let runs = 0;
let removes = 0;
for (let i = 0; i < count; i++) {
  const record = await client.containers.run({ name: `${prefix}${i}`, cidr: 'net:default', cmd: SLEEPER });
  runs++;
  await client.containers.remove({ id: record.id });
  removes++;
}
console.log(JSON.stringify({ started: runs, removed: removes, ms: Date.now() - started }));
