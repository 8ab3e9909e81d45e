#!/usr/bin/env node
// The official test run (npm test, .ci/run): unit and simulation tests in parallel files, then the
// end-to-end tests one file at a time (they build network namespaces and share the CPU).
// Runs the compiled tests in dist/ (npm test builds first). Bounded three ways: each test by
// --test-timeout (a hung test fails instead of stalling), each phase by its own limit (a file
// that never exits), and the whole run by LOOM_TEST_TIMEOUT_MS (default 30 min).
// Exits non-zero if any phase fails, times out, or reports a failure.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const timeoutMs = Number(process.env.LOOM_TEST_TIMEOUT_MS ?? 30 * 60_000);
const deadline = Date.now() + timeoutMs;

const phases = [
  { name: 'unit + sim', dirs: ['dist/test/unit', 'dist/test/sim'], args: ['--test-timeout=120000'], limitMs: 10 * 60_000 },
  { name: 'e2e', dirs: ['dist/test/e2e'], args: ['--test-concurrency=1', '--test-timeout=300000'], limitMs: 20 * 60_000 },
];

// Each phase's failures (name, file, first error line) land here, one JSON line each, from
// scripts/failures-reporter.mjs; the run ends by listing them.
const failuresDir = mkdtempSync(join(tmpdir(), 'loom-test-failures-'));
const reporter = join(root, 'scripts', 'failures-reporter.mjs');

const SUMMARY_RE = /^\s*[ℹ#]\s*(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms)\s+([0-9.]+)\s*$/;

function runPhase(phase) {
  const dirs = phase.dirs.filter((d) => existsSync(join(root, d)));
  if (dirs.length === 0) {
    console.log(`\n=== ${phase.name}: no compiled tests in ${phase.dirs.join(', ')} (run npm run build) ===`);
    return Promise.resolve({ name: phase.name, code: 1, summary: {}, timedOut: false, missing: true });
  }
  console.log(`\n=== ${phase.name}: node --test ${[...phase.args, ...dirs].join(' ')} ===`);
  return new Promise((resolve) => {
    const failuresFile = join(failuresDir, `${phase.name.replace(/[^a-z0-9]+/gi, '-')}.jsonl`);
    const reporterArgs = ['--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${reporter}`, `--test-reporter-destination=${failuresFile}`];
    const child = spawn(process.execPath, ['--test', ...reporterArgs, ...phase.args, ...dirs], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true, // its own process group, so a timeout can stop every test process
    });
    const summary = {};
    let pending = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = SUMMARY_RE.exec(line);
        if (m) summary[m[1]] = Number(m[2]);
      }
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`\nrun-tests: ${phase.name} ran out of time (phase limit ${phase.limitMs} ms, overall ${timeoutMs} ms); stopping it`);
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, 10_000).unref();
    }, Math.max(0, Math.min(deadline - Date.now(), phase.limitMs)));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const m = SUMMARY_RE.exec(pending);
      if (m) summary[m[1]] = Number(m[2]);
      resolve({ name: phase.name, code: code ?? (signal ? 1 : 0), summary, timedOut, failures: readFailures(failuresFile) });
    });
  });
}

function readFailures(file) {
  if (!existsSync(file)) return [];
  const out = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      out.push({ name: '(unreadable failure record)', file: null, nesting: 0, error: line.slice(0, 400) });
    }
  }
  return out;
}

const results = [];
for (const phase of phases) {
  if (Date.now() >= deadline) {
    results.push({ name: phase.name, code: 1, summary: {}, timedOut: true });
    continue;
  }
  results.push(await runPhase(phase));
}

rmSync(failuresDir, { recursive: true, force: true });

// The failed tests, innermost first as the runner reports them, each with its first error line:
// the last lines of a CI log are often all that is read.
const failures = results.flatMap((r) => (r.failures ?? []).map((f) => ({ ...f, phase: r.name })));
if (failures.length > 0) {
  console.log(`\n=== failed tests (${failures.length}) ===`);
  for (const f of failures) {
    const where = f.file ? ` [${relative(root, f.file.replace(/^file:\/\//, ''))}]` : '';
    console.log(`✖ ${f.phase}: ${'  '.repeat(Math.max(0, f.nesting))}${f.name}${where}`);
    console.log(`    ${f.error}`);
  }
}

console.log('\n=== summary ===');
let failed = false;
for (const r of results) {
  const s = r.summary;
  const counts = ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo'].map((k) => `${k} ${s[k] ?? '?'}`).join(', ');
  const bad = r.code !== 0 || r.timedOut || (s.fail ?? 0) > 0 || (s.cancelled ?? 0) > 0;
  failed ||= bad;
  console.log(`${bad ? 'FAIL' : 'ok  '} ${r.name}: ${counts}${r.timedOut ? ' (timed out)' : ''}${r.missing ? ' (missing)' : ''} [exit ${r.code}]`);
}
// One closing line over both phases, in the plain form CI reads ("N passed, N failed, N skipped").
const total = (k) => results.reduce((n, r) => n + (r.summary[k] ?? 0), 0);
const phaseFailures = results.filter((r) => r.code !== 0 || r.timedOut).length;
console.log(`${total('pass')} passed, ${Math.max(total('fail') + total('cancelled'), failed ? Math.max(1, phaseFailures) : 0)} failed, ${total('skipped')} skipped`);
process.exit(failed ? 1 : 0);
