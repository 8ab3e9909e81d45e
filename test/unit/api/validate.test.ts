import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parseHostPort, parsePeerTarget, parsePort } from '../../../src/api/validate.js';
import { LOOM_VERSION } from '../../../src/api/version.js';
import { LoomError } from '../../../src/core/errors.js';

const invalid = (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT';

test('parseHostPort accepts IPv4, [IPv6] and names, with or without a port', () => {
  assert.deepEqual(parseHostPort('192.168.1.2'), { host: '192.168.1.2', port: undefined });
  assert.deepEqual(parseHostPort('192.168.1.2:6783'), { host: '192.168.1.2', port: 6783 });
  assert.deepEqual(parseHostPort('[fd00::1]:1'), { host: 'fd00::1', port: 1 });
  assert.deepEqual(parseHostPort('[::1]'), { host: '::1', port: undefined });
  assert.deepEqual(parseHostPort('host-2.example.com:65535'), { host: 'host-2.example.com', port: 65535 });
});

test('parseHostPort rejects bad input with ERR_INVALID_ARGUMENT', () => {
  for (const bad of ['', ':6783', 'host:', 'host:0', 'host:65536', 'host:12a', '1.2.3.4.5', '999.1.1.1', 'fd00::1', '[1.2.3.4]:80', '[zz::1]', 'a b', '-host', 'host_1', 'x'.repeat(301), 42, null, undefined]) {
    assert.throws(() => parseHostPort(bad), invalid, JSON.stringify(bad));
  }
});

test('parsePeerTarget never throws anything but ERR_INVALID_ARGUMENT', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => {
      try {
        assert.equal(parsePeerTarget(s), s);
      } catch (e) {
        assert.ok(invalid(e), String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

test('parsePort bounds', () => {
  assert.equal(parsePort('6783'), 6783);
  assert.equal(parsePort(1), 1);
  for (const bad of ['0', '65536', '-1', '1.5', ' 80', '', 'abc', 1.5, '123456']) assert.throws(() => parsePort(bad), invalid, String(bad));
});

test('LOOM_VERSION matches package.json', () => {
  // Runs from test/ (tsx) and from dist/test/ (tsc): look upwards for the package's manifest.
  let dir = new URL('.', import.meta.url);
  let pkg: { name?: string; version?: string } = {};
  for (let i = 0; i < 6 && pkg.name !== 'loom'; i++, dir = new URL('..', dir)) {
    try {
      pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'));
    } catch {
      pkg = {};
    }
  }
  assert.equal(LOOM_VERSION, pkg.version);
});
