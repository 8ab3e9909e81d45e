/**
 * The test lab's pure parts and the commands it issues, without root: a RecordingRunner stands
 * in for the OS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingRunner } from '../../../src/os/runner.js';
import { Lab, subnetBase, blockRules, labFirewallSetup, ruleHandlesTagged, parseNetnsList, parseOwnerRecord, selectStale, type OwnerRecord } from '../../../src/lab/index.js';

const PREFIX = 'lm0a1b2c';

test('blockRules: a port block drops both directions on either side of the port, tagged', () => {
  const text = blockRules({ kind: 'tcp', a: '192.168.1.1', b: '192.168.1.3', port: 6783 }, 'lab-b7');
  const lines = text.trim().split('\n');
  assert.equal(lines.length, 4);
  for (const l of lines) assert.match(l, /^add rule bridge loomlab forward ip saddr 192\.168\.1\.[13] ip daddr 192\.168\.1\.[13] tcp [sd]port 6783 drop comment "lab-b7"$/);
  assert.ok(lines.some((l) => l.includes('saddr 192.168.1.3 ip daddr 192.168.1.1 tcp dport')));
  assert.ok(lines.some((l) => l.includes('saddr 192.168.1.1 ip daddr 192.168.1.3 tcp sport')));
});

test('blockRules: a whole-protocol block and a partition', () => {
  assert.equal(
    blockRules({ kind: 'udp', a: '10.0.0.1', b: '10.0.0.2' }, 'lab-b1'),
    'add rule bridge loomlab forward ip saddr 10.0.0.1 ip daddr 10.0.0.2 ip protocol udp drop comment "lab-b1"\n' +
      'add rule bridge loomlab forward ip saddr 10.0.0.2 ip daddr 10.0.0.1 ip protocol udp drop comment "lab-b1"\n',
  );
  const p = blockRules({ kind: 'partition', groupA: ['10.0.0.1'], groupB: ['10.0.0.2', '10.0.0.3'] }, 'lab-b2');
  assert.equal(p.trim().split('\n').length, 2);
  assert.match(p, /ip saddr 10\.0\.0\.1 ip daddr \{ 10\.0\.0\.2, 10\.0\.0\.3 \} drop/);
  assert.match(p, /ip saddr \{ 10\.0\.0\.2, 10\.0\.0\.3 \} ip daddr 10\.0\.0\.1 drop/);
  const oneway = blockRules({ kind: 'oneway', from: ['10.0.0.1', '10.0.0.4'], to: ['10.0.0.2'] }, 'lab-b3');
  assert.equal(oneway, 'add rule bridge loomlab forward ip saddr { 10.0.0.1, 10.0.0.4 } ip daddr 10.0.0.2 drop comment "lab-b3"\n', 'one direction only');
  assert.match(labFirewallSetup(), /table bridge loomlab \{\n  chain forward \{ type filter hook forward priority 0; policy accept; \}/);
});

test('blockRules: refuses input that is not an address, port or tag (no nft injection)', () => {
  const bad = [
    () => blockRules({ kind: 'tcp', a: '10.0.0.1; flush ruleset', b: '10.0.0.2' }, 'lab-b1'),
    () => blockRules({ kind: 'tcp', a: '10.0.0.1', b: '10.0.0.1' }, 'lab-b1'),
    () => blockRules({ kind: 'tcp', a: '10.0.0.1', b: '10.0.0.2', port: 0 }, 'lab-b1'),
    () => blockRules({ kind: 'udp', a: '10.0.0.1', b: '10.0.0.2', port: 70000 }, 'lab-b1'),
    () => blockRules({ kind: 'tcp', a: '256.0.0.1', b: '10.0.0.2' }, 'lab-b1'),
    () => blockRules({ kind: 'partition', groupA: [], groupB: ['10.0.0.2'] }, 'lab-b1'),
    () => blockRules({ kind: 'partition', groupA: ['10.0.0.2'], groupB: ['10.0.0.2'] }, 'lab-b1'),
    () => blockRules({ kind: 'oneway', from: ['10.0.0.2'], to: ['10.0.0.2', '10.0.0.3'] }, 'lab-b1'),
    () => blockRules({ kind: 'oneway', from: [], to: ['10.0.0.3'] }, 'lab-b1'),
    () => blockRules({ kind: 'tcp', a: '10.0.0.1', b: '10.0.0.2' }, 'x" drop; flush ruleset #'),
  ];
  for (const f of bad) assert.throws(f, { code: 'ERR_INVALID_ARGUMENT' });
});

test('ruleHandlesTagged picks the handles of one tag from nft JSON; non-JSON is ERR_PROTOCOL', () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { chain: { family: 'bridge', table: 'loomlab', name: 'forward', handle: 1 } },
      { rule: { handle: 3, comment: 'lab-b1', expr: [] } },
      { rule: { handle: 4, comment: 'lab-b2', expr: [] } },
      { rule: { handle: 5, comment: 'lab-b1', expr: [] } },
      { rule: { handle: 6, expr: [] } },
    ],
  });
  assert.deepEqual(ruleHandlesTagged(json, 'lab-b1'), [3, 5]);
  assert.deepEqual(ruleHandlesTagged(json, 'lab-b9'), []);
  assert.throws(() => ruleHandlesTagged('Error: No such file or directory', 'lab-b1'), { code: 'ERR_PROTOCOL' });
  assert.throws(() => ruleHandlesTagged('{"x":1}', 'lab-b1'), { code: 'ERR_PROTOCOL' });
  assert.throws(() => ruleHandlesTagged('null', 'lab-b1'), { code: 'ERR_PROTOCOL' });
});

test('subnetBase accepts private /24s only', () => {
  assert.equal(subnetBase('192.168.77.0/24'), '192.168.77');
  assert.equal(subnetBase('10.20.30.0/24'), '10.20.30');
  assert.equal(subnetBase('172.16.5.0/24'), '172.16.5');
  for (const bad of ['8.8.8.0/24', '192.168.1.0/16', '192.168.1.5/24', '172.32.0.0/24', '192.168.300.0/24', '']) {
    assert.throws(() => subnetBase(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad);
  }
});

test('owner records and stale selection: only lab namespaces whose recorded owner is dead', () => {
  assert.deepEqual(parseOwnerRecord('1234 98765\n'), { pid: 1234, startTime: 98765, kept: false });
  assert.deepEqual(parseOwnerRecord('1234\n'), { pid: 1234, startTime: null, kept: false });
  assert.deepEqual(parseOwnerRecord('1234 98765 kept\n'), { pid: 1234, startTime: 98765, kept: true });
  assert.equal(parseOwnerRecord('garbage'), null);
  assert.equal(parseOwnerRecord(''), null);
  assert.deepEqual(parseNetnsList('lm000001-h1 (id: 2)\nlm000001-ul (id: 1)\nother\n\n'), ['lm000001-h1', 'lm000001-ul', 'other']);

  const records: Record<string, OwnerRecord> = {
    lm000001: { pid: 11, startTime: 1, kept: false },
    lm000002: { pid: 22, startTime: 2, kept: false },
    lm000004: { pid: 44, startTime: 4, kept: true },
  };
  const dead = new Set([11, 44]);
  const names = ['lm000001-h1', 'lm000001-ul', 'lm000002-h1', 'lm000003-h1', 'lm000004-h1', 'lmzzzzzz-h1', 'docker-ns', 'lm000001'];
  const stale = selectStale(names, (p) => records[p] ?? null, (o) => !dead.has(o.pid));
  assert.deepEqual([...stale.entries()], [['lm000001', ['lm000001-h1', 'lm000001-ul']]], 'a kept demo lab is not stale for test runs');
  const withKept = selectStale(names, (p) => records[p] ?? null, (o) => !dead.has(o.pid), undefined, true);
  assert.deepEqual([...withKept.keys()], ['lm000001', 'lm000004'], '`loom demo --clean` includes kept labs');
  const narrowed = selectStale(names, (p) => records[p] ?? null, () => false, /^lm000002-/);
  assert.deepEqual([...narrowed.keys()], ['lm000002']);
});

test('Lab.create issues namespace-scoped commands only, in order, and never touches the root namespace', async () => {
  const runner = new RecordingRunner();
  const lab = await Lab.create({ prefix: PREFIX, hosts: 2, subnet: '192.168.50.0/24', runner });
  assert.deepEqual(lab.namespaces(), [`${PREFIX}-h1`, `${PREFIX}-h2`, `${PREFIX}-ul`]);
  assert.deepEqual(lab.hosts.map((h) => h.address), ['192.168.50.1', '192.168.50.2']);
  for (const call of runner.calls) {
    const inLab = call.netns?.startsWith(`${PREFIX}-`) === true;
    const scoped = call.cmd === 'ip' && call.args[0] === '-n' && call.args[1]?.startsWith(`${PREFIX}-`) === true;
    const nsOp = call.cmd === 'ip' && call.args[0] === 'netns' && call.args[2]?.startsWith(`${PREFIX}-`) === true;
    assert.ok(inLab || scoped || nsOp, `root-namespace command: ${call.cmd} ${call.args.join(' ')}`);
  }
  const flat = runner.calls.map((c) => `${c.netns ? `[${c.netns}] ` : ''}${c.cmd} ${c.args.join(' ')}`);
  assert.equal(flat[0], `ip netns add ${PREFIX}-ul`);
  assert.ok(flat.includes(`ip -n ${PREFIX}-ul link add h2 mtu 1500 type veth peer name eth0 netns ${PREFIX}-h2`));
  assert.ok(flat.includes(`ip -n ${PREFIX}-h2 addr add 192.168.50.2/24 dev eth0`));
  assert.ok(flat.includes(`[${PREFIX}-h1] sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0`));
  assert.ok(flat.indexOf(`[${PREFIX}-h1] sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0`) < flat.indexOf(`ip -n ${PREFIX}-ul link add h1 mtu 1500 type veth peer name eth0 netns ${PREFIX}-h1`), 'rp_filter default is set before eth0 exists');

  runner.calls.length = 0;
  await lab.destroy();
  assert.deepEqual(runner.calls.map((c) => c.args.join(' ')), [`netns del ${PREFIX}-h2`, `netns del ${PREFIX}-h1`, `netns del ${PREFIX}-ul`]);
  await lab.destroy();
  assert.equal(runner.calls.length, 3, 'destroy is idempotent');
});

test('Lab.create removes what it made when a step fails, and reports ERR_OS_COMMAND', async () => {
  const runner = new RecordingRunner((cmd, args) => (cmd === 'ip' && args.join(' ') === `netns add ${PREFIX}-h2` ? { code: 1, stderr: 'File exists' } : {}));
  await assert.rejects(Lab.create({ prefix: PREFIX, hosts: 3, runner }), { code: 'ERR_OS_COMMAND' });
  const dels = runner.calls.filter((c) => c.args[0] === 'netns' && c.args[1] === 'del').map((c) => c.args[2]);
  assert.deepEqual(dels, [`${PREFIX}-h1`, `${PREFIX}-ul`], 'only the namespaces it created');
});

test('Lab.create rejects bad options with ERR_INVALID_ARGUMENT before running anything', async () => {
  const runner = new RecordingRunner();
  for (const opts of [{ hosts: 0 }, { hosts: 251 }, { hosts: 2, prefix: 'lab1' }, { hosts: 2, prefix: 'lm00000g' }, { hosts: 2, subnet: '1.2.3.0/24' }, { hosts: 2, mtu: 100 }]) {
    await assert.rejects(Lab.create({ ...opts, runner }), { code: 'ERR_INVALID_ARGUMENT' }, JSON.stringify(opts));
  }
  assert.equal(runner.calls.length, 0);
});

test('blocks go to the underlay as nft scripts; unblock deletes exactly the tagged handles', async () => {
  const listing = JSON.stringify({ nftables: [{ rule: { handle: 7, comment: 'lab-b2' } }, { rule: { handle: 8, comment: 'lab-b1' } }, { rule: { handle: 9, comment: 'lab-b2' } }] });
  const inputs: string[] = [];
  const runner = new RecordingRunner((cmd, args) => (cmd === 'nft' && args[0] === '-j' ? { stdout: listing } : {}));
  const run = runner.run.bind(runner);
  runner.run = async (cmd, args, options = {}) => {
    if (options.input !== undefined) inputs.push(options.input);
    return run(cmd, args, options);
  };
  const lab = await Lab.create({ prefix: PREFIX, hosts: 3, runner });
  inputs.length = 0;
  runner.calls.length = 0;
  const first = await lab.blockTcp('h1', 3, 6783);
  const second = await lab.partition(['h1'], ['h2', 'h3']);
  assert.equal(first.tag, 'lab-b1');
  assert.equal(second.tag, 'lab-b2');
  assert.ok(runner.calls.every((c) => c.cmd === 'nft' && c.netns === `${PREFIX}-ul`));
  assert.match(inputs[0]!, /ip saddr 192\.168\.77\.1 ip daddr 192\.168\.77\.3 tcp dport 6783 drop comment "lab-b1"/);
  assert.match(inputs[1]!, /ip saddr 192\.168\.77\.1 ip daddr \{ 192\.168\.77\.2, 192\.168\.77\.3 \} drop comment "lab-b2"/);
  await lab.unblock(second);
  assert.equal(inputs[2], 'delete rule bridge loomlab forward handle 7\ndelete rule bridge loomlab forward handle 9\n');
  await lab.unblock();
  assert.deepEqual(runner.calls.at(-1)?.args, ['flush', 'chain', 'bridge', 'loomlab', 'forward']);
  assert.throws(() => lab.host('h4'), { code: 'ERR_NOT_FOUND' });
  await assert.rejects(lab.blockUdp('h1', 'h9'), { code: 'ERR_NOT_FOUND' });
  await lab.destroy();
});
