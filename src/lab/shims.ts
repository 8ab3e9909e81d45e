/**
 * containerd's runc shims (containerd-shim-runc-v2) each listen on a socket at
 * /run/containerd/s/<sha256 of "ADDRESS/NAMESPACE/ID">, outside any folder of ours. A shim that
 * exits normally removes it; one killed by a lab teardown does not. So the lab reads, from a
 * shim's command line and before killing it, which socket is its own, and removes it afterwards.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const SHIM_SOCKET_DIR = '/run/containerd/s';

/** The socket of a shim started as `containerd-shim-runc-v2 -namespace NS -id ID -address ADDR ...`, or null. Pure. */
export function shimSocketFromArgv(argv: readonly string[]): string | null {
  if (!argv[0]?.includes('containerd-shim')) return null;
  const flag = (name: string): string | undefined => {
    const i = argv.findIndex((a) => a === `-${name}` || a === `--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const ns = flag('namespace');
  const id = flag('id');
  const address = flag('address');
  if (!ns || !id || !address) return null;
  const hash = createHash('sha256').update(join(address, ns, id)).digest('hex');
  return join(SHIM_SOCKET_DIR, hash);
}

/** The sockets of those of `pids` that are containerd shims (read now, while they live). */
export function shimSockets(pids: readonly number[]): string[] {
  const out: string[] = [];
  for (const pid of pids) {
    try {
      const socket = shimSocketFromArgv(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
      if (socket) out.push(socket);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export function removeShimSockets(sockets: readonly string[]): void {
  for (const s of sockets) rmSync(s, { force: true });
}
