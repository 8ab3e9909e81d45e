/** UDP client helpers for the DNS server's path tests (test/unit/dns/udp-path.test.ts, native-responder.test.ts). */
import { createSocket, type Socket } from 'node:dgram';

/** A client socket bound on `host` (any port), so that every send of a burst goes out at once. */
export async function udpClient(host = '127.0.0.1'): Promise<Socket> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => socket.bind(0, host, () => resolve()));
  return socket;
}

/**
 * Sends `messages` in one burst to host:port and resolves with the replies once `until(replies)`
 * holds (checked after each reply). Rejects after `guardMs` (default 10 s), naming the DNS ids of
 * the replies that came.
 */
export function burst(socket: Socket, port: number, messages: Buffer[], until: (replies: Buffer[]) => boolean, options: { host?: string; guardMs?: number } = {}): Promise<Buffer[]> {
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const replies: Buffer[] = [];
    const onMessage = (msg: Buffer): void => {
      replies.push(msg);
      if (until(replies)) done(null);
    };
    const guard = setTimeout(() => done(new Error(`only ${replies.length} replies: ${replies.map((r) => (r.length >= 2 ? r.readUInt16BE(0) : -1)).join(',')}`)), options.guardMs ?? 10_000);
    const done = (err: Error | null): void => {
      clearTimeout(guard);
      socket.off('message', onMessage);
      if (err) reject(err);
      else resolve(replies);
    };
    socket.on('message', onMessage);
    for (const m of messages) socket.send(m, port, host);
  });
}

/** Binds a fresh UDP socket to 127.0.0.1:`port` and closes it: rejects (EADDRINUSE) while something still holds the port. */
export async function bindsAgain(port: number): Promise<void> {
  const again = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', () => resolve());
    });
  } finally {
    again.close();
  }
}
