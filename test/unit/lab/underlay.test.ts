/**
 * The lab's underlay conditions without root: the nft text of degradations and of the fragment
 * counter, the reader of nft's counter JSON, and the commands `realisticWire`, `mtu`, `degrade`
 * and `underlayCounts` issue (a RecordingRunner stands in for the OS).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingRunner } from '../../../src/os/runner.js';
import { Lab, counterPackets, degradeRules, labFirewallSetup } from '../../../src/lab/index.js';

const PREFIX = 'lm0d0e0f';

test('degradeRules: fragments dropped and random loss, IPv4 only, tagged', () => {
  assert.equal(
    degradeRules({ dropFragments: true }, 'lab-b3'),
    'add rule bridge loomlab forward ip frag-off & 0x3fff != 0 drop comment "lab-b3"\n',
  );
  assert.equal(
    degradeRules({ lossPercent: 1 }, 'lab-b4'),
    'add rule bridge loomlab forward ether type ip numgen random mod 100 < 1 drop comment "lab-b4"\n',
  );
  assert.equal(
    degradeRules({ lossPercent: 0.5 }, 'lab-b5'),
    'add rule bridge loomlab forward ether type ip numgen random mod 10000 < 50 drop comment "lab-b5"\n',
  );
  const both = degradeRules({ dropFragments: true, lossPercent: 2 }, 'lab-b6').trim().split('\n');
  assert.equal(both.length, 2);
  assert.ok(both.every((l) => l.endsWith('drop comment "lab-b6"')));
});

test('degradeRules: refuses an empty spec, a loss out of range or too precise, a bad tag', () => {
  const bad = [
    () => degradeRules({}, 'lab-b1'),
    () => degradeRules({ dropFragments: false }, 'lab-b1'),
    () => degradeRules({ lossPercent: 0 }, 'lab-b1'),
    () => degradeRules({ lossPercent: 100 }, 'lab-b1'),
    () => degradeRules({ lossPercent: -1 }, 'lab-b1'),
    () => degradeRules({ lossPercent: 0.125 }, 'lab-b1'),
    () => degradeRules({ lossPercent: Number.NaN }, 'lab-b1'),
    () => degradeRules({ dropFragments: true }, 'x" drop; flush ruleset #'),
  ];
  for (const f of bad) assert.throws(f, { code: 'ERR_INVALID_ARGUMENT' });
});

test('the setup counts fragments and packets in a chain that runs before the drop chain', () => {
  const text = labFirewallSetup();
  assert.match(text, /counter ipv4_fragments \{ \}/);
  assert.match(text, /chain count \{\n    type filter hook forward priority -10; policy accept;\n    ether type ip counter name "ipv4_packets"\n    ip frag-off & 0x3fff != 0 counter name "ipv4_fragments"\n  \}/);
  assert.match(text, /chain forward \{ type filter hook forward priority 0; policy accept; \}/);
});

test('counterPackets reads one named counter from nft JSON; anything else is ERR_PROTOCOL', () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { counter: { family: 'bridge', name: 'ipv4_fragments', table: 'loomlab', handle: 2, packets: 27, bytes: 27612 } },
    ],
  });
  assert.equal(counterPackets(json, 'ipv4_fragments'), 27);
  assert.throws(() => counterPackets(json, 'ipv4_packets'), { code: 'ERR_PROTOCOL' });
  assert.throws(() => counterPackets('Error: No such file or directory', 'x'), { code: 'ERR_PROTOCOL' });
  assert.throws(() => counterPackets('{"nftables":[{"counter":{"name":"x","packets":-1}}]}', 'x'), { code: 'ERR_PROTOCOL' });
  assert.throws(() => counterPackets('{"nftables":[{"counter":{"name":"x"}}]}', 'x'), { code: 'ERR_PROTOCOL' });
});

test('mtu goes on br0 and both veth ends; realisticWire caps gso_max_segs on both ends', async () => {
  const runner = new RecordingRunner();
  await Lab.create({ prefix: PREFIX, hosts: 2, mtu: 1400, realisticWire: true, runner });
  const flat = runner.calls.map((c) => `${c.cmd} ${c.args.join(' ')}`);
  assert.ok(flat.includes(`ip -n ${PREFIX}-ul link set br0 mtu 1400`));
  for (const n of [1, 2]) {
    assert.ok(flat.includes(`ip -n ${PREFIX}-ul link add h${n} mtu 1400 type veth peer name eth0 netns ${PREFIX}-h${n}`));
    assert.ok(flat.includes(`ip -n ${PREFIX}-ul link set h${n} master br0 gso_max_segs 1 up`));
    assert.ok(flat.includes(`ip -n ${PREFIX}-h${n} link set eth0 mtu 1400 gso_max_segs 1 up`));
  }
  const plain = new RecordingRunner();
  await Lab.create({ prefix: PREFIX, hosts: 1, runner: plain });
  assert.ok(!plain.calls.some((c) => c.args.includes('gso_max_segs')), 'the default lab leaves GSO alone');
});

test('degrade goes to the underlay as a tagged nft script, lifted by unblock; counts are read from nft JSON', async () => {
  const inputs: string[] = [];
  const counters: Record<string, number> = { ipv4_fragments: 5, ipv4_packets: 100 };
  const runner = new RecordingRunner((cmd, args) => {
    if (cmd === 'nft' && args[0] === '-j' && args[1] === 'list' && args[2] === 'counter') {
      const name = args[5] ?? '';
      return { stdout: JSON.stringify({ nftables: [{ counter: { name, packets: counters[name] ?? 0, bytes: 0 } }] }) };
    }
    if (cmd === 'nft' && args[0] === '-j') return { stdout: JSON.stringify({ nftables: [{ rule: { handle: 11, comment: 'lab-b1' } }] }) };
    return {};
  });
  const run = runner.run.bind(runner);
  runner.run = async (cmd, args, options = {}) => {
    if (options.input !== undefined) inputs.push(options.input);
    return run(cmd, args, options);
  };
  const lab = await Lab.create({ prefix: PREFIX, hosts: 2, runner });
  inputs.length = 0;
  runner.calls.length = 0;
  const d = await lab.degrade({ dropFragments: true, lossPercent: 1 });
  assert.equal(d.tag, 'lab-b1');
  assert.match(inputs[0]!, /ip frag-off & 0x3fff != 0 drop comment "lab-b1"\n.*numgen random mod 100 < 1 drop comment "lab-b1"\n$/);
  assert.ok(runner.calls.every((c) => c.cmd === 'nft' && c.netns === `${PREFIX}-ul`));
  assert.deepEqual(await lab.underlayCounts(), { fragments: 5, packets: 100 });
  const counter = await lab.fragmentCounter();
  counters['ipv4_fragments'] = 12;
  assert.equal(await counter.read(), 7);
  assert.equal(await lab.countFragments(), 12);
  assert.deepEqual(runner.calls.find((c) => c.args[2] === 'counter')?.args, ['-j', 'list', 'counter', 'bridge', 'loomlab', 'ipv4_fragments']);
  await lab.unblock(d);
  assert.equal(inputs.at(-1), 'delete rule bridge loomlab forward handle 11\n');
  await lab.destroy();
});
