/**
 * Egress without root: the rules of Loom's nftables table, the plan from any table to the wanted
 * one (checked against a small model of nft that applies ops and hands out handles, specs and
 * starting tables drawn at random), the nft arguments, the parser on real `nft -j` output, and the
 * Linux side and its controller over a recording runner and a fake clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeClock } from '../../../src/core/clock.js';
import { LoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { egressCommand, egressRules, parseEgressTable, planEgress, validateEgressSpec, type CurrentEgress, type EgressOp, type EgressSpec } from '../../../src/dataplane/egress.js';
import { LinuxEgress } from '../../../src/dataplane/linux/egress.js';
import { EgressController } from '../../../src/dataplane/controller/egress.js';
import { RecordingRunner } from '../../../src/os/runner.js';

const SPEC: EgressSpec = { range: '10.32.0.0/12', bridge: 'loom', masquerade: true };

/** What nft would hold after `ops` (handles count up per table, as nft's do). */
function applyModel(current: CurrentEgress | null, ops: readonly EgressOp[]): CurrentEgress | null {
  let state = current === null ? null : { chains: current.chains.map((c) => ({ ...c })), rules: current.rules.map((r) => ({ ...r })) };
  let next = Math.max(0, ...(state?.rules.map((r) => r.handle) ?? [])) + 1;
  for (const op of ops) {
    switch (op.op) {
      case 'add-table':
        if (state !== null) throw new Error('table exists');
        state = { chains: [], rules: [] };
        break;
      case 'delete-table':
        if (state === null) throw new Error('no table');
        state = null;
        break;
      case 'add-chain':
        if (state === null) throw new Error('no table');
        if (state.chains.length > 0) throw new Error('chain exists');
        state.chains.push({ name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100 });
        break;
      case 'add-rule':
        if (state === null || state.chains.length === 0) throw new Error('no chain');
        state.rules.push({ chain: 'postrouting', handle: next++, comment: op.rule.comment });
        break;
      case 'delete-rule': {
        if (state === null) throw new Error('no table');
        const before = state.rules.length;
        state.rules = state.rules.filter((r) => r.handle !== op.handle);
        if (state.rules.length === before) throw new Error(`no rule ${op.handle}`);
        break;
      }
    }
  }
  return state;
}

function commentsOf(state: CurrentEgress | null): string[] {
  return state === null ? [] : [...state.rules].sort((a, b) => a.handle - b.handle).map((r) => r.comment ?? '');
}

test('the rules: containers to containers return first, then masquerade the range out of any interface but the bridge', () => {
  assert.deepEqual(egressRules(SPEC), [
    { comment: 'loom: 10.32.0.0/12 to 10.32.0.0/12', words: ['ip', 'saddr', '10.32.0.0/12', 'ip', 'daddr', '10.32.0.0/12', 'return'] },
    { comment: 'loom: masquerade 10.32.0.0/12 out of !loom', words: ['ip', 'saddr', '10.32.0.0/12', 'oifname', '!=', '"loom"', 'masquerade'] },
  ]);
  assert.deepEqual(egressRules({ ...SPEC, masquerade: false }), [], '--no-masq: no rules');
  assert.deepEqual(validateEgressSpec({ ...SPEC, range: '10.32.0.0/12' }).range, '10.32.0.0/12');
  assert.throws(() => validateEgressSpec({ ...SPEC, range: '10.32.0.5/12' }), { code: 'ERR_INVALID_ARGUMENT', message: /host bits/ });
  assert.throws(() => validateEgressSpec({ ...SPEC, bridge: 'a"b; flush ruleset' }), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => validateEgressSpec({ ...SPEC, bridge: 'sixteen-letters!' }), { code: 'ERR_INVALID_ARGUMENT' });
});

test('from nothing: table, chain, both rules, as these nft arguments; then nothing more to do', () => {
  const ops = planEgress(null, SPEC);
  assert.deepEqual(ops.map(egressCommand), [
    ['add', 'table', 'ip', 'loom'],
    ['add', 'chain', 'ip', 'loom', 'postrouting', '{', 'type', 'nat', 'hook', 'postrouting', 'priority', '100', ';', 'policy', 'accept', ';', '}'],
    ['add', 'rule', 'ip', 'loom', 'postrouting', 'ip', 'saddr', '10.32.0.0/12', 'ip', 'daddr', '10.32.0.0/12', 'return', 'comment', '"loom: 10.32.0.0/12 to 10.32.0.0/12"'],
    ['add', 'rule', 'ip', 'loom', 'postrouting', 'ip', 'saddr', '10.32.0.0/12', 'oifname', '!=', '"loom"', 'masquerade', 'comment', '"loom: masquerade 10.32.0.0/12 out of !loom"'],
  ]);
  assert.deepEqual(planEgress(applyModel(null, ops), SPEC), [], 'idempotent: a second apply (a router restart) adds nothing');
  assert.deepEqual(planEgress(null, { ...SPEC, masquerade: false }), [], '--no-masq and no table: nothing');
  assert.deepEqual(planEgress(applyModel(null, ops), { ...SPEC, masquerade: false }).map(egressCommand), [['delete', 'table', 'ip', 'loom']], '--no-masq removes the table');
});

test('repairs: duplicates and strangers go, a missing rule is appended, a wrong chain recreates the table', () => {
  const chain = { name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100 };
  const [returnRule, masqRule] = egressRules(SPEC).map((r) => r.comment) as [string, string];
  const dup: CurrentEgress = { chains: [chain], rules: [{ chain: 'postrouting', handle: 2, comment: returnRule }, { chain: 'postrouting', handle: 3, comment: masqRule }, { chain: 'postrouting', handle: 4, comment: masqRule }] };
  assert.deepEqual(planEgress(dup, SPEC), [{ op: 'delete-rule', handle: 4, reason: `not wanted here: ${masqRule}` }]);
  const half: CurrentEgress = { chains: [chain], rules: [{ chain: 'postrouting', handle: 2, comment: returnRule }] };
  assert.deepEqual(planEgress(half, SPEC).map((o) => o.op), ['add-rule']);
  const swapped: CurrentEgress = { chains: [chain], rules: [{ chain: 'postrouting', handle: 2, comment: masqRule }, { chain: 'postrouting', handle: 3, comment: returnRule }] };
  assert.deepEqual(commentsOf(applyModel(swapped, planEgress(swapped, SPEC))), [returnRule, masqRule], 'the return rule always comes first');
  const otherRange: CurrentEgress = { chains: [chain], rules: egressRules({ ...SPEC, range: '10.0.0.0/8' }).map((r, i) => ({ chain: 'postrouting', handle: i + 2, comment: r.comment })) };
  assert.deepEqual(commentsOf(applyModel(otherRange, planEgress(otherRange, SPEC))), [returnRule, masqRule], 'a new --ipalloc-range replaces the rules');
  const filterChain: CurrentEgress = { chains: [{ ...chain, type: 'filter' }], rules: [] };
  assert.deepEqual(planEgress(filterChain, SPEC).map((o) => o.op), ['delete-table', 'add-table', 'add-chain', 'add-rule', 'add-rule']);
  const empty: CurrentEgress = { chains: [], rules: [] };
  assert.deepEqual(planEgress(empty, SPEC).map((o) => o.op), ['add-chain', 'add-rule', 'add-rule'], 'a table left without its chain (a crash half-way)');
});

test('property: any sequence of specs from any starting table ends in exactly the wanted rules, and a second plan is empty', () => {
  const comments = [...egressRules(SPEC), ...egressRules({ ...SPEC, bridge: 'weave' }), ...egressRules({ ...SPEC, range: '10.0.0.0/8' })].map((r) => r.comment);
  const startRule = fc.record({ chain: fc.constantFrom('postrouting', 'other'), comment: fc.option(fc.constantFrom(...comments, 'someone else'), { nil: null }) });
  const start = fc.option(
    fc.record({
      chains: fc.subarray([{ name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100 }, { name: 'other', type: 'filter', hook: 'forward', prio: 0 }]),
      rules: fc.array(startRule, { maxLength: 6 }),
    }).map((t): CurrentEgress => ({ chains: t.chains, rules: t.rules.map((r, i) => ({ ...r, handle: i + 1 })) })),
    { nil: null },
  );
  const spec = fc.record({ range: fc.constantFrom('10.32.0.0/12', '10.0.0.0/8', '172.16.0.0/16'), bridge: fc.constantFrom('loom', 'weave'), masquerade: fc.boolean() });
  fc.assert(
    fc.property(start, fc.array(spec, { minLength: 1, maxLength: 5 }), (initial, specs) => {
      let state = initial;
      for (const s of specs) {
        state = applyModel(state, planEgress(state, s));
        assert.deepEqual(commentsOf(state), egressRules(s).map((r) => r.comment));
        if (s.masquerade) assert.deepEqual(state?.chains.map((c) => c.name), ['postrouting']);
        else assert.equal(state, null);
        assert.deepEqual(planEgress(state, s), []);
      }
    }),
    { numRuns: 300 },
  );
});

/** `nft -j list table ip loom` as nft 1.0.6 printed it here after the four commands of the plan. */
const NFT_JSON = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'ip', name: 'loom', handle: 1 } },
    { chain: { family: 'ip', table: 'loom', name: 'postrouting', handle: 1, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
    { rule: { family: 'ip', table: 'loom', chain: 'postrouting', handle: 2, comment: 'loom: 10.32.0.0/12 to 10.32.0.0/12', expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: '10.32.0.0', len: 12 } } } }, { return: null }] } },
    { rule: { family: 'ip', table: 'loom', chain: 'postrouting', handle: 3, comment: 'loom: masquerade 10.32.0.0/12 out of !loom', expr: [{ masquerade: null }] } },
  ],
});

test('parse: nft JSON to the table; bad output is ERR_PROTOCOL', () => {
  const table = parseEgressTable(NFT_JSON);
  assert.deepEqual(table, {
    chains: [{ name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100 }],
    rules: [
      { chain: 'postrouting', handle: 2, comment: 'loom: 10.32.0.0/12 to 10.32.0.0/12' },
      { chain: 'postrouting', handle: 3, comment: 'loom: masquerade 10.32.0.0/12 out of !loom' },
    ],
  });
  assert.deepEqual(planEgress(table, SPEC), []);
  for (const bad of ['', 'nope', '{}', '{"nftables":5}', '{"nftables":[{"rule":{"family":"ip","table":"loom","chain":"postrouting"}}]}']) {
    assert.throws(() => parseEgressTable(bad), { code: 'ERR_PROTOCOL' }, bad);
  }
});

test('LinuxEgress: forwarding on, then only the missing steps; a restart reads the table back and runs nothing; remove deletes it', async () => {
  let table: string | null = null;
  const runner = new RecordingRunner((cmd, args) => {
    if (cmd === 'nft' && args[0] === '-j') return table === null ? { code: 1, stderr: 'Error: No such file or directory\nlist table ip loom\n' } : { stdout: table };
    return {};
  });
  const egress = new LinuxEgress({ runner, logger: silentLogger });
  const ops = await egress.apply(SPEC);
  assert.deepEqual(runner.calls.map((c) => [c.cmd, ...c.args].slice(0, 4).join(' ')), ['sysctl -q -w net.ipv4.ip_forward=1', 'nft -j list table', 'nft add table ip', 'nft add chain ip', 'nft add rule ip', 'nft add rule ip']);
  assert.equal(ops.length, 4);
  table = NFT_JSON;
  runner.calls.length = 0;
  assert.deepEqual(await egress.apply(SPEC), []);
  assert.deepEqual(runner.calls.map((c) => c.cmd), ['sysctl', 'nft'], 'a restart only reads');
  runner.calls.length = 0;
  assert.deepEqual((await egress.remove()).map(egressCommand), [['delete', 'table', 'ip', 'loom']]);
  table = null;
  assert.deepEqual(await egress.remove(), [], 'remove is idempotent');
  const broken = new LinuxEgress({ runner: new RecordingRunner((cmd) => (cmd === 'nft' ? { code: 1, stderr: 'Error: Could not process rule: Operation not permitted' } : {})), logger: silentLogger });
  await assert.rejects(broken.apply(SPEC), { code: 'ERR_OS_COMMAND', message: /Operation not permitted/ });
});

test('EgressController: a failure is reported and retried with backoff (2 s, 4 s) until it works; stop ends the retries', async () => {
  const clock = new FakeClock();
  let failures = 2;
  const applied: number[] = [];
  const applier = {
    async apply() {
      applied.push(clock.now());
      if (failures-- > 0) throw new LoomError('ERR_OS_COMMAND', 'nft: not found');
      return [];
    },
    async remove() {
      return [];
    },
  };
  const flush = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  };
  const egress = new EgressController({ applier, clock, logger: silentLogger }, SPEC);
  await egress.start();
  assert.deepEqual(egress.status(), { range: '10.32.0.0/12', masquerade: true, applied: false, attempts: 1, lastError: 'ERR_OS_COMMAND: nft: not found' });
  clock.advance(2_000);
  await flush();
  clock.advance(4_000);
  await flush();
  assert.deepEqual(applied, [0, 2_000, 6_000]);
  assert.equal(egress.status().applied, true);
  assert.equal(egress.status().lastError, null);
  egress.stop();
  assert.equal(clock.pending, 0);

  failures = 10;
  const again = new EgressController({ applier, clock, logger: silentLogger }, SPEC);
  await again.start();
  assert.equal(clock.pending, 1);
  again.stop();
  assert.equal(clock.pending, 0, 'stop cancels the retry');
});
