/**
 * bin/loom (the native front, native/loom.c, for everything it does not forward) runs the start-up bundle (scripts/build-cli.mjs, dist/src/cli/loom.cjs): help and
 * usage errors come from it alone; a command's error thrown by a lazily loaded module (the
 * client, from dist/src) still prints as "loom: CODE: message" with exit 1, not as an internal
 * error, because LoomError's instanceof spans module copies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from '../../../src/demo/loom-cli.js';
import { BUILD_ID, UNBUILT } from '../../../src/core/build-id.js';
import { restoreExtraCaCerts } from '../../../src/cli/extra-ca-certs.js';

const loom = join(repoRoot(), 'bin', 'loom');
const PATH = `${dirname(process.execPath)}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
// bin/loom is the native front (native/loom.c), which runs the bundle for all of these (none is forwarded: no router answers).
const run = (args: string[]): { status: number | null; stdout: string; stderr: string } => spawnSync(loom, args, { encoding: 'utf8', timeout: 20_000, env: { PATH } });

test('the bundle exists and is what bin/loom runs', () => {
  assert.ok(existsSync(join(repoRoot(), 'dist', 'src', 'cli', 'loom.cjs')), 'npm run build writes dist/src/cli/loom.cjs');
  const help = run(['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: loom /);
  for (const command of ['launch', 'status', 'run', 'ps', 'cni', 'demo']) assert.match(help.stdout, new RegExp(`\\n  ${command}\\b`));
});

test('a usage error is exit 2; an error from the lazily loaded client keeps its code (exit 1)', () => {
  const usage = run(['frobnicate']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /unknown command 'frobnicate'/);
  // An abstract socket nobody listens on (this process's own, unique name).
  const unreachable = run(['ps', '--api-socket', `loom-test-nobody-${process.pid}`]);
  assert.equal(unreachable.status, 1, unreachable.stderr);
  assert.match(unreachable.stderr, /^loom: ERR_UNAVAILABLE: cannot reach the router API/);
  const badPeer = run(['connect', '--api-socket', `loom-test-nobody-${process.pid}`, 'bad host:port:x']);
  assert.equal(badPeer.status, 1);
  assert.match(badPeer.stderr, /^loom: ERR_INVALID_ARGUMENT: /);
});

test('the bundle holds the hot commands\' client with this build\'s id, and no zod', () => {
  const bundle = readFileSync(join(repoRoot(), 'dist', 'src', 'cli', 'loom.cjs'), 'utf8');
  assert.notEqual(BUILD_ID, UNBUILT, 'npm run build wrote the build id (scripts/build-id.mjs)');
  assert.match(BUILD_ID, /^[0-9a-f]{16}$/);
  assert.ok(bundle.includes(`BUILD_ID = "${BUILD_ID}"`), 'the bundle names the same build as the daemon\'s modules');
  assert.ok(bundle.includes('function lightClient('), 'the light client is inside the bundle');
  assert.doesNotMatch(bundle, /node_modules[\\/]zod/, 'zod stays out');
});

test('bin/loom starts Node without NODE_EXTRA_CA_CERTS (read at start-up, ~40 ms) and puts it back for what the CLI starts', () => {
  // Node warns on stderr at start-up when the file cannot be read: no warning = not read.
  const env = { PATH, NODE_EXTRA_CA_CERTS: '/nonexistent/loom-test-ca.pem' };
  const direct = spawnSync(loom, ['--version'], { encoding: 'utf8', timeout: 20_000, env });
  assert.equal(direct.status, 0, direct.stderr);
  assert.doesNotMatch(direct.stderr, /extra certs/i);
  const viaNode = spawnSync(process.execPath, ['-e', '0'], { encoding: 'utf8', timeout: 20_000, env });
  assert.match(viaNode.stderr, /extra certs/i, 'the same variable read by a plain node (guards against a vacuous pass)');
  for (const [given, expected] of [
    [{ LOOM_NODE_EXTRA_CA_CERTS: '/etc/x b.pem' }, { NODE_EXTRA_CA_CERTS: '/etc/x b.pem' }],
    [{ LOOM_NODE_EXTRA_CA_CERTS: '' }, {}],
    [{ OTHER: '1' }, { OTHER: '1' }],
  ] as Array<[NodeJS.ProcessEnv, NodeJS.ProcessEnv]>) {
    const e = { ...given };
    restoreExtraCaCerts(e);
    assert.deepEqual(e, expected);
  }
});

test('the CLI bundle requires the daemon from its own bundle (no ES module loader in the router), which exports what launch --foreground uses', async () => {
  const cli = readFileSync(join(repoRoot(), 'dist', 'src', 'cli', 'loom.cjs'), 'utf8');
  assert.match(cli, /require\("\.\.\/daemon\/loomd\.cjs"\)/);
  assert.doesNotMatch(cli, /import\("\.\.\/daemon\/loomd\.cjs"\)/, 'an import() of the CommonJS bundle would start the ES module loader in the router');
  assert.doesNotMatch(cli, /import\("\.\.\/daemon\/(entry|foreground|router-factory)\.js"\)/, 'no second copy of the daemon from dist');
  const daemon = (await import(join(repoRoot(), 'dist', 'src', 'daemon', 'loomd.cjs'))) as Record<string, unknown>;
  for (const name of ['parseLaunchOptions', 'startDaemon', 'runUntilStopped', 'createDaemonLogger', 'createRouter', 'tuneProcessMemory', 'trimAfterStartup', 'startQuietGc', 'parseQuietGcSetting']) assert.equal(typeof daemon[name], 'function', name);
});

test('loading the daemon bundle loads no TLS, HTTPS, zlib, fs/promises or ES module loader; koffi inside it still loads its native module; Pushgateway loads on first use', () => {
  // A child Node requires the bundle the way the CLI bundle does, lists the builtins it loaded,
  // then makes a native call through the bundle's koffi and lists the mapped files.
  const script = [
    `const d = require(${JSON.stringify(join(repoRoot(), 'dist', 'src', 'daemon', 'loomd.cjs'))});`,
    'const loaded = [...process.moduleLoadList];',
    'const trimmed = d.trimMalloc();',
    "process.stdout.write(JSON.stringify({ loaded, trimmed, maps: require('fs').readFileSync('/proc/self/maps', 'utf8') }));",
  ].join('\n');
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const { loaded, trimmed, maps } = JSON.parse(r.stdout) as { loaded: string[]; trimmed: unknown; maps: string };
  assert.equal(typeof trimmed, 'boolean');
  assert.match(maps, /[\\/]node_modules[\\/]koffi[\\/]build[\\/]koffi[\\/]\w+[\\/]koffi\.node/, 'koffi\'s native module, from koffi\'s own folder');
  assert.ok(loaded.includes('NativeModule http'), 'the daemon\'s HTTP server loads (guards against a vacuous pass)');
  for (const kept of ['NativeModule https', 'NativeModule tls', 'NativeModule zlib', 'NativeModule internal/modules/esm/translators', 'NativeModule internal/fs/promises', 'NativeModule worker_threads']) assert.ok(!loaded.includes(kept), `${kept} stays out of the router's start`);
  const bundle = readFileSync(join(repoRoot(), 'dist', 'src', 'daemon', 'loomd.cjs'), 'utf8');
  // The first localeCompare or Intl object makes V8 load ICU's collation or time-zone data (~2 MB
  // of the router's RSS for good, docs/BENCHMARKS.md issue 14 "Memory").
  assert.doesNotMatch(bundle, /\.localeCompare\(|\bIntl\.|\.toLocale\w*String\(/, 'no locale-aware calls in the daemon');
  assert.match(bundle, /defineProperty\(\w+,"Pushgateway",\{enumerable:!0,get:/, 'Pushgateway is a getter that loads the client on first use');
  // esbuild's keepNames renames every function and class at run time through one helper; that cost
  // 8-9 MB of each router's idle RSS (scripts/build-cli.mjs).
  assert.doesNotMatch(bundle, /=\(\w+,\w+\)=>\w+\(\w+,"name",\{value:\w+,configurable:!0\}\)/, 'no keepNames helper in the daemon bundle');
  // zod's English messages only (the other locales were a quarter of the bundle's source).
  assert.match(bundle, /Invalid input/, 'zod\'s English messages are in');
  assert.doesNotMatch(bundle, /Ungültige Eingabe/, 'zod\'s German messages are not');
});
