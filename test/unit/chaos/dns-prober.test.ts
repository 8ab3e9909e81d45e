/**
 * The partition scenario's fine DNS prober (test/chaos/dns-prober.ts) against a fake DNS server
 * on 127.0.0.1: a round per interval, every name asked, answers as the server gives them (and
 * when they change), a name without a reply or with SERVFAIL makes the round null, the round
 * and deadline bounds hold, and the command line is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { addressesOfReply, parseProberArgs, probe, probeNow, type ProbeRound } from '../../chaos/dns-prober.js';

/** Answers A questions from `zone` (name -> addresses; missing: NXDOMAIN), 'silent' names never, 'fail' names SERVFAIL. */
async function fakeServer(zone: () => Record<string, string[] | 'silent' | 'fail'>): Promise<{ port: number; socket: Socket; asked: string[] }> {
  const socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    asked.push(question.name);
    const entry = zone()[question.name.split('.')[0]!];
    if (entry === 'silent') return;
    const rcode = entry === 'fail' ? 2 : entry === undefined ? 3 : 0;
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | rcode,
      questions: [question],
      answers: Array.isArray(entry) ? entry.map((data) => ({ type: 'A' as const, name: question.name, ttl: 1, class: 'IN' as const, data })) : [],
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, socket, asked };
}

const base = { server: '127.0.0.1', domain: 'loom.local', intervalMs: 20, roundTimeoutMs: 300 };

test('a round per interval, every name asked; answers follow the server, NXDOMAIN is the empty set', async () => {
  let round = 0;
  const server = await fakeServer(() => (round < 2 ? { web: ['10.32.0.2', '10.32.0.1'] } : { web: ['10.40.0.1'], db: ['10.32.0.9'] }));
  try {
    const rounds: ProbeRound[] = [];
    const start = probeNow();
    const n = await probe({ ...base, port: server.port, names: ['web', 'db'], deadlineMs: Date.now() + 10_000, maxRounds: 4 }, (r) => {
      rounds.push(r);
      round++;
    });
    assert.equal(n, 4, 'stopped at maxRounds');
    assert.deepEqual(
      rounds.map((r) => r.answers),
      [
        { web: ['10.32.0.1', '10.32.0.2'], db: [] },
        { web: ['10.32.0.1', '10.32.0.2'], db: [] },
        { web: ['10.40.0.1'], db: ['10.32.0.9'] },
        { web: ['10.40.0.1'], db: ['10.32.0.9'] },
      ],
    );
    assert.equal(server.asked.length, 8);
    assert.ok(rounds.every((r) => r.invokeMs >= start && r.completeMs >= r.invokeMs));
    for (let i = 1; i < rounds.length; i++) assert.ok(rounds[i]!.invokeMs - rounds[i - 1]!.invokeMs >= 19, 'rounds start an interval apart');
  } finally {
    server.socket.close();
  }
});

test('a name without a reply, or with SERVFAIL, makes the round null; the deadline ends the probe', async () => {
  let mode: 'silent' | 'fail' = 'silent';
  const server = await fakeServer(() => ({ web: ['10.32.0.1'], db: mode }));
  try {
    const rounds: ProbeRound[] = [];
    await probe({ ...base, port: server.port, names: ['web', 'db'], deadlineMs: Date.now() + 10_000, maxRounds: 2 }, (r) => {
      rounds.push(r);
      mode = 'fail';
    });
    assert.deepEqual(
      rounds.map((r) => r.answers),
      [null, null],
    );
    assert.ok(rounds[0]!.completeMs - rounds[0]!.invokeMs >= 290, 'the silent round waited for its time-out');
    assert.ok(rounds[1]!.completeMs - rounds[1]!.invokeMs < 290, 'the SERVFAIL round ended with the reply');
    const none = await probe({ ...base, port: server.port, names: ['web'], deadlineMs: Date.now() - 1, maxRounds: 100 }, () => assert.fail('no round after the deadline'));
    assert.equal(none, 0);
  } finally {
    server.socket.close();
  }
});

test('addressesOfReply: only replies about the name asked; parseProberArgs bounds every field', () => {
  const reply = (name: string, rcode: number): Buffer =>
    dnsPacket.encode({ type: 'response', id: 1, flags: rcode, questions: [{ type: 'A', name, class: 'IN' }], answers: [{ type: 'A', name, ttl: 1, class: 'IN', data: '10.1.1.1' }] });
  assert.deepEqual(addressesOfReply(reply('Web.Loom.Local', 0), 'web.loom.local'), ['10.1.1.1']);
  assert.equal(addressesOfReply(reply('db.loom.local', 0), 'web.loom.local'), null, 'another question');
  assert.equal(addressesOfReply(reply('web.loom.local', 5), 'web.loom.local'), null, 'REFUSED');
  assert.equal(addressesOfReply(Buffer.from('short'), 'web.loom.local'), null);
  assert.equal(addressesOfReply(Buffer.alloc(40, 0xff), 'web.loom.local'), null, 'garbage');

  const good = parseProberArgs(['10.32.0.1', '53', '1765000000000', '100', '300', 'loom.local', 'web', 'DB']);
  assert.deepEqual(good, { server: '10.32.0.1', port: 53, deadlineMs: 1765000000000, intervalMs: 100, maxRounds: 300, domain: 'loom.local', names: ['web', 'db'], roundTimeoutMs: 1_000 });
  for (const bad of [
    ['x', '53', '1', '100', '3', 'loom.local', 'web'],
    ['10.0.0.1', '0', '1', '100', '3', 'loom.local', 'web'],
    ['10.0.0.1', '53', '1', '5', '3', 'loom.local', 'web'],
    ['10.0.0.1', '53', '1', '100', '1000000', 'loom.local', 'web'],
    ['10.0.0.1', '53', '1', '100', '3', 'loom.local'],
    ['10.0.0.1', '53', '1', '100', '3', 'loom.local', 'a.b'],
  ]) {
    assert.equal(typeof parseProberArgs(bad), 'string', bad.join(' '));
  }
});
