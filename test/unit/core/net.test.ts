import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import {
  DEFAULT_IPALLOC_RANGE,
  formatCidr,
  formatHostPort,
  formatIpv4Address,
  ipv4FromNumber,
  networkOf,
  parseCidr,
  parseHostPort,
  parseIpv4Address,
  parseNetworkCidr,
  splitHostPort,
  type Cidr,
  type HostPort,
} from '../../../src/core/net.js';

const invalidArgument = (e: unknown): boolean => isLoomError(e, 'ERR_INVALID_ARGUMENT');

test('parseIpv4Address: dotted quads, leading zeros only when asked', () => {
  const ok: [string, number][] = [
    ['0.0.0.0', 0],
    ['10.32.0.1', 0x0a200001],
    ['255.255.255.255', 0xffffffff],
    ['192.168.1.1', 0xc0a80101],
  ];
  for (const [text, n] of ok) assert.equal(parseIpv4Address(text), n, text);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.-1', '1.2.3.4 ', 'a.b.c.d', '1..2.3', '1e1.0.0.1', '010.0.0.1', '::1', null, 17]) {
    assert.throws(() => parseIpv4Address(bad), invalidArgument, String(bad));
  }
  assert.equal(parseIpv4Address('010.000.0.01', { leadingZeros: true }), 0x0a000001);
  assert.throws(() => parseIpv4Address('0010.0.0.1', { leadingZeros: true }), invalidArgument);
  assert.throws(() => ipv4FromNumber(2 ** 32), invalidArgument);
});

test('parseCidr keeps host bits; parseNetworkCidr refuses them; minPrefix bounds the prefix', () => {
  const c = parseCidr('10.32.0.5/12');
  assert.deepEqual(c, { address: 0x0a200005, prefix: 12 });
  assert.deepEqual(networkOf(c), { address: 0x0a200000, prefix: 12 });
  assert.equal(formatCidr(networkOf(c)), '10.32.0.0/12');
  assert.deepEqual(parseNetworkCidr(DEFAULT_IPALLOC_RANGE), { address: 0x0a200000, prefix: 12 });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { address: 0, prefix: 0 });
  assert.throws(() => parseCidr('0.0.0.0/0', { minPrefix: 1 }), invalidArgument);
  assert.throws(() => parseNetworkCidr('10.32.0.5/12'), invalidArgument);
  for (const bad of ['10.32.0.5', '10.32.0.5/33', '10.32.0.5/1x', '10.32.0.5/', '10.32.0.5/012', '::1/64', 'a/b', '1.2.3.4/+1', null]) {
    assert.throws(() => parseCidr(bad), invalidArgument, String(bad));
  }
});

test('parseHostPort: host:port, [v6]:port, default port', () => {
  assert.deepEqual(parseHostPort('10.0.0.2:6783'), { host: '10.0.0.2', port: 6783 });
  assert.deepEqual(parseHostPort('example.org', { defaultPort: 6783 }), { host: 'example.org', port: 6783 });
  assert.deepEqual(parseHostPort('[fe80::1]:80'), { host: 'fe80::1', port: 80 });
  assert.deepEqual(splitHostPort('[::1]'), { host: '::1', bracketed: true, portText: undefined });
  for (const bad of ['', 'host', 'host:0', 'host:65536', 'host:x', 'a:b:c', '::1', '[zz]:1', '-a:1', ':80', null]) {
    assert.throws(() => parseHostPort(bad), invalidArgument, String(bad));
  }
});

const ipv4 = fc.integer({ min: 0, max: 0xffffffff }).map((n) => ipv4FromNumber(n));

test('round trip: parse(format(x)) = x for addresses, CIDRs, blocks and host:port', () => {
  fc.assert(fc.property(ipv4, (a) => parseIpv4Address(formatIpv4Address(a)) === a));
  fc.assert(
    fc.property(ipv4, fc.integer({ min: 0, max: 32 }), (address, prefix) => {
      const c: Cidr = { address, prefix };
      assert.deepEqual(parseCidr(formatCidr(c)), c);
      const n = networkOf(c);
      assert.deepEqual(parseNetworkCidr(formatCidr(n)), n);
    }),
  );
  const host = fc.oneof(
    ipv4.map(formatIpv4Address),
    fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20})?$/),
    fc.constantFrom('::1', 'fe80::1', '2001:db8::42'),
  );
  fc.assert(
    fc.property(host, fc.integer({ min: 1, max: 65535 }), (h, port) => {
      const hp: HostPort = { host: h, port };
      assert.deepEqual(parseHostPort(formatHostPort(hp)), hp);
    }),
  );
});
