/**
 * The `loom-cni` executable (bin/loom-cni): reads stdin, runs one CNI call, prints the answer.
 * Loads only node built-ins and this folder's plugin side: every pod start pays for start-up.
 */
import { readFileSync } from 'node:fs';
import { execDelegator } from './delegate.js';
import { runPlugin } from './plugin.js';
import { socketTransport } from './router-client.js';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

const env = process.env;
const out = await runPlugin({ env, stdin: readStdin(), router: socketTransport, delegator: (path) => execDelegator(env, path) });
process.stdout.write(out.stdout);
process.exitCode = out.exitCode;
