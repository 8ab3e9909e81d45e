import { createSocket } from 'node:dgram';

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
