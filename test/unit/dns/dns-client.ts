/** A minimal DNS client and fake upstream for tests, over real sockets on 127.0.0.1. */
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import * as dnsPacket from 'dns-packet';

const GUARD_MS = 5_000;

export function query(name: string, type: dnsPacket.RecordType = 'A', opts: { id?: number; udpSize?: number } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: opts.udpSize === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: opts.udpSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
}

/** Sends one datagram and waits for one reply (rejects after a guard timeout). */
export function udpAsk(port: number, message: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const guard = setTimeout(() => {
      socket.close();
      reject(new Error('no reply'));
    }, GUARD_MS);
    socket.once('message', (msg) => {
      clearTimeout(guard);
      socket.close();
      resolve(msg);
    });
    socket.send(message, port, host);
  });
}

/**
 * Sends `garbage` then `final` from one socket; resolves with every reply received up to and
 * including the one carrying `final`'s id. Shows what garbage got answered, without sleeping.
 */
export function udpAskAfter(port: number, garbage: Buffer[], final: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const replies: Buffer[] = [];
    const finalId = final.readUInt16BE(0);
    const guard = setTimeout(() => {
      socket.close();
      reject(new Error('no reply to the final query'));
    }, GUARD_MS);
    socket.on('message', (msg) => {
      replies.push(msg);
      if (msg.length >= 2 && msg.readUInt16BE(0) === finalId) {
        clearTimeout(guard);
        socket.close();
        resolve(replies);
      }
    });
    for (const m of garbage) socket.send(m, port, '127.0.0.1');
    socket.send(final, port, '127.0.0.1');
  });
}

/** Writes the framed messages (in `chunks` pieces) and resolves with `expect` framed replies. */
export function tcpAsk(port: number, messages: Buffer[], expect = messages.length, splitAt?: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const replies: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`only ${replies.length} of ${expect} replies`));
    }, GUARD_MS);
    socket.on('error', reject);
    socket.on('connect', () => {
      const framed = Buffer.concat(
        messages.map((m) => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(m.length);
          return Buffer.concat([len, m]);
        }),
      );
      if (splitAt === undefined) socket.write(framed);
      else {
        socket.write(framed.subarray(0, splitAt));
        setImmediate(() => socket.write(framed.subarray(splitAt)));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (replies.length >= expect) {
        clearTimeout(guard);
        socket.destroy();
        resolve(replies);
      }
    });
  });
}

export interface FakeUpstream {
  port: number;
  /** Question names it was asked, in order. */
  asked: string[];
  close(): Promise<void>;
}

/** A resolver on 127.0.0.1 answering every A question with `address` (TTL 60). */
export function startFakeUpstream(address: string, host = '127.0.0.1', port = 0): Promise<FakeUpstream> {
  const socket: Socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions?.[0];
    if (!question) return;
    asked.push(question.name);
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: [question],
      answers: question.type === 'A' ? [{ type: 'A', name: question.name, ttl: 60, class: 'IN', data: address }] : [],
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  return new Promise((resolve) => {
    socket.bind(port, host, () => {
      resolve({ port: socket.address().port, asked, close: () => new Promise((r) => socket.close(() => r())) });
    });
  });
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function rcodeOf(reply: Buffer): number {
  return reply[3]! & 0x0f;
}
