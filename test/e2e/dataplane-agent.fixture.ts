/**
 * Helper for test/e2e/dataplane.test.ts, run inside a host's netns (`ip netns exec NS node ...`):
 * applies a desired dataplane, starts or removes containers, tears down. One JSON command in
 * argv[2], one JSON answer on stdout. Not a test file itself (no .test. in its name).
 */
import { LinuxDataplane } from '../../src/dataplane/linux/index.js';
import { parseDesiredDataplane } from '../../src/dataplane/index.js';
import { ContainerRuntime, type RunSpec } from '../../src/containers/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { parseCidr } from '../../src/core/net.js';
import { systemRunner } from '../../src/os/runner.js';

type Command =
  | { op: 'apply'; desired: unknown }
  | { op: 'read'; names: { bridge: string; vxlan: string } }
  | { op: 'run'; stateDir: string; spec: Omit<RunSpec, 'cidr'> & { cidr: string } }
  | { op: 'teardown'; stateDir: string; names: { bridge: string; vxlan: string } };

async function main(): Promise<unknown> {
  const command = JSON.parse(process.argv[2] ?? '{}') as Command;
  const dataplane = new LinuxDataplane({ runner: systemRunner, logger: silentLogger });
  switch (command.op) {
    case 'apply':
      return { ops: await dataplane.apply(parseDesiredDataplane(command.desired)) };
    case 'read': {
      const current = await dataplane.readCurrent(command.names);
      return { links: Object.fromEntries(current.links), fdb: current.fdb };
    }
    case 'run':
      // The spec arrives as JSON: its address is text, parsed here (the fixture's edge).
      return new ContainerRuntime({}, { stateDir: command.stateDir }).run({ ...command.spec, cidr: parseCidr(command.spec.cidr) });
    case 'teardown': {
      const runtime = new ContainerRuntime({}, { stateDir: command.stateDir, stopGraceMs: 500 });
      const removed = [];
      for (const c of runtime.list()) removed.push((await runtime.remove(c.id)).id);
      return { removed, ops: await dataplane.teardown(command.names) };
    }
  }
}

main().then(
  (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`),
  (err: unknown) => {
    process.stderr.write(`${JSON.stringify({ error: String(err), code: (err as { code?: string }).code })}\n`);
    process.exitCode = 1;
  },
);
