import type { CliCommand } from '../command.js';

export const demoCommand: CliCommand = {
  register(program, ctx) {
    program
      .command('demo')
      .description('build a small mesh in network namespaces on this machine and show it working')
      .option('--keep', 'leave the namespaces and routers running afterwards')
      .option('--clean', 'remove what an earlier `loom demo --keep` (or a crashed demo) left behind')
      .action(async (opts: { keep?: boolean; clean?: boolean }) => {
        // Loaded only here: the demo brings the test lab (src/lab) with it.
        const demo = await import('../../demo/index.js');
        const log = (line: string): void => ctx.out(line + '\n');
        if (opts.clean) await demo.cleanDemo({ log });
        else await demo.runDemo({ keep: opts.keep ?? false, log });
      });
  },
};
