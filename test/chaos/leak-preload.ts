/**
 * A deliberate leak, to show the soak's RSS check fails on one (`npm run chaos -- --scenario soak
 * --leak-kb N`): loaded into a router with NODE_OPTIONS=--import=<this file> (SoakOptions.leak),
 * it keeps LOOM_TEST_LEAK_KB kilobytes of JS strings, forever, for every mutating HTTP request the
 * process serves (each `loom run`, `rm`, `dns-add`, `dns-remove` on that host): a retained-heap
 * leak that no collection can give back, as a forgotten map entry per container would be. Test
 * code only; nothing in src loads it.
 */
import { randomBytes } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';

const kb = Number(process.env['LOOM_TEST_LEAK_KB'] ?? 0);
const kept: string[] = [];

if (Number.isInteger(kb) && kb > 0) {
  subscribe('http.server.request.start', (message) => {
    const method = (message as { request?: { method?: string } }).request?.method;
    // Hex text: kb KiB of one-byte string in V8's heap per request.
    if (method !== undefined && method !== 'GET' && method !== 'HEAD') kept.push(randomBytes(kb * 512).toString('hex'));
  });
}
