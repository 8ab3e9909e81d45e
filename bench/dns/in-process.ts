/**
 * DNS server throughput and latency over UDP on 127.0.0.1, in one process, against a baseline
 * run in the same process and the same way: a trivial UDP echo server. Only the ratios mean
 * something (client, server and baseline share one event loop and the machine's CPUs).
 *
 *   node --import tsx bench/dns/in-process.ts [--duration-ms 3000] [--concurrency 32] [--records 3] [--json]
 *
 * Needs no root: a quick check while working on the answer path. The real comparison, dnsperf
 * against Loom and dnsmasq in namespaces, is bench/dns.ts.
 */
import { createSocket, type Socket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { FakeClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import type { MeshView } from '../../src/mesh/types.js';
import type { PeerName } from '../../src/core/ids.js';
import { DnsRecordStore } from '../../src/dns/store.js';
import { DnsServer } from '../../src/dns/server.js';

interface LoadResult {
  qps: number;
  p50Ms: number;
  p99Ms: number;
  received: number;
  lost: number;
}

const LOST_AFTER_MS = 500;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

/** Keeps `concurrency` queries outstanding for `durationMs`; each reply (matched by id) sends the next. */
function load(port: number, template: Buffer, durationMs: number, concurrency: number): Promise<LoadResult> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    let nextId = 0;
    let lost = 0;
    const started = performance.now();
    const end = started + durationMs;
    const send = (): void => {
      if (performance.now() >= end) return;
      const id = nextId++ & 0xffff;
      const message = Buffer.from(template);
      message.writeUInt16BE(id, 0);
      sentAt.set(id, performance.now());
      socket.send(message, port, '127.0.0.1');
    };
    socket.on('message', (msg) => {
      const id = msg.readUInt16BE(0);
      const at = sentAt.get(id);
      if (at === undefined) return;
      sentAt.delete(id);
      latencies.push(performance.now() - at);
      send();
    });
    const sweep = setInterval(() => {
      const now = performance.now();
      for (const [id, at] of sentAt) {
        if (now - at < LOST_AFTER_MS) continue;
        sentAt.delete(id);
        lost++;
        send();
      }
      if (now >= end && (sentAt.size === 0 || now >= end + LOST_AFTER_MS)) {
        clearInterval(sweep);
        socket.close();
        latencies.sort((a, b) => a - b);
        const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
        resolve({ qps: latencies.length / ((Math.min(now, end) - started) / 1000), p50Ms: at(0.5), p99Ms: at(0.99), received: latencies.length, lost: lost + sentAt.size });
      }
    }, 50);
    for (let i = 0; i < concurrency; i++) send();
  });
}

async function startEcho(): Promise<{ port: number; socket: Socket }> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { port: socket.address().port, socket };
}

async function main(): Promise<void> {
  const durationMs = arg('duration-ms', 3000);
  const concurrency = arg('concurrency', 32);
  const records = arg('records', 3);
  const self = '02:00:00:00:00:01' as PeerName;
  const mesh: MeshView = { self, reachablePeers: () => [self], isReachable: (p) => p === self, nicknameOf: () => undefined, onChange: () => () => {} };
  const store = new DnsRecordStore({ mesh, clock: new FakeClock(), logger: silentLogger });
  const server = new DnsServer({ store }, { resolvConfPath: '/nonexistent' });
  for (let i = 1; i <= records; i++) server.add('web', `10.32.0.${i}`, `c${i}`);
  const bound = await server.start({ udp: { host: '127.0.0.1', port: 0 } });
  const echo = await startEcho();
  const template = dnsPacket.encode({ type: 'query', id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'web.loom.local', class: 'IN' }] });
  try {
    await load(echo.port, template, Math.min(500, durationMs), concurrency); // warm-up
    const baseline = await load(echo.port, template, durationMs, concurrency);
    const dns = await load(bound.udp!.port, template, durationMs, concurrency);
    const result = {
      bench: 'dns-udp-local-A',
      durationMs,
      concurrency,
      records,
      echo: baseline,
      loom: dns,
      ratio: { qps: dns.qps / baseline.qps, p50: dns.p50Ms / baseline.p50Ms, p99: dns.p99Ms / baseline.p99Ms },
    };
    if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const f = (r: LoadResult): string => `${r.qps.toFixed(0)} q/s  p50 ${r.p50Ms.toFixed(3)} ms  p99 ${r.p99Ms.toFixed(3)} ms  lost ${r.lost}`;
      process.stdout.write(
        [
          `dns bench: ${durationMs} ms, ${concurrency} outstanding, A query with ${records} records, UDP 127.0.0.1`,
          `  echo baseline : ${f(baseline)}`,
          `  loom dns      : ${f(dns)}`,
          `  ratio loom/echo: qps ${result.ratio.qps.toFixed(2)}  p50 ${result.ratio.p50.toFixed(2)}x  p99 ${result.ratio.p99.toFixed(2)}x`,
          '',
        ].join('\n'),
      );
    }
  } finally {
    await server.stop();
    echo.socket.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exitCode = 1;
});
