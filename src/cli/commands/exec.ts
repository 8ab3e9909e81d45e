import { LoomError } from '../../core/errors.js';
import type { ContainerList } from '../../api/container-routes.js';
import { startProcess } from '../../os/runner.js';
import { clientFor, withHttpAddr, type CliCommand } from '../command.js';

/**
 * `loom exec NAME -- CMD...`: asks the daemon where the container is, then enters its namespaces
 * here (nsenter) with this terminal's stdio. The daemon does not proxy the I/O. A non-zero exit of
 * the command becomes ERR_OS_COMMAND (exit 1) with the code in the message.
 */
export const execCommand: CliCommand = {
  register(program, ctx) {
    withHttpAddr(program.command('exec'))
      .description('run a command inside a container: loom exec NAME -- CMD [ARGS...]')
      .argument('<container>', 'id or name')
      .argument('<cmd...>', 'command and arguments (after --)')
      .action(async (container: string, cmd: string[], opts: { httpAddr?: string }) => {
        const list = await clientFor(ctx, opts).call<ContainerList>('GET', '/containers');
        const c = list.containers.find((x) => x.id === container) ?? list.containers.find((x) => x.name === container);
        if (!c) throw new LoomError('ERR_NOT_FOUND', `no container ${JSON.stringify(container.slice(0, 70))}`);
        if (!c.alive) throw new LoomError('ERR_NOT_FOUND', `container ${c.name} is not running`);
        const child = startProcess('nsenter', ['--target', String(c.pid), '--net', '--uts', '--mount', '--pid', '--', ...cmd], { stdio: 'inherit' });
        const code = await new Promise<number>((resolve) => {
          child.once('error', () => resolve(127));
          child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1)));
        });
        if (code !== 0) throw new LoomError('ERR_OS_COMMAND', `command in ${c.name} exited with code ${code}`, { detail: { exitCode: code } });
      });
  },
};
