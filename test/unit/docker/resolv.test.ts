/**
 * The Docker container resolver (src/docker/resolv.ts): when the router rewrites a container's
 * resolv.conf and with what, Engine inspect parsing of the fields it needs, and that the file is
 * replaced in place (same inode, as a bind mount needs), shorter and longer, and idempotently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvConfDecision, writeInPlace } from '../../../src/docker/resolv.js';
import { parseInspect } from '../../../src/docker/engine.js';

const LOOM = { nameserver: '10.32.0.1', domain: 'loom.local' };
const PATH = '/var/lib/docker/containers/abc/resolv.conf';

test('decision: no --dns/--dns-search and DNS serving: nameserver, search, ndots:1', () => {
  const d = resolvConfDecision({ resolvConfPath: PATH, dns: [], dnsSearch: [] }, LOOM);
  assert.equal(d.action, 'write');
  assert.ok(d.action === 'write');
  assert.equal(d.path, PATH);
  const lines = d.content.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.deepEqual(lines, ['nameserver 10.32.0.1', 'search loom.local', 'options ndots:1']);
  const other = resolvConfDecision({ resolvConfPath: PATH }, { nameserver: '10.40.0.1', domain: 'example.test' });
  assert.ok(other.action === 'write' && /^nameserver 10\.40\.0\.1$/m.test(other.content) && /^search example\.test$/m.test(other.content), 'the configured domain');
});

test('decision: left alone with --dns, with --dns-search, without a path, before DNS serves', () => {
  assert.equal(resolvConfDecision({ resolvConfPath: PATH, dns: ['8.8.8.8'] }, LOOM).action, 'leave');
  assert.equal(resolvConfDecision({ resolvConfPath: PATH, dnsSearch: ['corp.example'] }, LOOM).action, 'leave');
  assert.equal(resolvConfDecision({ resolvConfPath: '' }, LOOM).action, 'leave');
  assert.equal(resolvConfDecision({}, LOOM).action, 'leave');
  const early = resolvConfDecision({ resolvConfPath: PATH }, null);
  assert.ok(early.action === 'leave' && /not serving/.test(early.why));
});

test('inspect: ResolvConfPath and HostConfig.Dns/DnsSearch (null as Docker sends them = none)', () => {
  const c = parseInspect({ Id: 'abc', Name: '/web', State: { Running: true, Pid: 5 }, ResolvConfPath: PATH, HostConfig: { Dns: ['10.32.0.1'], DnsSearch: null } });
  assert.equal(c.resolvConfPath, PATH);
  assert.deepEqual(c.dns, ['10.32.0.1']);
  assert.deepEqual(c.dnsSearch, []);
  const bare = parseInspect({ Id: 'abc' });
  assert.equal(resolvConfDecision(bare, LOOM).action, 'leave', 'no path from Docker: nothing written');
  const plain = parseInspect({ Id: 'abc', ResolvConfPath: PATH, HostConfig: { Dns: [], DnsSearch: [] } });
  assert.equal(resolvConfDecision(plain, LOOM).action, 'write');
});

test('writeInPlace keeps the inode, replaces longer and shorter content, and is idempotent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-resolv-'));
  try {
    const f = join(dir, 'resolv.conf');
    writeFileSync(f, 'nameserver 127.0.0.11\noptions ndots:0\n'.repeat(20));
    const ino = statSync(f).ino;
    const d = resolvConfDecision({ resolvConfPath: f }, LOOM);
    assert.ok(d.action === 'write');
    assert.equal(writeInPlace(f, d.content), true);
    assert.equal(readFileSync(f, 'utf8'), d.content, 'shorter content: no tail of the old file left');
    assert.equal(statSync(f).ino, ino, 'same inode');
    assert.equal(writeInPlace(f, d.content), false, 'already there: not written again');
    const longer = d.content + '#'.repeat(5000) + '\n';
    assert.equal(writeInPlace(f, longer), true);
    assert.equal(readFileSync(f, 'utf8'), longer);
    assert.equal(statSync(f).ino, ino);
    assert.throws(() => writeInPlace(join(dir, 'missing'), d.content), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
