/**
 * The `loom` Node CLI. bin/loom (the native front, native/loom.c) runs it bundled for every command
 * it does not hand to the router (scripts/build-cli.mjs: dist/src/cli/loom.cjs,
 * CommonJS, so no top-level await here); `node dist/src/cli/main.js` runs it unbundled. Running
 * this module runs the CLI; `launch` re-executes it (`entry`, the bundle when bundled), with the
 * same Node flags, to start a background daemon.
 */
import { fileURLToPath } from 'node:url';
import { runCli } from './run.js';
import { runCliInProcess } from './in-process.js';
import type { CliContext } from './context.js';
import { restoreExtraCaCerts } from './extra-ca-certs.js';

// Before anything is spawned (see extra-ca-certs.ts).
restoreExtraCaCerts(process.env);

const ctx: CliContext = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  env: process.env,
  node: [process.execPath, ...process.execArgv],
  entry: fileURLToPath(import.meta.url),
  loadRouterFactory: async () => (await import('../daemon/entry.js')).createRouter,
  cliExec: (argv, env) => runCliInProcess(runCli, argv, env, ctx),
};

void runCli(process.argv.slice(2), ctx).then((code) => {
  process.exitCode = code;
});
