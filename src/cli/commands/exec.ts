import { constants as osConstants } from 'node:os';
import { LoomError } from '../../core/errors.js';
import { containersFor, withHttpAddr, type CliCommand } from '../command.js';

/**
 * `loom exec NAME -- CMD...`: asks the daemon where the container is, then enters its namespaces
 * here (nsenter) with this terminal's stdio. The daemon does not proxy the I/O. `loom exec` exits
 * with the command's own exit code (128 + n when a signal ended it, 127 when it could not start),
 * like `docker exec`; a failure to find the container is a LoomError (exit 1).
 */
export const execCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('exec'))
      .description('run a command inside a container: loom exec NAME -- CMD [ARGS...]')
      .argument('<container>', 'id or name')
      .argument('<cmd...>', 'command and arguments (after --)')
      .action(async (container: string, cmd: string[], opts: { httpAddr?: string }) => {
        const list = await (await containersFor(ctx, opts)).list();
        const c = list.containers.find((x) => x.id === container) ?? list.containers.find((x) => x.name === container);
        if (!c) throw new LoomError('ERR_NOT_FOUND', `no container ${JSON.stringify(container.slice(0, 70))}`);
        if (!c.alive) throw new LoomError('ERR_NOT_FOUND', `container ${c.name} is not running`);
        const { startProcess } = await import('../../os/runner.js');
        const child = startProcess('nsenter', ['--target', String(c.pid), '--net', '--uts', '--mount', '--pid', '--', ...cmd], { stdio: 'inherit' });
        const code = await new Promise<number>((resolve) => {
          child.once('error', () => resolve(127));
          child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
        });
        ctx.exitCode = code;
      });
  },
};
