import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { DnsServer, type DnsServerInit } from '../../../src/dns/server.js';
import { isLoomError } from '../../../src/core/errors.js';
import { FakeDnsMesh } from './fake-mesh.js';
import { queryTypeRecord } from '../../../src/dns/query-types.js';
import { deadPort, query, rcodeOf, startFakeUpstream, tcpAsk, udpAsk, udpAskAfter } from './dns-client.js';

interface Harness {
  server: DnsServer;
  udpPort: number;
  tcpPort: number;
  resolvConf: string;
  dir: string;
}

async function withServer(init: DnsServerInit, body: (h: Harness) => Promise<void>, resolvConfText = 'nameserver 127.0.0.1\n'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'loom-dns-'));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, resolvConfText);
  const { store } = new FakeDnsMesh(1).peer(0);
  // Never the real port 53: a test that forwards by mistake meets a dead port, not a real resolver.
  const server = new DnsServer({ store }, { resolvConfPath: resolvConf, upstreamTimeoutMs: 500, ...init, upstreamPort: init.upstreamPort ?? (await deadPort()) });
  try {
    const bound = await server.start({ udp: { host: '127.0.0.1', port: 0 }, tcp: { host: '127.0.0.1', port: 0 } });
    await body({ server, udpPort: bound.udp!.port, tcpPort: bound.tcp!.port, resolvConf, dir });
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** dns-packet decodes the rcode too; its types leave it out. */
type Reply = dnsPacket.DecodedPacket & { rcode: string };

function decode(reply: Buffer): Reply {
  return dnsPacket.decode(reply) as Reply;
}

function ttlOf(answer: dnsPacket.Answer | undefined): number | undefined {
  return answer && 'ttl' in answer ? answer.ttl : undefined;
}

function aData(reply: Buffer): string[] {
  return (decode(reply).answers ?? []).map((a) => (a.type === 'A' ? a.data : `?${a.type}`));
}

test('A query: every address, TTL 1 s, authoritative; any case; single label', async () => {
  await withServer({}, async ({ server, udpPort }) => {
    server.add('web', '10.32.0.1', 'c1');
    server.add('web.loom.local', '10.32.0.2', 'c2');
    const reply = decode(await udpAsk(udpPort, query('web.loom.local', 'A', { id: 7 })));
    assert.equal(reply.id, 7);
    assert.equal(reply.rcode, 'NOERROR');
    assert.equal(reply.flag_aa, true);
    assert.deepEqual((reply.answers ?? []).map((a) => (a.type === 'A' ? a.data : '')).sort(), ['10.32.0.1', '10.32.0.2']);
    assert.ok((reply.answers ?? []).every((a) => ttlOf(a) === 1 && a.name === 'web.loom.local'));

    const mixed = decode(await udpAsk(udpPort, query('WeB.LoOm.LOCAL')));
    assert.equal(mixed.answers?.length, 2);
    assert.equal(mixed.answers?.[0]?.name, 'WeB.LoOm.LOCAL', 'the name is echoed as asked');

    const bare = decode(await udpAsk(udpPort, query('web')));
    assert.equal(bare.rcode, 'NOERROR');
    assert.equal(bare.answers?.length, 2);
    assert.equal(bare.answers?.[0]?.name, 'web');
    assert.deepEqual(server.lookup('WEB').sort(), ['10.32.0.1', '10.32.0.2']);
    assert.deepEqual(
      server.dnsStatus().map((r) => [r.name, r.address, r.containerId]),
      [
        ['web.loom.local', '10.32.0.1', 'c1'],
        ['web.loom.local', '10.32.0.2', 'c2'],
      ],
    );
  });
});

test('configurable domain and TTL', async () => {
  const port = await deadPort();
  await withServer({ domain: 'Cluster.Internal.', ttlSeconds: 30, upstreamPort: port, upstreamTimeoutMs: 200 }, async ({ server, udpPort }) => {
    server.add('db', '10.40.0.5', 'c1');
    const reply = decode(await udpAsk(udpPort, query('db.cluster.internal')));
    assert.deepEqual(aData(await udpAsk(udpPort, query('db.cluster.internal'))), ['10.40.0.5']);
    assert.equal(ttlOf(reply.answers?.[0]), 30);
    assert.equal(decode(await udpAsk(udpPort, query('db.loom.local'))).rcode, 'SERVFAIL', 'the default domain is not ours any more: forwarded, nobody answers');
  });
});

test('round robin: all addresses every time, order varies', async () => {
  await withServer({}, async ({ server, udpPort }) => {
    for (let i = 1; i <= 6; i++) server.add('rr', `10.32.0.${i}`, `c${i}`);
    const orders = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const data = aData(await udpAsk(udpPort, query('rr.loom.local', 'A', { id: i })));
      assert.deepEqual([...data].sort(), ['10.32.0.1', '10.32.0.2', '10.32.0.3', '10.32.0.4', '10.32.0.5', '10.32.0.6']);
      orders.add(data.join(','));
    }
    assert.ok(orders.size >= 5, `only ${orders.size} distinct orders in 20 answers`);
  });
});

test('NXDOMAIN for unknown names in the domain; NOERROR without answers for other types; removal is immediate', async () => {
  await withServer({}, async ({ server, udpPort, tcpPort }) => {
    server.add('web', '10.32.0.1', 'c1');
    const nx = decode(await udpAsk(udpPort, query('nope.loom.local')));
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.flag_aa, true);
    const aaaa = decode(await udpAsk(udpPort, query('web.loom.local', 'AAAA')));
    assert.equal(aaaa.rcode, 'NOERROR');
    assert.equal(aaaa.answers?.length, 0);
    const mx = decode((await tcpAsk(tcpPort, [query('web.loom.local', 'MX')]))[0]!);
    assert.equal(mx.rcode, 'NOERROR');
    assert.equal(mx.answers?.length, 0);
    assert.equal(server.removeContainer('c1'), 1);
    assert.equal(decode(await udpAsk(udpPort, query('web.loom.local'))).rcode, 'NXDOMAIN');
    assert.deepEqual(server.dnsStatus(), []);
  });
});

/** The authority section as [owner, type, ttl, SOA minimum]. */
function authorityOf(reply: Reply): Array<[string, string, number | undefined, number | undefined]> {
  return (reply.authorities ?? []).map((a) => [a.name, a.type, ttlOf(a), a.type === 'SOA' ? a.data.minimum : undefined]);
}

test('negative answers in the domain carry its SOA (RFC 2308), from the cache too; positive, single-label and reverse ones do not', async () => {
  await withServer({ ttlSeconds: 5 }, async ({ server, udpPort, tcpPort }) => {
    server.add('web', '10.32.0.1', 'c1');
    const soa: ReturnType<typeof authorityOf> = [['loom.local', 'SOA', 5, 5]];
    for (let round = 0; round < 2; round++) {
      // Round 1 fills the answer cache, round 2 is served from it: the same authority.
      const nx = decode(await udpAsk(udpPort, query('nope.loom.local', 'A', { id: 10 + round })));
      assert.deepEqual([nx.rcode, nx.answers?.length, authorityOf(nx)], ['NXDOMAIN', 0, soa], 'NXDOMAIN');
      const nodata = decode(await udpAsk(udpPort, query('WEB.loom.local', 'AAAA', { udpSize: 1232 })));
      assert.deepEqual([nodata.rcode, nodata.answers?.length, authorityOf(nodata)], ['NOERROR', 0, soa], 'NODATA');
      const apex = decode(await udpAsk(udpPort, query('loom.local', 'A')));
      assert.deepEqual([apex.rcode, authorityOf(apex)], ['NOERROR', soa], 'the apex: NODATA');
      const positive = decode(await udpAsk(udpPort, query('web.loom.local')));
      assert.deepEqual([positive.answers?.length, authorityOf(positive)], [1, []], 'an answer has no authority');
      const single = decode(await udpAsk(udpPort, query('web', 'AAAA')));
      assert.deepEqual([single.rcode, authorityOf(single)], ['NOERROR', []], 'single label: SOA of loom.local is not an ancestor of "web."');
      const reverse = decode(await udpAsk(udpPort, query('1.0.32.10.in-addr.arpa', 'A')));
      assert.deepEqual([reverse.rcode, authorityOf(reverse)], ['NOERROR', []], 'reverse NODATA');
    }
    assert.ok(server.cacheStats().hits >= 5, `the second round came from the cache (${JSON.stringify(server.cacheStats())})`);
    const tcp = decode((await tcpAsk(tcpPort, [query('nope.loom.local', 'MX')]))[0]!);
    assert.deepEqual([tcp.rcode, authorityOf(tcp)], ['NXDOMAIN', soa], 'TCP too');
    const full = (await tcpAsk(tcpPort, [query('nope.loom.local', 'A', { id: 77 })]))[0]!;
    const data = (dnsPacket.decode(full).authorities?.[0] as dnsPacket.Answer & { type: 'SOA' }).data;
    assert.deepEqual(data, { mname: 'ns.loom.local', rname: 'hostmaster.loom.local', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 5 });
  });
});

test('PTR for container addresses; unknown reverse names go upstream', async () => {
  const upstream = await startFakeUpstream('192.0.2.1');
  try {
    await withServer({ upstreamPort: upstream.port }, async ({ server, udpPort }) => {
      server.add('web', '10.32.0.7', 'c1');
      const ptr = decode(await udpAsk(udpPort, query('7.0.32.10.in-addr.arpa', 'PTR')));
      assert.equal(ptr.rcode, 'NOERROR');
      assert.deepEqual(
        (ptr.answers ?? []).map((a) => (a.type === 'PTR' ? a.data : '')),
        ['web.loom.local'],
      );
      assert.equal(upstream.asked.length, 0);
      const other = decode(await udpAsk(udpPort, query('9.9.9.10.in-addr.arpa', 'PTR')));
      assert.equal(other.rcode, 'NOERROR');
      assert.deepEqual(upstream.asked, ['9.9.9.10.in-addr.arpa']);
    });
  } finally {
    await upstream.close();
  }
});

test('names outside the domain are forwarded; the client id is kept', async () => {
  const upstream = await startFakeUpstream('192.0.2.10');
  try {
    await withServer({ upstreamPort: upstream.port }, async ({ server, udpPort, tcpPort }) => {
      const reply = decode(await udpAsk(udpPort, query('example.com', 'A', { id: 31337 })));
      assert.equal(reply.id, 31337);
      assert.deepEqual((reply.answers ?? []).map((a) => (a.type === 'A' ? a.data : '')), ['192.0.2.10']);
      const overTcp = decode((await tcpAsk(tcpPort, [query('example.org', 'A', { id: 99 })]))[0]!);
      assert.equal(overTcp.id, 99);
      assert.deepEqual((overTcp.answers ?? []).map((a) => (a.type === 'A' ? a.data : '')), ['192.0.2.10']);
      // A single label nobody here knows is asked upstream too.
      await udpAsk(udpPort, query('printer'));
      assert.deepEqual(upstream.asked, ['example.com', 'example.org', 'printer']);
      assert.equal(server.stats().forwarded, 3);
    });
  } finally {
    await upstream.close();
  }
});

test('upstream down: SERVFAIL within the time budget', async () => {
  const port = await deadPort();
  await withServer({ upstreamPort: port, upstreamTimeoutMs: 300 }, async ({ server, udpPort }) => {
    const started = performance.now();
    const reply = decode(await udpAsk(udpPort, query('example.com')));
    const took = performance.now() - started;
    assert.equal(reply.rcode, 'SERVFAIL');
    assert.ok(took < 1500, `took ${took} ms`);
    assert.equal(server.stats().servfail, 1);
  });
  await withServer({ upstreamPort: port }, async ({ udpPort }) => {
    assert.equal(decode(await udpAsk(udpPort, query('example.com'))).rcode, 'SERVFAIL', 'no nameserver lines at all');
  }, '# empty\n');
});

test('upstreams are tried in turn; resolv.conf is re-read when it changes', async () => {
  const first = await startFakeUpstream('192.0.2.1', '127.0.0.1');
  const second = await startFakeUpstream('192.0.2.2', '127.0.0.2', first.port);
  try {
    await withServer(
      { upstreamPort: first.port, upstreamTimeoutMs: 1000 },
      async ({ udpPort, resolvConf }) => {
        // 127.0.0.3 has nobody on that port: its share of the budget runs out, then 127.0.0.1 answers.
        assert.deepEqual(aData(await udpAsk(udpPort, query('example.com'))), ['192.0.2.1']);
        const next = `${resolvConf}.new`;
        writeFileSync(next, 'search example\nnameserver 127.0.0.2 # the other one\n');
        renameSync(next, resolvConf);
        assert.deepEqual(aData(await udpAsk(udpPort, query('example.com'))), ['192.0.2.2']);
      },
      'nameserver 127.0.0.3\nnameserver 127.0.0.1\n',
    );
  } finally {
    await first.close();
    await second.close();
  }
});

test('truncation: 50 records over UDP set TC and fit 512 bytes; TCP gets all 50', async () => {
  await withServer({}, async ({ server, udpPort, tcpPort }) => {
    for (let i = 1; i <= 50; i++) server.add('big', `10.32.1.${i}`, `c${i}`);
    const raw = await udpAsk(udpPort, query('big.loom.local'));
    const udp = decode(raw);
    assert.ok(raw.length <= 512, `${raw.length} bytes`);
    assert.equal(udp.flag_tc, true);
    const fitted = udp.answers?.length ?? 0;
    assert.ok(fitted > 10 && fitted < 50, `${fitted} answers`);
    assert.ok(raw.length + 30 > 512, 'as many as fit: one more would not');
    const tcp = decode((await tcpAsk(tcpPort, [query('big.loom.local')]))[0]!);
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers?.length, 50);
    assert.equal(server.stats().truncated, 1);
  });
});

test('EDNS0: the client payload size is honoured', async () => {
  await withServer({}, async ({ server, udpPort }) => {
    for (let i = 1; i <= 50; i++) server.add('big', `10.32.1.${i}`, `c${i}`);
    const large = decode(await udpAsk(udpPort, query('big.loom.local', 'A', { udpSize: 4096 })));
    assert.equal(large.flag_tc, false);
    assert.equal(large.answers?.length, 50);
    assert.ok(large.additionals?.some((a) => a.type === 'OPT'), 'an OPT record answers an OPT record');
    const midRaw = await udpAsk(udpPort, query('big.loom.local', 'A', { udpSize: 1000 }));
    const mid = decode(midRaw);
    assert.ok(midRaw.length <= 1000);
    assert.equal(mid.flag_tc, true);
    assert.ok((mid.answers?.length ?? 0) > 20 && (mid.answers?.length ?? 0) < 50);
    // Sizes under 512 are treated as 512 (RFC 6891).
    const tinyRaw = await udpAsk(udpPort, query('big.loom.local', 'A', { udpSize: 100 }));
    assert.ok(tinyRaw.length <= 512 && tinyRaw.length > 400, `${tinyRaw.length}`);
  });
});

test('TCP: several queries in one stream, split across writes', async () => {
  await withServer({}, async ({ server, tcpPort }) => {
    server.add('a', '10.32.0.1', 'c1');
    server.add('b', '10.32.0.2', 'c2');
    const replies = await tcpAsk(tcpPort, [query('a.loom.local', 'A', { id: 1 }), query('b.loom.local', 'A', { id: 2 })], 2, 5);
    const byId = new Map(replies.map((r) => [decode(r).id, aData(r)]));
    assert.deepEqual(byId.get(1), ['10.32.0.1']);
    assert.deepEqual(byId.get(2), ['10.32.0.2']);
  });
});

function header(fields: { id?: number; flags?: number; qd?: number; an?: number; ns?: number; ar?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(fields.id ?? 1, 0);
  b.writeUInt16BE(fields.flags ?? 0x0100, 2);
  b.writeUInt16BE(fields.qd ?? 1, 4);
  b.writeUInt16BE(fields.an ?? 0, 6);
  b.writeUInt16BE(fields.ns ?? 0, 8);
  b.writeUInt16BE(fields.ar ?? 0, 10);
  return b;
}

test('malformed queries: dropped or FORMERR/NOTIMP, and the server keeps answering', async () => {
  await withServer({}, async ({ server, udpPort }) => {
    server.add('web', '10.32.0.1', 'c1');
    const valid = query('web.loom.local');
    const loop = Buffer.concat([header({ id: 11 }), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    const hugeCounts = Buffer.concat([header({ id: 12, qd: 0xffff, an: 0xffff, ar: 0xffff }), valid.subarray(12)]);
    const truncatedQuestion = Buffer.concat([header({ id: 13 }), Buffer.from([3, 0x77, 0x65])]);
    const response = Buffer.from(valid);
    response[2] = response[2]! | 0x80;
    const notify = Buffer.concat([header({ id: 14, flags: 4 << 11 }), valid.subarray(12)]);
    const chaos = Buffer.concat([header({ id: 15 }), Buffer.from([0, 0, 16, 0, 3])]);

    assert.equal(await server.answer(Buffer.from([1, 2, 3, 4, 5]), false), null, 'shorter than a header: dropped');
    assert.equal(await server.answer(response, false), null, 'QR=1: dropped');
    const rcodeFor = async (b: Buffer): Promise<number> => rcodeOf((await server.answer(b, false))!);
    assert.equal(await rcodeFor(loop), 1);
    assert.equal(await rcodeFor(hugeCounts), 1);
    assert.equal(await rcodeFor(truncatedQuestion), 1);
    assert.equal(await rcodeFor(notify), 4);
    assert.equal(await rcodeFor(chaos), 5);

    const replies = await udpAskAfter(udpPort, [Buffer.alloc(0), Buffer.from([1, 2, 3]), response, loop, hugeCounts], Buffer.from(valid));
    const ids = replies.map((r) => r.readUInt16BE(0));
    assert.deepEqual(ids.slice(0, -1).sort(), [11, 12], 'only the FORMERR replies come before the answer');
    assert.deepEqual(aData(replies.at(-1)!), ['10.32.0.1']);
  });
});

test('fuzz: random bytes never crash the handler; every reply is a response', async () => {
  const { store } = new FakeDnsMesh(1).peer(0);
  const server = new DnsServer({ store }, { resolvConfPath: '/nonexistent/resolv.conf' });
  server.add('web', '10.32.0.1', 'c1');
  const valid = query('web.loom.local', 'A', { udpSize: 1232 });
  const mutated = fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((edits) => {
    const b = Buffer.from(valid);
    for (const [i, v] of edits) b[i] = v;
    return b;
  });
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)), mutated), fc.boolean(), async (bytes, tcp) => {
      const reply = await server.answer(bytes, tcp);
      if (reply === null) return;
      assert.ok(reply.length >= 12 && (reply[2]! & 0x80) !== 0, 'replies are responses');
      assert.equal(reply.readUInt16BE(0), bytes.readUInt16BE(0), 'with the query id');
    }),
    { numRuns: 2000 },
  );
});

test('start twice is ERR_CONFLICT; a busy port is ERR_UNAVAILABLE; stop is idempotent', async () => {
  await withServer({}, async ({ server, udpPort }) => {
    await assert.rejects(server.start({ udp: { host: '127.0.0.1', port: 0 } }), (e) => isLoomError(e, 'ERR_CONFLICT'));
    const { store } = new FakeDnsMesh(1).peer(0);
    const other = new DnsServer({ store });
    await assert.rejects(other.start({ udp: { host: '127.0.0.1', port: udpPort } }), (e) => isLoomError(e, 'ERR_UNAVAILABLE'));
    await other.stop();
    await other.stop();
  });
  const { store } = new FakeDnsMesh(1).peer(0);
  assert.throws(() => new DnsServer({ store }, { ttlSeconds: -1 }), (e) => isLoomError(e, 'ERR_INVALID_CONFIG'));
  assert.throws(() => new DnsServer({ store }, { domain: 'bad domain' }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
});

test('metrics counters: questions by type, upstream latency of answered forwards, failures by reason', async () => {
  const upstream = await startFakeUpstream('192.0.2.10');
  try {
    await withServer({ upstreamPort: upstream.port }, async ({ server, udpPort }) => {
      server.add('web', '10.32.0.7', 'c1');
      await udpAsk(udpPort, query('web.loom.local', 'A'));
      await udpAsk(udpPort, query('web.loom.local', 'A')); // from the answer cache: counted as well
      await udpAsk(udpPort, query('web.loom.local', 'AAAA'));
      await udpAsk(udpPort, query('7.0.32.10.in-addr.arpa', 'PTR'));
      await udpAsk(udpPort, query('web.loom.local', 'HINFO'));
      await udpAsk(udpPort, query('example.com', 'A'));
      const types = server.queryTypeStats();
      assert.deepEqual(queryTypeRecord(types), { A: 3, AAAA: 1, PTR: 1, SRV: 0, TXT: 0, MX: 0, CNAME: 0, NS: 0, SOA: 0, ANY: 0, other: 1 });
      const up = server.upstreamStats();
      assert.equal(up.latency.count, 1, 'one answered forward');
      assert.ok(up.latency.sum > 0 && up.latency.sum < 2, `latency ${up.latency.sum} s`);
      assert.deepEqual(up.failures, { timeout: 0, servfail: 0, refused: 0, busy: 0, no_upstream: 0 });
    });
  } finally {
    await upstream.close();
  }
  await withServer({ upstreamTimeoutMs: 200 }, async ({ server, udpPort }) => {
    assert.equal(decode(await udpAsk(udpPort, query('example.com'))).rcode, 'SERVFAIL');
    const up = server.upstreamStats();
    assert.equal(up.failures.timeout, 1, 'the dead upstream did not answer');
    assert.equal(up.latency.count, 0, 'no latency for a query without an answer');
  });
  await withServer({}, async ({ server, udpPort }) => {
    await udpAsk(udpPort, query('example.com'));
    assert.equal(server.upstreamStats().failures.no_upstream, 1);
  }, '# empty\n');
});
