/**
 * A stand-in for src/cli/main.ts that a background-launch test re-executes: the real CLI with a
 * FakeRouter instead of a TCP mesh (no sockets but the API on loopback). Does nothing unless
 * LOOM_TEST_FAKE_DAEMON=1, because test runners also load every file under test/.
 */
import { fileURLToPath } from 'node:url';
import { runCli } from '../../../src/cli/run.js';
import type { CliContext } from '../../../src/cli/context.js';
import type { RouterStatus } from '../../../src/mesh/types.js';
import { FakeRouter } from '../api/fake-router.js';

if (process.env['LOOM_TEST_FAKE_DAEMON'] === '1') {
  const ctx: CliContext = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    node: [process.execPath, ...process.execArgv],
    entry: fileURLToPath(import.meta.url),
    loadRouterFactory: async () => (config, identity) => {
      const router = new FakeRouter();
      router.targets = config.peers.map((p) => (p.includes(':') ? p : `${p}:${config.port}`));
      const status = router.status.bind(router);
      router.status = (): RouterStatus => ({ ...status(), name: identity.name, nickname: identity.nickname, uid: identity.uid });
      return router;
    },
  };
  process.exitCode = await runCli(process.argv.slice(2), ctx);
}
