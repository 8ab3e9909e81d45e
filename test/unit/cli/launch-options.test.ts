import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, EXIT_ERROR } from '../../../src/cli/run.js';
import type { CliContext } from '../../../src/cli/context.js';
import { LoomError } from '../../../src/core/errors.js';
import { foregroundArgs, type LaunchConfig } from '../../../src/daemon/options.js';

/**
 * Runs `loom launch --foreground ...` up to the router factory, which keeps the config it was
 * given and refuses to build a router (so nothing listens). Returns that config.
 */
async function launchConfigOf(argv: string[]): Promise<{ config: LaunchConfig | null; code: number; err: string }> {
  let config: LaunchConfig | null = null;
  let err = '';
  const ctx: CliContext = {
    out: () => {},
    err: (t) => void (err += t),
    env: {},
    node: [process.execPath],
    entry: '/nonexistent',
    loadRouterFactory: async () => (c) => {
      config = c;
      throw new LoomError('ERR_UNAVAILABLE', 'captured');
    },
  };
  const code = await runCli(['launch', '--foreground', ...argv], ctx);
  return { config, code, err };
}

test('launch DNS options reach the daemon config, and the background re-execution arguments reproduce it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-launchopts-'));
  try {
    const first = await launchConfigOf([
      '--state-dir', dir, '--http-addr', '127.0.0.1:1',
      '--dns-listen-address', '10.32.0.1,10.40.0.1', '--dns-domain', 'weave.local.', '--dns-ttl', '5', '--dns-resolv-conf', '/tmp/r.conf',
      '10.0.0.2',
    ]);
    assert.match(first.err, /captured/);
    assert.deepEqual(first.config?.dns, { enabled: true, listenAddresses: ['10.32.0.1', '10.40.0.1'], domain: 'weave.local', ttlSeconds: 5, resolvConf: '/tmp/r.conf', udpPath: 'auto', nativeResponder: true });
    const again = await launchConfigOf(foregroundArgs(first.config).slice(2));
    assert.deepEqual(again.config, first.config);

    const off = await launchConfigOf(['--state-dir', dir, '--no-dns']);
    assert.equal(off.config?.dns.enabled, false);
    assert.equal((await launchConfigOf(foregroundArgs(off.config).slice(2))).config?.dns.enabled, false);

    const bad = await launchConfigOf(['--state-dir', dir, '--dns-ttl', 'soon']);
    assert.equal(bad.code, EXIT_ERROR);
    assert.equal(bad.config, null);
    assert.match(bad.err, /^loom: ERR_INVALID_ARGUMENT: invalid --dns-ttl/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('launch --no-masq reaches the data plane config (masquerade off) and survives the background re-execution', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-launchopts-'));
  try {
    const byDefault = await launchConfigOf(['--state-dir', dir]);
    assert.equal(byDefault.config?.dataplane.masquerade, true);
    const off = await launchConfigOf(['--state-dir', dir, '--no-masq']);
    assert.equal(off.config?.dataplane.masquerade, false);
    assert.ok(foregroundArgs(off.config).includes('--no-masq'));
    assert.equal((await launchConfigOf(foregroundArgs(off.config).slice(2))).config?.dataplane.masquerade, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('launch --log-level reaches the daemon config and the background re-execution; a bad level is a clear CLI error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-launchopts-'));
  try {
    const debug = await launchConfigOf(['--state-dir', dir, '--log-level', 'debug']);
    assert.equal(debug.config?.logLevel, 'debug');
    assert.equal((await launchConfigOf(foregroundArgs(debug.config).slice(2))).config?.logLevel, 'debug');
    const bad = await launchConfigOf(['--state-dir', dir, '--log-level', 'chatty']);
    assert.equal(bad.code, EXIT_ERROR);
    assert.equal(bad.config, null);
    assert.equal(bad.err, 'loom: ERR_INVALID_ARGUMENT: invalid --log-level "chatty": expected debug, info, warn, error\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
