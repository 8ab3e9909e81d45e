/**
 * The partition scenario's schedule (test/chaos/partition.ts planSchedule): a pure function of the
 * seed, so a failure is replayed by its seed; every partition healed; the first one one-way; moves
 * stay on one side of the partition of the moment; no host over its limit or with two live
 * containers of one name, nor a start racing the removal of its name on that host in one step;
 * moved containers keep address and name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MOBILE_SUBNET_PREFIX, describeStep, parseDigBatch, planSchedule, type Step } from '../../chaos/partition.js';

const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];

test('the same seed gives the same schedule; another seed another one', () => {
  const a = planSchedule(7, HOSTS, { steps: 40, maxPerHost: 2 }).map(describeStep);
  assert.deepEqual(planSchedule(7, HOSTS, { steps: 40, maxPerHost: 2 }).map(describeStep), a);
  assert.notDeepEqual(planSchedule(8, HOSTS, { steps: 40, maxPerHost: 2 }).map(describeStep), a);
});

test('schedules keep their rules over many seeds', () => {
  for (let seed = 0; seed < 300; seed++) {
    const steps: Step[] = planSchedule(seed, HOSTS, { steps: 30, maxPerHost: 2 });
    let sides: [string[], string[]] | null = null;
    let partitions = 0;
    const live = new Map<string, { host: string; name: string; address?: string }>();
    for (const step of steps) {
      if (step.kind === 'partition') {
        assert.equal(sides, null, `seed ${seed}: a partition while one is on`);
        if (partitions++ === 0) assert.equal(step.oneWay, true, `seed ${seed}: the first partition is one-way`);
        assert.deepEqual([...step.sides[0], ...step.sides[1]].sort(), [...HOSTS].sort());
        sides = step.sides;
      } else if (step.kind === 'heal') {
        assert.notEqual(sides, null, `seed ${seed}: a heal without a partition`);
        sides = null;
      } else {
        const touched = new Set<string>();
        const leaving = new Set<string>();
        for (const op of step.ops) {
          const label = op.container;
          assert.ok(!touched.has(label), `seed ${seed}: ${label} twice in one step`);
          touched.add(label);
          if (op.op === 'start') {
            assert.ok(!live.has(label));
            assert.ok(!leaving.has(`${op.host}/${op.name}`), `seed ${seed}: ${op.name} started on ${op.host} in the step that removes one of that name there`);
            live.set(label, { host: op.host, name: op.name, ...(op.address === undefined ? {} : { address: op.address }) });
          } else if (op.op === 'stop') {
            const c = live.get(label);
            if (c) leaving.add(`${c.host}/${c.name}`);
            assert.ok(live.delete(label), `seed ${seed}: stop of ${label}, not live`);
          } else {
            const c = live.get(label);
            assert.ok(c !== undefined, `seed ${seed}: move of ${label}, not live`);
            assert.ok(c.address?.startsWith(`${MOBILE_SUBNET_PREFIX}.`), `seed ${seed}: only static-address containers move`);
            const side = sides === null ? HOSTS : sides[0].includes(c.host) ? sides[0] : sides[1];
            assert.ok(side.includes(op.to) && op.to !== c.host, `seed ${seed}: move ${c.host} -> ${op.to} leaves its side`);
            leaving.add(`${c.host}/${c.name}`);
            live.delete(label);
            live.set(op.next, { ...c, host: op.to });
          }
        }
        for (const h of HOSTS) {
          const here = [...live.values()].filter((c) => c.host === h);
          assert.ok(here.length <= 2, `seed ${seed}: ${h} over its limit`);
          assert.equal(new Set(here.map((c) => c.name)).size, here.length, `seed ${seed}: two live containers named alike on ${h}`);
        }
      }
    }
    assert.equal(sides, null, `seed ${seed}: the schedule ends healed`);
  }
});

test('parseDigBatch reads one dig run of several names; a missing reply makes it null', () => {
  const out = [
    ';; Got answer:',
    ';; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1',
    'web.loom.local.		1	IN	A	10.32.0.1',
    'web.loom.local.		1	IN	A	10.40.0.1',
    ';; Got answer:',
    ';; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 2',
  ].join('\n');
  assert.deepEqual(parseDigBatch(out, ['web', 'db']), { web: ['10.32.0.1', '10.40.0.1'], db: [] });
  assert.equal(parseDigBatch(out, ['web', 'db', 'api']), null, 'three names asked, two replies');
  assert.equal(parseDigBatch(out.replace('NXDOMAIN', 'SERVFAIL'), ['web', 'db']), null);
});

test('holdSteps: [2, 4] is the default; [1, 1] heals after one container step; bad bounds are refused', () => {
  for (let seed = 0; seed < 50; seed++) {
    assert.deepEqual(planSchedule(seed, HOSTS, { steps: 30, maxPerHost: 2, holdSteps: [2, 4] }), planSchedule(seed, HOSTS, { steps: 30, maxPerHost: 2 }));
    const brief = planSchedule(seed, HOSTS, { steps: 30, maxPerHost: 2, holdSteps: [1, 1] });
    brief.forEach((step, i) => {
      if (step.kind !== 'partition') return;
      // At most one step of operations, then the heal (a step whose operations all fell through is left out).
      const healAt = brief.findIndex((s, j) => j > i && s.kind === 'heal');
      assert.ok(healAt > i && healAt - i <= 2, `seed ${seed}: partition at step ${i + 1} healed at step ${healAt + 1}`);
    });
    assert.ok(brief.some((s) => s.kind === 'partition'), `seed ${seed}: a partition`);
  }
  assert.throws(() => planSchedule(1, HOSTS, { steps: 30, maxPerHost: 2, holdSteps: [0, 1] }), /holdSteps/);
  assert.throws(() => planSchedule(1, HOSTS, { steps: 30, maxPerHost: 2, holdSteps: [3, 2] }), /holdSteps/);
});
