import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, EXIT_ERROR, EXIT_OK, EXIT_USAGE } from '../../../src/cli/run.js';
import { silentLogger } from '../../../src/core/index.js';
import { startDaemon, type RunningDaemon } from '../../../src/daemon/foreground.js';
import { parseLaunchOptions, type RawLaunchOptions } from '../../../src/daemon/options.js';
import { FakeRouter, HOST1 } from '../api/fake-router.js';
import { cliContext } from '../../helpers/cli-context.js';
import { testApiSocket } from '../../helpers/api-socket.js';

const capture = cliContext;

async function daemonIn(dir: string, raw: RawLaunchOptions = {}): Promise<RunningDaemon> {
  const config = { ...parseLaunchOptions({ stateDir: dir, nickname: 'host1', dataplane: 'off', ...raw }, [], {}, 'h'), httpPort: 0, apiSocket: testApiSocket() };
  return startDaemon({ logger: silentLogger, createRouter: () => new FakeRouter() }, config);
}

describe('loom dns commands against a live daemon API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-clidns-'));
  let daemon: RunningDaemon;
  let addr = '';
  const run = async (...argv: string[]) => {
    const ctx = capture(addr);
    const code = await runCli(argv, ctx);
    return { code, out: ctx.stdout, err: ctx.stderr };
  };
  before(async () => {
    daemon = await daemonIn(dir);
    addr = `@${daemon.apiAddress.socket!}`;
  });
  after(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('dns-add ADDRESS... -h NAME CONTAINER, then dns-lookup and status dns show them', async () => {
    assert.deepEqual(await run('dns-add', '10.32.0.5', '10.32.0.6', '-h', 'web', 'c1'), { code: EXIT_OK, out: '', err: '' });
    assert.equal((await run('dns-add', '10.32.0.7', '--hostname', 'db.loom.local')).code, EXIT_OK);
    const lookup = await run('dns-lookup', 'web');
    assert.equal(lookup.code, EXIT_OK);
    assert.deepEqual(lookup.out.trim().split('\n').sort(), ['10.32.0.5', '10.32.0.6']);
    assert.equal((await run('dns-lookup', 'db.loom.local.')).out, '10.32.0.7\n');

    const status = await run('status', 'dns');
    assert.equal(status.code, EXIT_OK);
    assert.deepEqual(status.out.split('\n').filter(Boolean).map((l) => l.split(/\s+/)), [
      ['db.loom.local', '10.32.0.7', 'extern', `${HOST1}(host1)`],
      ['web.loom.local', '10.32.0.5', 'c1', `${HOST1}(host1)`],
      ['web.loom.local', '10.32.0.6', 'c1', `${HOST1}(host1)`],
    ]);
  });

  test('dns-remove narrows by address, container and -h; a name with no records is ERR_NOT_FOUND for dns-lookup', async () => {
    assert.equal((await run('dns-remove', '10.32.0.5', 'c1')).code, EXIT_OK);
    assert.equal((await run('dns-lookup', 'web')).out, '10.32.0.6\n');
    assert.equal((await run('dns-remove', '-h', 'web')).code, EXIT_OK);
    const gone = await run('dns-lookup', 'web');
    assert.equal(gone.code, EXIT_ERROR);
    assert.match(gone.err, /^loom: ERR_NOT_FOUND: /);
    assert.equal((await run('dns-remove', 'extern')).code, EXIT_OK);
    assert.equal((await run('dns-lookup', 'db')).code, EXIT_ERROR);
    assert.equal((await run('status', 'dns')).out, '');
  });

  test('bad arguments: ERR_INVALID_ARGUMENT (exit 1) from the CLI or the daemon; missing -h is a usage error', async () => {
    for (const argv of [
      ['dns-add', 'web-container', '10.32.0.5', '-h', 'web'], // the container must come last
      ['dns-add', 'c1', '-h', 'web'], // no address
      ['dns-add', '10.32.0.5', '-h', 'web.example.com'], // outside the domain (the daemon says so)
      ['dns-add', '10.32.0.5', '-h', 'bad name'],
      ['dns-add', '10.32.0.5', '-h', 'web', 'bad/container'],
      ['dns-remove'],
    ]) {
      const r = await run(...argv);
      assert.equal(r.code, EXIT_ERROR, argv.join(' '));
      assert.match(r.err, /^loom: ERR_INVALID_ARGUMENT: /, argv.join(' '));
    }
    assert.equal((await run('dns-add', '10.32.0.5')).code, EXIT_USAGE);
    assert.equal((await run('dns-lookup')).code, EXIT_USAGE);
    const help = await run('dns-add', '--help');
    assert.equal(help.code, EXIT_OK);
    assert.match(help.out, /-h, --hostname <name>/);
  });

  test('status dns on a daemon launched with --no-dns is ERR_UNAVAILABLE', async () => {
    const off = await daemonIn(join(dir, 'off'), { dns: false });
    try {
      const ctx = capture(`@${off.apiAddress.socket!}`);
      assert.equal(await runCli(['status', 'dns'], ctx), EXIT_ERROR);
      assert.match(ctx.stderr, /^loom: ERR_UNAVAILABLE: DNS is off/);
    } finally {
      await off.stop();
    }
  });
});
