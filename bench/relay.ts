/**
 * Relay throughput on 127.0.0.1, in one process: packets/s and Mbit/s of VXLAN datagrams through
 * a relay pair (kernel stand-in -> relay A -> relay B -> kernel stand-in), plain and encrypted,
 * against a baseline in the same run: two bare UDP forwarders chained the same way. Everything
 * shares one event loop, so only the ratios mean something. Also: per-packet AEAD cost with a raw
 * key vs a KeyObject, and the effect of the relay's synchronous address lookup on a bare forwarder.
 *
 * Variants run interleaved, ROUNDS times each, and the median is reported (the machine is shared).
 *
 *   node --import tsx bench/relay.ts [--duration-ms 2000] [--size 1426] [--window 128] [--rounds 3] [--batches 0,8192,16384] [--json]
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { FakeClock } from '../src/core/clock.js';
import { randomPeerName } from '../src/core/ids.js';
import { silentLogger } from '../src/core/logger.js';
import { createRelaySocket, Relay } from '../src/dataplane/relay/index.js';

const LOOPBACK = '127.0.0.1';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const DURATION_MS = arg('duration-ms', 2000);
/** 1426 = VXLAN header 8 + Ethernet 14 + 1404 (the relay's container MTU, sealed). */
const SIZE = arg('size', 1426);
const WINDOW = arg('window', 128);
const ROUNDS = arg('rounds', 3);
const JSON_OUT = process.argv.includes('--json');
/** Relay batch bounds to compare (0 = one frame per datagram); --batches 0,8192 */
const BATCH_SIZES = (() => {
  const i = process.argv.indexOf('--batches');
  const list = i >= 0 ? (process.argv[i + 1] ?? '').split(',').map(Number) : [0, 8192, 16384];
  return list.filter((n) => Number.isInteger(n) && n >= 0 && n <= 32768);
})();

interface Result {
  name: string;
  pps: number;
  mbitPerS: number;
  lost: number;
  /** Relay rows: frames the kernel stand-in sent per datagram between the relays. */
  framesPerDatagram?: number;
}

function bind(socket: Socket, port = 0): Promise<number> {
  return new Promise((resolve) => socket.bind(port, LOOPBACK, () => resolve(socket.address().port)));
}

/**
 * Sends SIZE-byte datagrams to `entryPort`, keeping at most WINDOW in flight (counting arrivals
 * at `sink`), for DURATION_MS. Closed loop, so a slower path gets fewer packets instead of losing them.
 */
async function drive(name: string, entryPort: number, sink: { count: number }): Promise<Result> {
  const sender = createSocket('udp4');
  await bind(sender);
  const payload = randomBytes(SIZE);
  payload[0] = 0x08;
  let sent = 0;
  const start = performance.now();
  const startCount = sink.count;
  let lastProgress = start;
  let lastCount = sink.count;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      const now = performance.now();
      if (now - start >= DURATION_MS) return resolve();
      const delivered = sink.count - startCount;
      if (sink.count !== lastCount) {
        lastCount = sink.count;
        lastProgress = now;
      } else if (now - lastProgress > 50) {
        // Packets were lost: forgive the window so the pump keeps going.
        sent = delivered;
        lastProgress = now;
      }
      for (let i = 0; i < 16 && sent - delivered < WINDOW; i++) {
        sender.send(payload, entryPort, LOOPBACK);
        sent++;
      }
      setImmediate(pump);
    };
    pump();
  });
  const elapsed = (performance.now() - start) / 1000;
  const delivered = sink.count - startCount;
  await new Promise<void>((r) => sender.close(() => r()));
  return { name, pps: Math.round(delivered / elapsed), mbitPerS: Math.round((delivered * SIZE * 8) / elapsed / 1e6), lost: Math.max(0, sent - delivered) };
}

async function sinkSocket(): Promise<{ socket: Socket; port: number; counter: { count: number } }> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  const counter = { count: 0 };
  socket.on('message', () => counter.count++);
  const port = await bind(socket);
  return { socket, port, counter };
}

/** Two chained bare forwarders: the cost of moving a datagram through Node twice, nothing else. */
async function baseline(name: string, literalLookup: boolean): Promise<Result> {
  const sink = await sinkSocket();
  const make = () => (literalLookup ? createRelaySocket() : createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 }));
  const f2 = make();
  const f2Port = await bind(f2);
  f2.on('message', (m: Buffer) => f2.send(m, sink.port, LOOPBACK));
  const f1 = make();
  const f1Port = await bind(f1);
  f1.on('message', (m: Buffer) => f1.send(m, f2Port, LOOPBACK));
  const r = await drive(name, f1Port, sink.counter);
  for (const s of [f1, f2, sink.socket]) s.close();
  return r;
}

async function relayPair(encrypt: boolean, batchBytes: number): Promise<Result> {
  const sink = await sinkSocket();
  const clock = new FakeClock();
  const [na, nb] = [randomPeerName(), randomPeerName()];
  const a = new Relay({ clock, logger: silentLogger }, { self: na, dataPort: 0, bindAddress: LOOPBACK, encrypt, localVxlanPort: sink.port, batchBytes });
  const b = new Relay({ clock, logger: silentLogger }, { self: nb, dataPort: 0, bindAddress: LOOPBACK, encrypt, localVxlanPort: sink.port, batchBytes });
  await a.start();
  await b.start();
  const [k1, k2] = [randomBytes(32), randomBytes(32)];
  a.setNeighbour(nb, { address: `${LOOPBACK}:${b.dataAddress().port}`, keys: { send: k1, receive: k2 } });
  b.setNeighbour(na, { address: `${LOOPBACK}:${a.dataAddress().port}`, keys: { send: k2, receive: k1 } });
  await a.setLocalPort(nb, 0);
  const r = await drive(`relay pair, ${encrypt ? 'ChaCha20-Poly1305' : 'plain'}, batch ${batchBytes || 'off'}`, a.localPortOf(nb)!, sink.counter);
  const sa = a.stats();
  r.framesPerDatagram = Math.round((sa.fromKernel / Math.max(1, sa.batches)) * 10) / 10;
  const drops = Object.entries(b.stats().drops).filter(([, n]) => n > 0);
  if (drops.length > 0 && !JSON_OUT) console.log(`  drops at B: ${JSON.stringify(Object.fromEntries(drops))}`);
  await a.stop();
  await b.stop();
  sink.socket.close();
  return r;
}

/** µs per seal+open of one datagram with node:crypto; a new cipher object per nonce either way. */
function aeadCost(useKeyObject: boolean): { name: string; usPerPacket: number } {
  const raw = randomBytes(32);
  const key = useKeyObject ? createSecretKey(raw) : raw;
  const nonce = Buffer.alloc(12);
  const aad = randomBytes(30);
  const pt = randomBytes(SIZE);
  const n = 20_000;
  const round = (i: number): void => {
    nonce.writeUInt32BE(i, 8);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: pt.length });
    const ct = c.update(pt);
    c.final();
    const tag = c.getAuthTag();
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    d.setAAD(aad, { plaintextLength: ct.length });
    d.setAuthTag(tag);
    d.update(ct);
    d.final();
  };
  for (let i = 0; i < 2000; i++) round(i);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) round(i);
  const us = ((performance.now() - t0) * 1000) / n;
  return { name: `node:crypto seal+open, ${useKeyObject ? 'KeyObject' : 'raw Buffer key'}`, usPerPacket: Math.round(us * 100) / 100 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const crypto = [aeadCost(false), aeadCost(true)];
  const variants: Array<() => Promise<Result>> = [
    () => baseline('baseline: 2 bare forwarders (dns lookup per send)', false),
    () => baseline('baseline: 2 bare forwarders (literal lookup, as the relay)', true),
    ...BATCH_SIZES.flatMap((bytes) => [() => relayPair(false, bytes), () => relayPair(true, bytes)]),
  ];
  const runs: Result[][] = variants.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let v = 0; v < variants.length; v++) runs[v]!.push(await variants[v]!());
  }
  const results: Result[] = runs.map((rs) => ({
    name: rs[0]!.name,
    pps: median(rs.map((r) => r.pps)),
    mbitPerS: median(rs.map((r) => r.mbitPerS)),
    lost: rs.reduce((n, r) => n + r.lost, 0),
    ...(rs[0]!.framesPerDatagram !== undefined ? { framesPerDatagram: median(rs.map((r) => r.framesPerDatagram ?? 0)) } : {}),
  }));
  const base = results[1]!.pps;
  const rows = results.map((r) => ({ ...r, ratioToBaseline: Math.round((r.pps / base) * 100) / 100 }));
  if (JSON_OUT) {
    console.log(JSON.stringify({ durationMs: DURATION_MS, size: SIZE, window: WINDOW, rounds: ROUNDS, crypto, results: rows }));
    return;
  }
  console.log(`datagram ${SIZE} B, ${DURATION_MS} ms per run, median of ${ROUNDS}, window ${WINDOW}; one process, one event loop`);
  for (const c of crypto) console.log(`  ${c.name.padEnd(45)} ${c.usPerPacket} µs/packet`);
  for (const r of rows) {
    console.log(`  ${r.name.padEnd(60)} ${String(r.pps).padStart(8)} pkt/s ${String(r.mbitPerS).padStart(6)} Mbit/s  x${r.ratioToBaseline} (lost ${r.lost})${r.framesPerDatagram !== undefined ? ` ${r.framesPerDatagram} frames/datagram` : ''}`);
  }
}

await main();
