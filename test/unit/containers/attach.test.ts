/**
 * attachNetwork over the in-memory link door (no root): the operations of a new attach in order,
 * an idempotent second attach, `exclusive`, the pair deleted when a later step fails, and the
 * bounded wait for the bridge port to forward.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachNetwork } from '../../../src/containers/attach.js';
import { FakeClock } from '../../../src/core/clock.js';
import { isLoomError } from '../../../src/core/errors.js';
import { parseCidr } from '../../../src/core/net.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';

const target = { path: '/run/netns/pod1' };
const spec = { target, cidr: parseCidr('10.32.0.5/12'), mac: '02:aa:00:00:00:05', bridge: 'loom', mtu: 1376, hostVeth: 'vlmpod1', gateway: '10.32.0.1' };

test('a new attach: veth with its peer made in the namespace, then arp_notify, address, lo, link, routes, and the MAC again once the port forwards', async () => {
  const links = new MemoryNetnsLinks();
  const bridge = links.ns(null).links.get('loom')!;
  const result = await attachNetwork({ links, clock: new FakeClock() }, spec);
  assert.deepEqual(result, { hostVeth: 'vlmpod1', mac: '02:aa:00:00:00:05' });
  assert.deepEqual(links.ops, [
    `host: create veth vlmpod1 mtu 1376 master #${bridge.index} up, peer ethwe mtu 1376 address 02:aa:00:00:00:05 in /run/netns/pod1`,
    '/run/netns/pod1: arp_notify=1 on ethwe',
    '/run/netns/pod1: addr add 10.32.0.5/12 dev ethwe',
    '/run/netns/pod1: set lo up',
    '/run/netns/pod1: set ethwe up',
    '/run/netns/pod1: route replace 224.0.0.0/4 dev ethwe',
    '/run/netns/pod1: route replace default via 10.32.0.1 dev ethwe',
    '/run/netns/pod1: set ethwe address 02:aa:00:00:00:05',
  ]);
  const ethwe = links.ns(target).links.get('ethwe')!;
  assert.equal(ethwe.up, true);
  assert.equal(links.ns(target).links.get('lo')!.up, true);
  assert.equal(links.handlesOpen, 0, 'both handles closed');
});

test('attach again: only a missing address is added; the same one changes nothing; exclusive refuses', async () => {
  const links = new MemoryNetnsLinks();
  const clock = new FakeClock();
  await attachNetwork({ links, clock }, spec);
  links.ops.length = 0;
  const again = await attachNetwork({ links, clock }, spec);
  assert.deepEqual(again, { hostVeth: null, mac: '02:aa:00:00:00:05' });
  assert.deepEqual(links.ops, [], 'idempotent');
  await attachNetwork({ links, clock }, { ...spec, cidr: parseCidr('10.40.0.5/12') });
  assert.deepEqual(links.ops, ['/run/netns/pod1: addr add 10.40.0.5/12 dev ethwe']);
  await assert.rejects(attachNetwork({ links, clock }, { ...spec, exclusive: true }), (e) => isLoomError(e, 'ERR_CONFLICT'));
  assert.equal(links.handlesOpen, 0);
});

test('a step failing after the pair exists deletes the pair (host end and peer) and reports the failure', async () => {
  for (const step of [/arp_notify/, /addr add/, /set lo up/, /set ethwe up/, /route replace 224/, /route replace default/, /set ethwe address/]) {
    const links = new MemoryNetnsLinks();
    links.failOn = step;
    await assert.rejects(attachNetwork({ links, clock: new FakeClock() }, spec), (e) => isLoomError(e, 'ERR_OS_COMMAND'), String(step));
    assert.equal(links.ops.at(-1), 'host: delete vlmpod1', String(step));
    assert.deepEqual([...links.ns(null).links.keys()], ['lo', 'loom'], String(step));
    assert.deepEqual([...links.ns(target).links.keys()], ['lo'], `${String(step)}: the peer went with it`);
    assert.equal(links.handlesOpen, 0, String(step));
  }
});

test('no bridge: ERR_NOT_FOUND before anything is made', async () => {
  const links = new MemoryNetnsLinks({ bridge: 'other' });
  await assert.rejects(attachNetwork({ links, clock: new FakeClock() }, spec), (e) => isLoomError(e, 'ERR_NOT_FOUND'));
  assert.deepEqual(links.ops, []);
});

test('the port is polled until it forwards (every 20 ms, up to 3 s), then ERR_TIMEOUT and the pair is deleted', async () => {
  const slow = new MemoryNetnsLinks();
  slow.forwardAfterPolls = 3;
  const clock = new FakeClock();
  const done = attachNetwork({ links: slow, clock }, spec);
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setImmediate(r));
    clock.advance(20);
  }
  await done;
  assert.equal(slow.polls.get('vlmpod1'), 4);

  const never = new MemoryNetnsLinks();
  never.forwardAfterPolls = Number.POSITIVE_INFINITY;
  const clock2 = new FakeClock();
  const failed = attachNetwork({ links: never, clock: clock2 }, spec);
  let settled = false;
  failed.catch(() => undefined).finally(() => (settled = true));
  for (let i = 0; i < 400 && !settled; i++) {
    await new Promise((r) => setImmediate(r));
    clock2.advance(20);
  }
  await assert.rejects(failed, (e) => isLoomError(e, 'ERR_TIMEOUT'));
  assert.ok(never.polls.get('vlmpod1')! <= 152, 'bounded');
  assert.equal(never.ops.at(-1), 'host: delete vlmpod1');
});
