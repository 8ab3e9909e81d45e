/**
 * `npm run chaos`: the long chaos scenarios, bounded in time, in a lab of namespaces they create
 * and destroy (also on failure and Ctrl-C: the lab tears itself down on exit and signals). Each
 * scenario prints its figures and its broken invariants; the exit code is non-zero when any
 * invariant broke. The short form of each runs inside `npm test` (test/e2e/chaos-short.test.ts).
 *
 *   npm run chaos [-- --hosts 5]
 *
 * docs/RELIABILITY.md records the last full run.
 */
import { Lab } from '../../src/lab/index.js';
import { LoomCli } from '../../src/demo/loom-cli.js';
import { killContainers } from '../helpers/underlay.js';
import { killRestart } from './kill-restart.js';

function option(name: string, fallback: number, min: number, max: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`chaos: --${name} takes an integer ${min}..${max}`);
    process.exit(2);
  }
  return v;
}

const hosts = option('hosts', 5, 3, 8);
const started = Date.now();
const lab = await Lab.create({ hosts, subnet: '192.168.89.0/24' });
let failed = false;
try {
  const cli = new LoomCli(lab);
  console.log(`== kill-restart: kill -9 of each of ${hosts} routers in turn (h1-h2 without UDP: relayed), pings between all containers, a fast-path TCP transfer across each crash`);
  const result = await killRestart(lab, cli, { victims: lab.hosts.map((_, i) => i), wholeWithinMs: 5_000, log: (line) => console.log(`  ${line}`) });
  for (const p of result.problems) console.log(`  BROKEN: ${p}`);
  failed ||= result.problems.length > 0;
  console.log(`kill-restart: ${result.problems.length === 0 ? 'every invariant held' : `${result.problems.length} invariant(s) broken`}`);
} catch (err) {
  failed = true;
  console.log(`chaos: a scenario failed to run: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  killContainers();
  await lab.destroy();
}
console.log(`chaos: ${failed ? 'FAILED' : 'passed'} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(failed ? 1 : 0);
