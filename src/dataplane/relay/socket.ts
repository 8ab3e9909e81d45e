import { createSocket, type Socket } from 'node:dgram';
import type { LookupOneOptions } from 'node:dns';
import { LoomError } from '../../core/errors.js';

/** Makes the relay's UDP sockets; tests pass one that records or wraps them. */
export type SocketFactory = () => Socket;

const SOCKET_BUFFER_BYTES = 4 << 20;

/**
 * The relay only sends to validated IPv4 literals, so "resolving" is the identity, and answering
 * synchronously lets `send` go out at once instead of after a `process.nextTick` per packet.
 */
function literalLookup(
  hostname: string,
  _options: LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, hostname, 4);
}

export const createRelaySocket: SocketFactory = () =>
  createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES, lookup: literalLookup });

/** Binds; rejects with ERR_CONFLICT when the port is taken, ERR_UNAVAILABLE otherwise. */
export function bindSocket(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.off('listening', onListening);
      const code = err.code === 'EADDRINUSE' ? 'ERR_CONFLICT' : 'ERR_UNAVAILABLE';
      reject(new LoomError(code, `cannot bind UDP ${address}:${port}: ${err.message}`, { cause: err }));
    };
    const onListening = (): void => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind(port, address);
  });
}

/** Closes; harmless on a socket that is already closed or was never bound. */
export function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
