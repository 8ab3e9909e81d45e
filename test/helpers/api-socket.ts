/**
 * A name for a test daemon's local API socket. Unit tests run their daemons in the root network
 * namespace, shared by every test process (and every worker on the machine), where abstract names
 * are one namespace: each daemon needs a name of its own, never the default `loom/api`.
 */
import { randomBytes } from 'node:crypto';

export function testApiSocket(): string {
  return `loom-test/${process.pid}/${randomBytes(6).toString('hex')}`;
}
