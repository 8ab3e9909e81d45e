import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/index.js';
import { formatAddressSpec, parseAddressSpec } from '../../../src/core/address-spec.js';
import { parseCidr, parseNetworkCidr } from '../../../src/core/net.js';
import { ipamArgs, parseIpamOptions } from '../../../src/ipam/daemon-options.js';
import { parseLaunchOptions, foregroundArgs } from '../../../src/daemon/options.js';

const invalid = (e: unknown) => isLoomError(e, 'ERR_INVALID_ARGUMENT');

test('address spec: the forms of run/attach/expose parse to one canonical value', () => {
  assert.deepEqual(parseAddressSpec(undefined), { kind: 'default' });
  assert.deepEqual(parseAddressSpec(''), { kind: 'default' });
  assert.deepEqual(parseAddressSpec('net:default'), { kind: 'default' });
  assert.deepEqual(parseAddressSpec('net:10.32.4.0/24'), { kind: 'subnet', subnet: parseNetworkCidr('10.32.4.0/24') });
  assert.deepEqual(parseAddressSpec(' 10.32.4.7/24 '), { kind: 'static', cidr: parseCidr('10.32.4.7/24') });
  assert.deepEqual(parseAddressSpec('010.32.4.7/24'), { kind: 'static', cidr: parseCidr('10.32.4.7/24') }, 'leading zeros, as IPAM always took them');
  assert.deepEqual(parseAddressSpec('10.32.0.0/12'), { kind: 'static', cidr: parseCidr('10.32.0.0/12') }, 'syntax only; IPAM refuses a network address');
  assert.deepEqual(parseAddressSpec('net:0.0.0.0/0'), { kind: 'subnet', subnet: parseNetworkCidr('0.0.0.0/0') }, 'a subnet may be any block; IPAM checks it lies in the range');
  for (const text of ['net:default', 'net:10.32.4.0/24', '10.32.4.7/24']) assert.equal(formatAddressSpec(parseAddressSpec(text)), text);
});

test('address spec: bad syntax is ERR_INVALID_ARGUMENT, never another error', () => {
  for (const bad of ['10.32.4.7', 'net:10.32.4.7/24', 'net:', 'net:10.32.0.0', 'net:10.32.0.0/33', '10.32.4.256/24', '10.32.4.7/', '/24', 'default', 'net:DEFAULT', 'x'.repeat(65), '10.32.4.7/24/1', '10.32.4.7/0', 7, {}, ['10.0.0.1/8']]) {
    assert.throws(() => parseAddressSpec(bad), invalid, JSON.stringify(bad));
  }
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (text) => {
      try {
        const spec = parseAddressSpec(text);
        assert.deepEqual(parseAddressSpec(formatAddressSpec(spec)), spec, 'canonical form parses to itself');
      } catch (e) {
        assert.ok(invalid(e), String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

test('launch options: IPAM defaults, validation naming the option, and background arguments that reproduce them', () => {
  assert.deepEqual(parseIpamOptions({}), { range: '10.32.0.0/12', defaultSubnet: undefined, init: 'consensus' });
  const full = parseIpamOptions({ ipallocRange: '10.2.0.0/16', ipallocDefaultSubnet: '10.2.3.0/24', ipallocInit: 'seed=02:00:00:00:00:01,02:00:00:00:00:02' });
  assert.deepEqual(full, { range: '10.2.0.0/16', defaultSubnet: '10.2.3.0/24', init: 'seed=02:00:00:00:00:01,02:00:00:00:00:02' });
  for (const [raw, option] of [
    [{ ipallocRange: '10.2.0.1/16' }, '--ipalloc-range'],
    [{ ipallocRange: '10.2.0.0/31' }, '--ipalloc-range'],
    [{ ipallocRange: 'banana' }, '--ipalloc-range'],
    [{ ipallocDefaultSubnet: '10.99.0.0/24' }, '--ipalloc-default-subnet'],
    [{ ipallocDefaultSubnet: '10.32.0.1/24' }, '--ipalloc-default-subnet'],
    [{ ipallocInit: 'consensus=0' }, '--ipalloc-init'],
    [{ ipallocInit: 'seed=host1' }, '--ipalloc-init'],
    [{ ipallocInit: 'paxos' }, '--ipalloc-init'],
  ] as const) {
    assert.throws(() => parseIpamOptions(raw), (e) => invalid(e) && (e as Error).message.includes(option), JSON.stringify(raw));
  }
  const config = parseLaunchOptions({ stateDir: '/tmp/x', nickname: 'n', ipallocRange: '10.2.0.0/16', ipallocInit: 'observer' }, ['10.0.0.2'], {}, 'h');
  assert.deepEqual(config.ipam, { range: '10.2.0.0/16', defaultSubnet: undefined, init: 'observer' });
  const args = foregroundArgs(config);
  const i = args.indexOf('--');
  const reparsed = parseLaunchOptions(
    { stateDir: '/tmp/x', nickname: 'n', ipallocRange: args[args.indexOf('--ipalloc-range') + 1]!, ipallocInit: args[args.indexOf('--ipalloc-init') + 1]! },
    args.slice(i + 1),
    {},
    'h',
  );
  assert.deepEqual(reparsed.ipam, config.ipam);
  assert.deepEqual(ipamArgs(full), ['--ipalloc-range', '10.2.0.0/16', '--ipalloc-default-subnet', '10.2.3.0/24', '--ipalloc-init', full.init]);
});
