/**
 * Helper for test/e2e/netlink-attach.test.ts, run inside a scratch "host" netns (`ip netns exec NS
 * node ...`): attaches a target namespace to that host's bridge with the real rtnetlink door. One
 * JSON command in argv[2] (attach specs as JSON: address text, parsed here, the fixture's edge), one
 * JSON answer on stdout: each attach's result or error, and the time it took. Not a test file itself.
 */
import { performance } from 'node:perf_hooks';
import { attachNetwork } from '../../src/containers/attach.js';
import type { AttachSpec } from '../../src/containers/types.js';
import { systemClock } from '../../src/core/clock.js';
import { parseCidr } from '../../src/core/net.js';

type JsonSpec = Omit<AttachSpec, 'cidr'> & { cidr: string };

async function main(): Promise<unknown> {
  const specs = JSON.parse(process.argv[2] ?? '[]') as JsonSpec[];
  const answers = [];
  for (const spec of specs) {
    const started = performance.now();
    try {
      const result = await attachNetwork({ clock: systemClock }, { ...spec, cidr: parseCidr(spec.cidr) });
      answers.push({ result, ms: performance.now() - started });
    } catch (err) {
      answers.push({ error: { code: (err as { code?: string }).code, message: (err as Error).message }, ms: performance.now() - started });
    }
  }
  return answers;
}

main().then(
  (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`),
  (err: unknown) => {
    process.stderr.write(`${JSON.stringify({ error: String(err) })}\n`);
    process.exitCode = 1;
  },
);
