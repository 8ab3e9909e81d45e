import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { ApiServer } from '../../../src/api/server.js';
import { registerRouterRoutes } from '../../../src/api/router-routes.js';
import { HTTP_STATUS_BY_CODE } from '../../../src/api/http-errors.js';
import { LoomError, ERROR_CODES, recordingLogger } from '../../../src/core/index.js';
import { FakeRouter } from './fake-router.js';
import { BUILD_ID } from '../../../src/core/build-id.js';
import { testApiSocket } from '../../helpers/api-socket.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => any;
}

/** One request: `to` is a TCP port on 127.0.0.1 (the read-only listener) or a local socket's abstract name. */
function send(to: number | string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const at = typeof to === 'string' ? { socketPath: '\0' + to } : { host: '127.0.0.1', port: to };
    const req = request({ ...at, method, path, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('ApiServer with the mesh routes', () => {
  const router = new FakeRouter();
  const logger = recordingLogger();
  const server = new ApiServer({ logger }, { host: '127.0.0.1', port: 0, socket: testApiSocket() });
  let stops = 0;
  let port = 0;
  let socket = '';

  before(async () => {
    registerRouterRoutes(server, router, { onStop: () => stops++, defaultMetrics: true });
    server.route('GET', '/boom', () => {
      throw new Error('secret internals');
    });
    server.route('GET', '/conflict', () => {
      throw new LoomError('ERR_CONFLICT', 'already there');
    });
    server.registerReportSection('ipam', () => ({ range: '10.32.0.0/12' }));
    const listening = await server.listen();
    port = listening.port;
    socket = listening.socket!;
  });
  after(() => server.close());

  test('every answer, JSON or error, on either listener, carries a Date header the router formats itself (RFC 9110 IMF-fixdate)', async () => {
    for (const [to, path] of [[port, '/status'], [port, '/nope'], [socket, '/status'], [socket, '/conflict']] as const) {
      const before = Math.floor(Date.now() / 1000) * 1000;
      const reply = await send(to, 'GET', path);
      const date = reply.headers['date'];
      assert.equal(typeof date, 'string', `${path}: a Date header`);
      assert.match(date as string, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      const at = Date.parse(date as string);
      assert.ok(at >= before && at <= Date.now(), `${path}: the time of the answer (${date as string})`);
    }
  });

  test('the TCP listener is read-only: GET answers, every other method is 403 ERR_FORBIDDEN before routing', async () => {
    assert.equal((await send(port, 'GET', '/status')).status, 200);
    const targets = [...router.targets];
    for (const [method, path] of [['POST', '/connect'], ['POST', '/stop'], ['DELETE', '/containers/x'], ['PUT', '/nope'], ['POST', '/no-such-route']]) {
      const r = await send(port, method!, path!, JSON.stringify({ peers: ['10.0.0.9'] }), { 'Content-Type': 'application/json' });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(r.json().error.code, 'ERR_FORBIDDEN');
      assert.match(r.json().error.message, /local socket/);
      assert.equal(r.headers['connection'], 'close');
    }
    assert.deepEqual(router.targets, targets, 'nothing the refused calls asked for happened');
    assert.equal(stops, 0);
    // The same calls on the local socket are served.
    assert.equal((await send(socket, 'GET', '/status')).status, 200);
  });

  test('GET /status returns the RouterStatus as JSON', async () => {
    const r = await send(port, 'GET', '/status');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.equal(r.headers['x-loom-build'], BUILD_ID, 'names its build (the light client trusts only its own)');
    assert.deepEqual(r.json(), JSON.parse(JSON.stringify(router.status())));
  });

  test('GET /report has version, the router section and registered sections', async () => {
    const r = await send(port, 'GET', '/report');
    assert.equal(r.status, 200);
    const body = r.json();
    assert.equal(body.version, '0.1.0');
    assert.equal(body.router.name, '8a:3f:00:12:9c:01');
    assert.equal(body.router.nickname, 'host1');
    assert.equal(body.router.peers.length, 3);
    assert.deepEqual(Object.keys(body.router.connections[0]).sort().slice(0, 4), ['address', 'encrypted', 'info', 'outbound']);
    assert.deepEqual(body.ipam, { range: '10.32.0.0/12' });
  });

  test('a section name cannot be registered twice', () => {
    assert.throws(() => server.registerReportSection('router', () => ({})), (e: unknown) => e instanceof LoomError && e.code === 'ERR_CONFLICT');
    assert.throws(() => server.registerReportSection('version', () => ({})), (e: unknown) => e instanceof LoomError && e.code === 'ERR_CONFLICT');
  });

  test('GET /healthz', async () => {
    const r = await send(port, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { ok: true });
  });

  test('POST /connect adds targets; replace drops the others', async () => {
    let r = await send(socket, 'POST', '/connect', JSON.stringify({ peers: ['10.0.0.5', '[fd00::1]:7000'] }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json().targets, ['192.168.1.2:6783', '192.168.1.3:6783', '10.0.0.5:6783', '[fd00::1]:7000']);
    r = await send(socket, 'POST', '/connect', JSON.stringify({ peers: ['10.0.0.5', 'Host4'], replace: true }));
    assert.equal(r.status, 200);
    // 10.0.0.5 and 10.0.0.5:6783 are one target: it is kept, not forgotten and re-dialled.
    assert.deepEqual(r.json().targets, ['10.0.0.5:6783', 'host4:6783']);
    assert.ok(router.calls.includes('forget 192.168.1.2:6783,192.168.1.3:6783,[fd00::1]:7000'));
  });

  test('POST /forget removes targets', async () => {
    const r = await send(socket, 'POST', '/forget', JSON.stringify({ peers: ['host4'] }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json().targets, ['10.0.0.5:6783']);
  });

  for (const [name, body, code] of [
    ['bad JSON', '{"peers": [', 'ERR_INVALID_ARGUMENT'],
    ['no body', '', 'ERR_INVALID_ARGUMENT'],
    ['peers not an array', '{"peers": "10.0.0.1"}', 'ERR_INVALID_ARGUMENT'],
    ['empty peers', '{"peers": []}', 'ERR_INVALID_ARGUMENT'],
    ['unknown field', '{"peers": ["a"], "evil": 1}', 'ERR_INVALID_ARGUMENT'],
    ['bad port', '{"peers": ["10.0.0.1:99999"]}', 'ERR_INVALID_ARGUMENT'],
    ['bad host', '{"peers": ["not a host"]}', 'ERR_INVALID_ARGUMENT'],
    ['bare IPv6', '{"peers": ["fd00::1"]}', 'ERR_INVALID_ARGUMENT'],
    ['router refuses', '{"peers": ["bad.example"]}', 'ERR_INVALID_ARGUMENT'],
  ] as const) {
    test(`POST /connect rejects ${name} with 400 ${code}`, async () => {
      const r = await send(socket, 'POST', '/connect', body);
      assert.equal(r.status, 400);
      assert.equal(r.json().error.code, code);
      assert.equal(typeof r.json().error.message, 'string');
    });
  }

  test('an oversized body is refused with 413 by Content-Length, before reading it', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
    const r = await send(socket, 'POST', '/connect', big, { 'Content-Type': 'application/json' });
    assert.equal(r.status, 413);
    assert.equal(r.json().error.code, 'ERR_FRAME_TOO_LARGE');
  });

  test('an oversized chunked body is refused with 413 while streaming', async () => {
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = request({ socketPath: '\0' + socket, method: 'POST', path: '/connect', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      });
      req.on('error', reject);
      // No Content-Length: chunked; 2 MiB in 64 KiB pieces.
      const piece = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < 32) {
          sent++;
          if (!req.write(piece)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    }).catch((err: NodeJS.ErrnoException) => {
      // The server may close before the client has finished writing; that also proves the cap.
      assert.ok(err.code === 'ECONNRESET' || err.code === 'EPIPE', String(err));
      return null;
    });
    if (r) {
      assert.equal(r.status, 413);
      assert.equal(r.json().error.code, 'ERR_FRAME_TOO_LARGE');
    }
  });

  test('unknown path => 404 ERR_NOT_FOUND; wrong method => 404 naming the right one', async () => {
    let r = await send(port, 'GET', '/nope');
    assert.equal(r.status, 404);
    assert.equal(r.json().error.code, 'ERR_NOT_FOUND');
    r = await send(port, 'GET', '/connect');
    assert.equal(r.status, 404);
    assert.match(r.json().error.message, /POST/);
  });

  test('LoomErrors map through the table; other errors are 500 without internals, and logged', async () => {
    let r = await send(port, 'GET', '/conflict');
    assert.equal(r.status, 409);
    assert.deepEqual(r.json(), { error: { code: 'ERR_CONFLICT', message: 'already there' } });
    r = await send(port, 'GET', '/boom');
    assert.equal(r.status, 500);
    assert.equal(r.json().error.code, 'ERR_INTERNAL');
    assert.doesNotMatch(r.text, /secret/);
    assert.ok(logger.records.some((x) => x.level === 'error' && x.msg === 'API request failed'));
  });

  test('GET /metrics exposes the loom metrics from the status and the process metrics', async () => {
    const r = await send(port, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.match(r.text, /^loom_connections\{state="established",encrypted="true"\} 2$/m);
    assert.match(r.text, /^loom_connections\{state="retrying",encrypted="true"\} 1$/m);
    assert.match(r.text, /^loom_connections\{state="failed",encrypted="true"\} 0$/m);
    assert.match(r.text, /^# TYPE loom_connection_terminations_total counter$/m);
    assert.match(r.text, /^loom_connection_terminations_total 7$/m);
    assert.match(r.text, /^loom_gossip_bytes_total\{direction="sent"\} 1000$/m);
    assert.match(r.text, /^loom_gossip_bytes_total\{direction="received"\} 2500$/m);
    assert.match(r.text, /^loom_gossip_messages_total\{direction="received"\} 25$/m);
    assert.match(r.text, /^loom_peers 3$/m);
    assert.match(r.text, /^process_cpu_user_seconds_total /m);
    // Scraping twice does not double the counters (they mirror the router's totals).
    const again = await send(port, 'GET', '/metrics');
    assert.match(again.text, /^loom_connection_terminations_total 7$/m);
  });

  test('POST /stop answers 202 and calls onStop once, after replying', async () => {
    const r = await send(socket, 'POST', '/stop');
    assert.equal(r.status, 202);
    assert.deepEqual(r.json(), { stopping: true });
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setImmediate(res));
    assert.equal(stops, 1);
    const second = await send(socket, 'POST', '/stop');
    assert.equal(second.status, 202);
    await new Promise((res) => setImmediate(res));
    assert.equal(stops, 1);
  });
});

test('every error code has an HTTP status in the table', () => {
  for (const code of ERROR_CODES) {
    const status = HTTP_STATUS_BY_CODE[code];
    assert.ok(status >= 400 && status < 600, code);
  }
  assert.equal(HTTP_STATUS_BY_CODE.ERR_INVALID_ARGUMENT, 400);
  assert.equal(HTTP_STATUS_BY_CODE.ERR_NOT_FOUND, 404);
  assert.equal(HTTP_STATUS_BY_CODE.ERR_UNAVAILABLE, 503);
});

test('POST /stop without an onStop hook is ERR_UNAVAILABLE; a taken port or socket is ERR_UNAVAILABLE', async () => {
  const a = new ApiServer({ logger: recordingLogger() }, { port: 0, socket: testApiSocket() });
  registerRouterRoutes(a, new FakeRouter(), { defaultMetrics: false });
  const { port, socket } = await a.listen();
  try {
    const r = await send(socket!, 'POST', '/stop');
    assert.equal(r.status, 503);
    assert.equal(r.json().error.code, 'ERR_UNAVAILABLE');
    const b = new ApiServer({ logger: recordingLogger() }, { port });
    await assert.rejects(b.listen(), (e: unknown) => e instanceof LoomError && e.code === 'ERR_UNAVAILABLE');
    // The socket is taken: nothing stays bound (the TCP port of c is free again at once).
    const c = new ApiServer({ logger: recordingLogger() }, { port: 0, socket: socket! });
    await assert.rejects(c.listen(), (e: unknown) => e instanceof LoomError && e.code === 'ERR_UNAVAILABLE' && e.message.includes(`@${socket!}`));
    await c.close();
  } finally {
    await a.close();
    await a.close();
  }
});

test('the local socket serves only the allowed uids: anyone else gets 403 ERR_FORBIDDEN, unrouted, warned once per uid', async () => {
  const logger = recordingLogger();
  let uid = 1000;
  const router = new FakeRouter();
  const server = new ApiServer({ logger, peerUid: () => uid }, { port: 0, socket: testApiSocket(), allowedUids: [0] });
  let stops = 0;
  registerRouterRoutes(server, router, { onStop: () => stops++, defaultMetrics: false });
  const { socket, port } = await server.listen();
  try {
    for (let i = 0; i < 3; i++) {
      const r = await send(socket!, 'POST', '/stop');
      assert.equal(r.status, 403);
      assert.equal(r.json().error.code, 'ERR_FORBIDDEN');
      assert.equal(r.headers['connection'], 'close');
    }
    assert.equal((await send(socket!, 'GET', '/status')).status, 403, 'reads too: the socket is for root');
    assert.equal(stops, 0);
    assert.equal(logger.records.filter((r) => r.level === 'warn' && /refused a local API connection/.test(r.msg ?? '')).length, 1, 'one warning for uid 1000');
    uid = 1001;
    assert.equal((await send(socket!, 'GET', '/status')).status, 403);
    assert.equal(logger.records.filter((r) => r.level === 'warn').length, 2, 'another uid, another warning');
    uid = 0;
    assert.equal((await send(socket!, 'POST', '/stop')).status, 202);
    assert.equal((await send(port, 'GET', '/status')).status, 200, 'TCP reads do not look at the uid');
  } finally {
    await server.close();
  }
});

test('a peer whose credentials cannot be read is refused (fail closed)', async () => {
  const server = new ApiServer({ logger: recordingLogger(), peerUid: () => { throw new LoomError('ERR_OS_COMMAND', 'no fd'); } }, { port: 0, socket: testApiSocket() });
  registerRouterRoutes(server, new FakeRouter(), { defaultMetrics: false });
  const { socket } = await server.listen();
  try {
    assert.equal((await send(socket!, 'GET', '/status')).status, 403);
  } finally {
    await server.close();
  }
});

test('SO_PEERCRED for real: this process (root or not) is allowed on its own socket', async () => {
  const server = new ApiServer({ logger: recordingLogger() }, { port: 0, socket: testApiSocket() });
  registerRouterRoutes(server, new FakeRouter(), { defaultMetrics: false });
  const { socket } = await server.listen();
  try {
    assert.equal((await send(socket!, 'GET', '/status')).status, 200);
  } finally {
    await server.close();
  }
});

test('close drops the local socket\'s open connections at once (a kept-alive client does not hold it)', async () => {
  const server = new ApiServer({ logger: recordingLogger() }, { port: 0, socket: testApiSocket() });
  registerRouterRoutes(server, new FakeRouter(), { defaultMetrics: false });
  const { socket } = await server.listen();
  const agent = new Agent({ keepAlive: true });
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: '\0' + socket!, path: '/status', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
    const started = Date.now();
    await server.close();
    assert.ok(Date.now() - started < 500, `close took ${Date.now() - started} ms`);
  } finally {
    agent.destroy();
  }
});

test('ERR_STORAGE answers 507 and is logged at error level once per reason, not once per request', async () => {
  const logger = recordingLogger();
  const server = new ApiServer({ logger }, { port: 0, socket: testApiSocket() });
  let errno = 'ENOSPC';
  server.route('GET', '/write', () => {
    throw new LoomError('ERR_STORAGE', `cannot write /state/x.json: refused (${errno})`, { detail: { path: '/state/x.json', errno } });
  });
  const { port } = await server.listen();
  try {
    const errors = (): string[] => logger.records.filter((r) => r.level === 'error').map((r) => r.msg ?? '');
    for (let i = 0; i < 4; i++) {
      const r = await send(port, 'GET', '/write');
      assert.equal(r.status, 507);
      assert.equal(r.json().error.code, 'ERR_STORAGE');
      assert.match(r.json().error.message, /cannot write \/state\/x\.json/);
    }
    assert.equal(errors().length, 1);
    assert.match(errors()[0]!, /the state directory refuses writes: cannot write \/state\/x\.json/);
    errno = 'EROFS';
    await send(port, 'GET', '/write');
    await send(port, 'GET', '/write');
    assert.equal(errors().length, 2, 'another reason is said once more');
  } finally {
    await server.close();
  }
});
