/**
 * The demo's pure parts, without root: the ping-loop timeline (parsed and folded into runs), the
 * container list from the API (untrusted JSON -> ERR_PROTOCOL, never a crash), and the upstream
 * DNS server's answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import { parseRounds, summarizeRounds } from '../../src/demo/steps-dns.js';
import { addressOf, parseContainerList } from '../../src/demo/containers.js';
import { UPSTREAM_ANSWER, upstreamReply } from '../../src/demo/upstream-dns.js';
import { isLoomError } from '../../src/core/errors.js';

test('the ping loop timeline folds identical rounds into runs and keeps only replies as addresses', () => {
  const log = [
    '12:00:00.1 10.40.0.1 reply',
    '12:00:00.3 10.40.0.1 reply',
    'garbage line',
    '12:00:00.6 10.40.0.1 no reply',
    '12:00:01.9 - ping: service2: Name or service not known',
    '12:00:02.1 - ping: service2: Name or service not known',
    '12:00:02.4 10.36.0.3 reply',
  ].join('\n');
  const rounds = parseRounds(log);
  assert.deepEqual(
    rounds.map((r) => r.address),
    ['10.40.0.1', '10.40.0.1', null, null, null, '10.36.0.3'],
  );
  assert.deepEqual(summarizeRounds(rounds), [
    '12:00:00.1 .. 12:00:00.3  10.40.0.1 reply (x2)',
    '12:00:00.6 .. 12:00:00.6  10.40.0.1 no reply (x1)',
    '12:00:01.9 .. 12:00:02.1  ping: service2: Name or service not known (x2)',
    '12:00:02.4 .. 12:00:02.4  10.36.0.3 reply (x1)',
  ]);
  assert.deepEqual(summarizeRounds([]), []);
});

test('the container list: parsed from JSON; anything else is ERR_PROTOCOL', () => {
  const list = parseContainerList(JSON.stringify({ containers: [{ id: 'abc', name: 'web', mac: 'x', cidrs: ['10.32.0.5/12'], pid: 42, alive: true, createdAt: 'now', extra: 1 }], attachments: [] }));
  assert.equal(list.length, 1);
  assert.equal(addressOf(list[0]!), '10.32.0.5');
  for (const bad of ['not json', '{}', JSON.stringify({ containers: [{ id: 'abc' }] }), JSON.stringify({ containers: [{ id: 'a', name: 'b', mac: 'x', cidrs: [], pid: 1.5, alive: true, createdAt: 'now' }], attachments: [] })]) {
    assert.throws(() => parseContainerList(bad), (err: unknown) => isLoomError(err, 'ERR_PROTOCOL'), bad);
  }
  assert.throws(() => addressOf({ id: 'a', name: 'b', mac: 'x', cidrs: [], pid: 2, alive: true, createdAt: 'now' }), (err: unknown) => isLoomError(err, 'ERR_NOT_FOUND'));
});

test('the upstream DNS server answers its own domain, NXDOMAIN elsewhere, and ignores garbage', () => {
  const ask = (name: string, type: 'A' | 'AAAA' = 'A'): dnsPacket.Packet => {
    const reply = upstreamReply(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] }));
    assert.ok(reply, `a reply for ${name}`);
    return dnsPacket.decode(reply);
  };
  /** The response code from the flags (the types of dns-packet do not declare the decoded `rcode`): 0 NOERROR, 3 NXDOMAIN. */
  const rcode = (p: dnsPacket.Packet): number => (p.flags ?? 0) & 0xf;
  const ours = ask('www.example.test');
  assert.equal(ours.id, 7);
  assert.equal(rcode(ours), 0);
  assert.deepEqual(ours.answers?.map((a) => (a.type === 'A' ? a.data : null)), [UPSTREAM_ANSWER]);
  assert.deepEqual(ask('www.example.test', 'AAAA').answers, [], 'NODATA for other types');
  assert.equal(rcode(ask('service2.loom.local')), 3, 'NXDOMAIN');
  assert.equal(rcode(ask('notexample.test')), 3, 'NXDOMAIN: a suffix match needs the dot');
  assert.equal(upstreamReply(Buffer.from([1, 2, 3])), null);
  assert.equal(upstreamReply(dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'x.example.test', class: 'IN' }] })), null, 'a response is not answered');
});
