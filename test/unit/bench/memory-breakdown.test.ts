/**
 * bench/memory-breakdown.ts: the categories of a process's RSS add up to its smaps total, and the
 * node binary's share is split by section. Used here also to hold one finding of issue 14
 * ("Memory"): an HTTP answer with the router's own Date header (src/api/http-date-header.ts)
 * maps none of ICU's time-zone data, where Node's own Date header (Date#toUTCString) maps ~0.6 MB.
 * Each measurement runs in a fresh child Node that reads its own /proc files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../../src/demo/loom-cli.js';
import type { Breakdown } from '../../../bench/memory-breakdown.js';

const dist = (rel: string): string => JSON.stringify(pathToFileURL(join(repoRoot(), 'dist', rel)).href);

/** Runs `body` (an ES module body that may await) in a child Node, then prints the child's own breakdown. */
function breakdownAfter(body: string): Breakdown {
  const script = `import { residentBreakdown } from ${dist('bench/memory-breakdown.js')};\n${body}\nprocess.stdout.write(JSON.stringify(residentBreakdown(process.pid)));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Breakdown;
}

/** An HTTP server in the child answers one request of its own; `inHandler` runs first in its handler, after `imports`. */
const serveOnce = (imports: string, inHandler: string): string => `
import { createServer, get } from 'node:http';
${imports}
const server = createServer((req, res) => { ${inHandler} res.end('x'); });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const date = await new Promise((resolve, reject) => get({ host: '127.0.0.1', port: server.address().port, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.headers.date)); }).on('error', reject));
if (typeof date !== 'string') throw new Error('no Date header');
server.close();`;

test('the categories add up to the smaps total and split the node binary by section', { skip: process.platform !== 'linux' && 'Linux /proc only' }, () => {
  const b = breakdownAfter('');
  const sum = Object.values(b.kib).reduce((a, v) => a + v, 0);
  assert.ok(Math.abs(sum - b.totalKib) <= 0.01 * b.totalKib, `${sum} KiB of ${b.totalKib}`);
  for (const k of ['node: code (.text)', 'node: dynamic symbol tables', 'anonymous: malloc main arena ([heap])']) assert.ok((b.kib[k] ?? 0) > 0, k);
});

test('an answer with the router\'s own Date header maps no ICU time-zone data; Node\'s own Date header does', { skip: process.platform !== 'linux' && 'Linux /proc only' }, () => {
  const icu = (b: Breakdown): number => b.kib['node: ICU data'] ?? 0;
  const ours = breakdownAfter(serveOnce(`import { stampDate } from ${dist('src/api/http-date-header.js')};`, 'stampDate(res);'));
  const nodes = breakdownAfter(serveOnce('', ''));
  const bare = breakdownAfter('');
  assert.ok(icu(nodes) - icu(bare) > 300, `Node's Date header maps ICU data (${icu(bare)} -> ${icu(nodes)} KiB): guards against a vacuous pass`);
  assert.ok(icu(ours) - icu(bare) < 100, `the router's Date header maps none (${icu(bare)} -> ${icu(ours)} KiB)`);
});
