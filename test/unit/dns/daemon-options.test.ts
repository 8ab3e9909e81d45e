import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoomError } from '../../../src/core/errors.js';
import { dnsArgs, findResolvConf, parseDnsOptions } from '../../../src/dns/daemon-options.js';

const invalid = (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT';

test('DNS launch options: defaults, explicit values, --no-dns', () => {
  assert.deepEqual(parseDnsOptions({}), { enabled: true, listenAddresses: [], domain: 'loom.local', ttlSeconds: 1, resolvConf: undefined, udpPath: 'auto', nativeResponder: true });
  assert.deepEqual(parseDnsOptions({ dns: false, dnsListenAddress: '10.32.0.1, 10.40.0.1,10.32.0.1', dnsDomain: 'Weave.Local.', dnsTtl: '30', dnsResolvConf: '/etc/r.conf' }), {
    enabled: false,
    listenAddresses: ['10.32.0.1', '10.40.0.1'],
    domain: 'weave.local',
    ttlSeconds: 30,
    resolvConf: '/etc/r.conf',
    udpPath: 'auto',
    nativeResponder: true,
  });
  assert.equal(parseDnsOptions({ dnsTtl: '0' }).ttlSeconds, 0);
});

test('bad DNS launch options => ERR_INVALID_ARGUMENT naming the option', () => {
  for (const raw of [
    { dnsListenAddress: '10.32.0.1,nope' },
    { dnsListenAddress: '' },
    { dnsListenAddress: '::1' },
    { dnsListenAddress: Array.from({ length: 17 }, (_, i) => `10.0.0.${i}`).join(',') },
    { dnsDomain: 'bad domain' },
    { dnsDomain: '' },
    { dnsTtl: '-1' },
    { dnsTtl: '86401' },
    { dnsTtl: '1.5' },
    { dnsResolvConf: '' },
  ]) {
    assert.throws(() => parseDnsOptions(raw), (e: unknown) => invalid(e) && /--dns-|listen-address/.test((e as Error).message), JSON.stringify(raw));
  }
});

test('dnsArgs reproduce the config', () => {
  const c = parseDnsOptions({ dns: false, dnsListenAddress: '10.32.0.1,10.40.0.1', dnsDomain: 'x.test', dnsTtl: '9', dnsResolvConf: '/r' });
  const args = dnsArgs(c);
  const value = (flag: string) => args[args.indexOf(flag) + 1];
  assert.ok(args.includes('--no-dns'));
  assert.deepEqual(
    parseDnsOptions({ dns: !args.includes('--no-dns'), dnsListenAddress: value('--dns-listen-address')!, dnsDomain: value('--dns-domain')!, dnsTtl: value('--dns-ttl')!, dnsResolvConf: value('--dns-resolv-conf')! }),
    c,
  );
  assert.ok(!dnsArgs(parseDnsOptions({})).includes('--dns-listen-address'));
});

test('findResolvConf: /etc/netns/NS/resolv.conf when our namespace is the named NS, else /etc/resolv.conf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-resolv-'));
  try {
    const named = join(dir, 'run-netns');
    const etc = join(dir, 'etc-netns');
    mkdirSync(named);
    mkdirSync(join(etc, 'blue'), { recursive: true });
    // Stand-ins for the nsfs files: "our namespace" is the very file pinned as "blue".
    writeFileSync(join(named, 'red'), '');
    writeFileSync(join(named, 'blue'), '');
    writeFileSync(join(etc, 'blue', 'resolv.conf'), 'nameserver 10.0.0.53\n');
    assert.equal(findResolvConf({ selfNetns: join(named, 'blue'), namedNetnsDir: named, etcNetnsDir: etc }), join(etc, 'blue', 'resolv.conf'));
    assert.equal(findResolvConf({ selfNetns: join(named, 'red'), namedNetnsDir: named, etcNetnsDir: etc }), '/etc/resolv.conf', 'named, but no per-namespace file');
    writeFileSync(join(dir, 'elsewhere'), '');
    assert.equal(findResolvConf({ selfNetns: join(dir, 'elsewhere'), namedNetnsDir: named, etcNetnsDir: etc }), '/etc/resolv.conf', 'not a named namespace');
    assert.equal(findResolvConf({ selfNetns: join(dir, 'missing'), namedNetnsDir: join(dir, 'none'), etcNetnsDir: etc }), '/etc/resolv.conf');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
