import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultNickname, foregroundArgs, parseLaunchOptions } from '../../../src/daemon/options.js';
import { LoomError } from '../../../src/core/errors.js';

const invalid = (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT';

test('defaults: port 6783, discovery on, conn-limit 100, host name as nickname, /var/lib/loom, 127.0.0.1:6784', () => {
  const c = parseLaunchOptions({}, [], {}, 'host1.example.com');
  assert.equal(c.port, 6783);
  assert.equal(c.name, undefined);
  assert.equal(c.nickname, 'host1');
  assert.equal(c.password, undefined);
  assert.equal(c.discovery, true);
  assert.equal(c.connLimit, 100);
  assert.equal(c.stateDir, '/var/lib/loom');
  assert.equal(c.httpAddr, '127.0.0.1:6784');
  assert.equal(c.httpHost, '127.0.0.1');
  assert.equal(c.httpPort, 6784);
  assert.deepEqual(c.peers, []);
});

test('flags win over the environment; the environment wins over defaults', () => {
  const env = { LOOM_PASSWORD: 'envpw', LOOM_STATE_DIR: '/tmp/env-state', LOOM_HTTP_ADDR: '127.0.0.1:7000' };
  const fromEnv = parseLaunchOptions({}, [], env, 'h');
  assert.equal(fromEnv.password, 'envpw');
  assert.equal(fromEnv.stateDir, '/tmp/env-state');
  assert.equal(fromEnv.httpPort, 7000);
  const fromFlags = parseLaunchOptions(
    { password: 'flagpw', stateDir: '/tmp/flag-state', httpAddr: '[::1]:7001', port: '7783', name: '8A:3F:00:12:9C:01', nickname: 'n1', discovery: false, connLimit: '5' },
    ['192.168.1.2', 'host3:7783', '[fd00::2]'],
    env,
    'h',
  );
  assert.equal(fromFlags.password, 'flagpw');
  assert.equal(fromFlags.stateDir, '/tmp/flag-state');
  assert.equal(fromFlags.httpHost, '::1');
  assert.equal(fromFlags.httpPort, 7001);
  assert.equal(fromFlags.port, 7783);
  assert.equal(fromFlags.name, '8a:3f:00:12:9c:01');
  assert.equal(fromFlags.nickname, 'n1');
  assert.equal(fromFlags.discovery, false);
  assert.equal(fromFlags.connLimit, 5);
  assert.deepEqual(fromFlags.peers, ['192.168.1.2', 'host3:7783', '[fd00::2]']);
});

test('bad values => ERR_INVALID_ARGUMENT', () => {
  const cases: Array<[Parameters<typeof parseLaunchOptions>[0], string[]]> = [
    [{ port: '0' }, []],
    [{ port: '65536' }, []],
    [{ port: 'http' }, []],
    [{ name: 'host1' }, []],
    [{ name: '8a:3f:00:12:9c' }, []],
    [{ nickname: 'has space' }, []],
    [{ nickname: 'paren(' }, []],
    [{ nickname: 'x'.repeat(65) }, []],
    [{ connLimit: '0' }, []],
    [{ connLimit: '-3' }, []],
    [{ connLimit: '1e3' }, []],
    [{ connLimit: '10001' }, []],
    [{ httpAddr: '127.0.0.1' }, []],
    [{ httpAddr: '127.0.0.1:99999' }, []],
    [{ password: '' }, []],
    [{ stateDir: '' }, []],
    [{}, ['host:0']],
    [{}, ['fd00::1']],
    [{}, ['a b']],
    [{}, ['']],
  ];
  for (const [raw, peers] of cases) assert.throws(() => parseLaunchOptions(raw, peers, {}, 'h'), invalid, JSON.stringify([raw, peers]));
});

test('defaultNickname keeps the first label and only allowed characters', () => {
  assert.equal(defaultNickname('web-1.prod.example'), 'web-1');
  assert.equal(defaultNickname('我的电脑'), 'loom');
  assert.equal(defaultNickname(''), 'loom');
  assert.equal(defaultNickname('_x'), 'x');
});

test('foregroundArgs round-trips through the parser, without the password', () => {
  const c = parseLaunchOptions({ password: 'secret', name: '8a:3f:00:12:9c:01', discovery: false, connLimit: '7', port: '7000', stateDir: '/tmp/s', httpAddr: '127.0.0.1:7001' }, ['host-a', '10.0.0.1:7000'], {}, 'h');
  const args = foregroundArgs(c);
  assert.ok(!args.join(' ').includes('secret'));
  assert.deepEqual(args.slice(0, 2), ['launch', '--foreground']);
  const dashdash = args.indexOf('--');
  assert.deepEqual(args.slice(dashdash + 1), c.peers);
  assert.ok(args.includes('--no-discovery'));
});

test('the segment MTU defaults to 1450, or 1402 with a password (flag or LOOM_PASSWORD); --mtu and LOOM_MTU win', () => {
  assert.equal(parseLaunchOptions({}, [], {}, 'h').dataplane.mtu, 1450);
  assert.equal(parseLaunchOptions({ password: 'pw' }, [], {}, 'h').dataplane.mtu, 1402);
  assert.equal(parseLaunchOptions({}, [], { LOOM_PASSWORD: 'pw' }, 'h').dataplane.mtu, 1402);
  assert.equal(parseLaunchOptions({ password: 'pw' }, [], { LOOM_MTU: '1450' }, 'h').dataplane.mtu, 1450);
  assert.equal(parseLaunchOptions({ password: 'pw', mtu: '1300' }, [], {}, 'h').dataplane.mtu, 1300);
});

test('settings read only from the environment: LOOM_LOG_LEVEL, LOOM_DNS_UDP, LOOM_DNS_NATIVE, LOOM_RELAY_PATH, NODE_TEST_CONTEXT', () => {
  const config = parseLaunchOptions({}, [], { LOOM_LOG_LEVEL: 'debug', LOOM_DNS_UDP: 'dgram', LOOM_DNS_NATIVE: '0', LOOM_RELAY_PATH: 'vxlan-port', NODE_TEST_CONTEXT: 'child' }, 'h');
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.dns.udpPath, 'dgram');
  assert.equal(config.dns.nativeResponder, false);
  assert.equal(config.dataplane.relayPath, 'vxlan-port');
  assert.equal(config.dataplane.underTestRunner, true);
  const plain = parseLaunchOptions({}, [], {}, 'h');
  assert.equal(plain.logLevel, 'info');
  assert.equal(plain.dns.udpPath, 'auto');
  assert.equal(plain.dns.nativeResponder, true);
  assert.equal(plain.dataplane.underTestRunner, false);
  assert.throws(() => parseLaunchOptions({}, [], { LOOM_LOG_LEVEL: 'loud' }, 'h'), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT' && /LOOM_LOG_LEVEL/.test(e.message));
  assert.throws(() => parseLaunchOptions({}, [], { LOOM_RELAY_PATH: 'kernel' }, 'h'), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => parseLaunchOptions({}, [], { LOOM_DNS_UDP: 'fast' }, 'h'), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_CONFIG');
});

test('--api-socket: default loom/api, then LOOM_API_SOCKET, then the flag; passed on to a background child', () => {
  assert.equal(parseLaunchOptions({}, [], {}, 'h').apiSocket, 'loom/api');
  assert.equal(parseLaunchOptions({}, [], { LOOM_API_SOCKET: 'loom/env' }, 'h').apiSocket, 'loom/env');
  const c = parseLaunchOptions({ apiSocket: 'loom/flag' }, [], { LOOM_API_SOCKET: 'loom/env' }, 'h');
  assert.equal(c.apiSocket, 'loom/flag');
  const args = foregroundArgs(c);
  assert.equal(args[args.indexOf('--api-socket') + 1], 'loom/flag');
  for (const bad of ['', 'a\0b', 'x'.repeat(108)]) assert.throws(() => parseLaunchOptions({ apiSocket: bad }, [], {}, 'h'), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT');
});

test('--log-level: debug, info, warn or error; it wins over LOOM_LOG_LEVEL; a bad value names the flag; the background child gets it', () => {
  for (const level of ['debug', 'info', 'warn', 'error']) assert.equal(parseLaunchOptions({ logLevel: level }, [], {}, 'h').logLevel, level);
  assert.equal(parseLaunchOptions({ logLevel: 'warn' }, [], { LOOM_LOG_LEVEL: 'debug' }, 'h').logLevel, 'warn');
  assert.equal(parseLaunchOptions({}, [], {}, 'h').logLevel, 'info');
  for (const bad of ['loud', 'INFO', 'trace', '']) {
    assert.throws(() => parseLaunchOptions({ logLevel: bad }, [], {}, 'h'), (e: unknown) => invalid(e) && /--log-level/.test((e as Error).message) && /debug, info, warn, error/.test((e as Error).message), bad);
  }
  const args = foregroundArgs(parseLaunchOptions({ logLevel: 'debug' }, [], {}, 'h'));
  assert.equal(args[args.indexOf('--log-level') + 1], 'debug');
  assert.equal(parseLaunchOptions({ logLevel: 'debug' }, [], {}, 'h').logLevel, 'debug');
  // A level only the environment can name stays in the environment.
  assert.ok(!foregroundArgs(parseLaunchOptions({}, [], { LOOM_LOG_LEVEL: 'trace' }, 'h')).includes('--log-level'));
});
