import { LoomError } from '../../core/errors.js';
import type { CliCommand } from '../command.js';

/** Resolved at run time so the CLI builds and runs while the demo does not exist yet. */
const DEMO_MODULE = '../../demo/index.js';

export const demoCommand: CliCommand = {
  register(program, ctx) {
    program
      .command('demo')
      .description('build a small mesh in network namespaces on this machine and show it working')
      .option('--keep', 'leave the namespaces and routers running afterwards')
      .option('--clean', 'remove what an earlier `loom demo --keep` (or a crashed demo) left behind')
      .action(async (opts: { keep?: boolean; clean?: boolean }) => {
        let mod: { runDemo?: unknown };
        try {
          mod = (await import(DEMO_MODULE)) as { runDemo?: unknown };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw new LoomError('ERR_UNAVAILABLE', 'the demo is not part of this build');
          throw err;
        }
        const log = (line: string): void => ctx.out(line + '\n');
        if (opts.clean) {
          if (typeof (mod as { cleanDemo?: unknown }).cleanDemo !== 'function') throw new LoomError('ERR_UNAVAILABLE', 'the demo module has no cleanDemo()');
          await (mod as { cleanDemo: (o: { log: (line: string) => void }) => Promise<void> }).cleanDemo({ log });
          return;
        }
        if (typeof mod.runDemo !== 'function') throw new LoomError('ERR_UNAVAILABLE', 'the demo module has no runDemo()');
        const runDemo = mod.runDemo as (o: { keep: boolean; log: (line: string) => void }) => Promise<unknown>;
        await runDemo({ keep: opts.keep ?? false, log });
      });
  },
};
