/**
 * The daemon's memory settings (issue 14 "Memory"): the Node flags and malloc variables a
 * background launch gives the daemon, and their removal from the daemon's own environment so
 * the containers it starts do not inherit them; glibc's mallopt and malloc_trim through koffi.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DAEMON_MALLOC_ENV, DAEMON_NODE_FLAGS, MALLOC_ENV_MARK, daemonNodeFlags, withDaemonMallocEnv, withExtraCaCertsHandedOver } from '../../../src/daemon/background.js';
import { repoRoot } from '../../../src/demo/loom-cli.js';
import { dropMarkedEnv } from '../../../src/daemon/process-memory.js';
import { trimMalloc, tuneMalloc } from '../../../src/os/malloc.js';

test('the daemon gets its V8 flags after the CLI\'s own, never twice, and a value the CLI set wins', () => {
  assert.deepEqual(daemonNodeFlags([]), [...DAEMON_NODE_FLAGS]);
  assert.deepEqual(daemonNodeFlags(['--import', 'tsx']), ['--import', 'tsx', ...DAEMON_NODE_FLAGS]);
  assert.deepEqual(daemonNodeFlags(['--max-semi-space-size=8']), ['--max-semi-space-size=8']);
});

test('the malloc variables a launch adds are marked, one the user set is kept, and the daemon drops only the marked ones', () => {
  const added = withDaemonMallocEnv({ PATH: '/bin' });
  assert.equal(added['MALLOC_ARENA_MAX'], DAEMON_MALLOC_ENV['MALLOC_ARENA_MAX']);
  assert.equal(added['MALLOC_TRIM_THRESHOLD_'], DAEMON_MALLOC_ENV['MALLOC_TRIM_THRESHOLD_']);
  assert.equal(added[MALLOC_ENV_MARK], 'MALLOC_ARENA_MAX,MALLOC_TRIM_THRESHOLD_');

  const user = withDaemonMallocEnv({ PATH: '/bin', MALLOC_ARENA_MAX: '4' });
  assert.equal(user['MALLOC_ARENA_MAX'], '4');
  assert.equal(user[MALLOC_ENV_MARK], 'MALLOC_TRIM_THRESHOLD_');
  assert.deepEqual(dropMarkedEnv(user, MALLOC_ENV_MARK), ['MALLOC_TRIM_THRESHOLD_']);
  assert.deepEqual(user, { PATH: '/bin', MALLOC_ARENA_MAX: '4' });

  const all = withDaemonMallocEnv({ MALLOC_ARENA_MAX: '4', MALLOC_TRIM_THRESHOLD_: '0' });
  assert.equal(all[MALLOC_ENV_MARK], undefined, 'nothing added, nothing marked');

  // A mark naming anything but a MALLOC_ variable removes only the mark.
  const odd: NodeJS.ProcessEnv = { PATH: '/bin', [MALLOC_ENV_MARK]: 'PATH,LD_PRELOAD' };
  assert.deepEqual(dropMarkedEnv(odd, MALLOC_ENV_MARK), []);
  assert.deepEqual(odd, { PATH: '/bin' });
});

test('the daemon\'s Node starts without NODE_EXTRA_CA_CERTS, and what it starts gets the variable back', () => {
  const none = { PATH: '/bin' };
  assert.equal(withExtraCaCertsHandedOver(none), none);
  assert.deepEqual(withExtraCaCertsHandedOver({ PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/x b.pem' }), { PATH: '/bin', LOOM_NODE_EXTRA_CA_CERTS: '/etc/x b.pem' });

  // The real thing: Node warns at start-up when it cannot load the file, so a missing file shows
  // who read it. The "daemon" (started with the handed-over environment) runs the CLI's
  // restoreExtraCaCerts, as cli/main.ts does, and starts a child.
  const restore = pathToFileURL(join(repoRoot(), 'dist', 'src', 'cli', 'extra-ca-certs.js')).href;
  const script = `import { restoreExtraCaCerts } from ${JSON.stringify(restore)};
import { spawnSync } from 'node:child_process';
restoreExtraCaCerts(process.env);
const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(process.env.NODE_EXTRA_CA_CERTS ?? "unset")'], { encoding: 'utf8' });
process.stdout.write(JSON.stringify({ child: child.stdout, childWarned: /extra certs/i.test(child.stderr) }));`;
  const missing = '/nonexistent/loom-test-ca.pem';
  const daemon = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, env: withExtraCaCertsHandedOver({ PATH: process.env['PATH'], NODE_EXTRA_CA_CERTS: missing }) });
  assert.equal(daemon.status, 0, daemon.stderr);
  assert.doesNotMatch(daemon.stderr, /extra certs/i, 'the daemon\'s Node did not read the file');
  assert.deepEqual(JSON.parse(daemon.stdout), { child: missing, childWarned: true });
});

test('glibc takes the arena and trim settings, and malloc_trim runs', { skip: process.platform !== 'linux' && 'glibc only' }, () => {
  assert.equal(tuneMalloc(), true);
  assert.equal(typeof trimMalloc(), 'boolean');
});
