import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyGuard, guardScript, type GuardSpec } from '../../../src/dataplane/linux/guard.js';
import type { CommandRunner, RunOptions } from '../../../src/os/runner.js';

const base: GuardSpec = { bridge: 'loom', tcpPorts: [6783, 6784], udpPorts: [6783, 4789], vxlanPort: 4789, sealed: false, trustedSubnets: [] };

test('the guard closes the mesh, API, data and VXLAN ports to the bridge, in one idempotent transaction', () => {
  const script = guardScript(base);
  const lines = script.split('\n');
  // Created, deleted, written whole: applying it again replaces the table, never duplicates rules.
  assert.deepEqual(lines.slice(0, 3), ['table inet loom-guard', 'delete table inet loom-guard', 'table inet loom-guard {']);
  assert.ok(lines.includes('    type filter hook input priority filter; policy accept;'));
  assert.ok(lines.includes('    iifname "loom" tcp dport { 6783, 6784 } counter reject with tcp reset'));
  assert.ok(lines.includes('    iifname "loom" udp dport { 4789, 6783 } counter drop'));
  assert.ok(!script.includes('53'), 'DNS on the bridge address stays open');
  assert.ok(!script.includes('saddr'), 'without a password the VXLAN port stays open to the network (the fast path)');
});

test('with a password the VXLAN port takes only loopback and the trusted subnets', () => {
  assert.ok(guardScript({ ...base, sealed: true }).includes('    udp dport 4789 ip saddr != { 127.0.0.0/8 } counter drop\n'));
  assert.ok(guardScript({ ...base, sealed: true, trustedSubnets: ['192.168.0.0/16', '10.1.0.0/24'] }).includes('udp dport 4789 ip saddr != { 127.0.0.0/8, 192.168.0.0/16, 10.1.0.0/24 } counter drop'));
});

test('one port is written without braces, and repeated ports once', () => {
  assert.ok(guardScript({ ...base, tcpPorts: [7000, 7000] }).includes('tcp dport 7000 counter reject'));
});

test('applyGuard hands the script to nft -f - on stdin', async () => {
  const calls: Array<{ cmd: string; args: readonly string[]; input: string | undefined }> = [];
  const runner: CommandRunner = {
    run: (cmd: string, args: readonly string[], options: RunOptions = {}) => {
      calls.push({ cmd, args, input: options.input });
      return Promise.resolve({ code: 0, stdout: '', stderr: '' });
    },
  };
  await applyGuard(runner, base);
  assert.deepEqual(calls, [{ cmd: 'nft', args: ['-f', '-'], input: guardScript(base) }]);
});
