/**
 * Node 20 reads the NODE_EXTRA_CA_CERTS file at start-up, before any code runs: ~40 ms of every
 * `loom` command on a machine that sets it, for a CLI that opens no TLS connection. bin/loom (the
 * native front, native/loom.c) starts Node without it and hands its value over in
 * LOOM_NODE_EXTRA_CA_CERTS; it goes back into the environment here, before anything is spawned, so the
 * daemon `launch` starts and every other child see it as the user set it.
 */
export function restoreExtraCaCerts(env: NodeJS.ProcessEnv): void {
  const saved = env['LOOM_NODE_EXTRA_CA_CERTS'];
  if (saved === undefined) return;
  delete env['LOOM_NODE_EXTRA_CA_CERTS'];
  if (saved !== '') env['NODE_EXTRA_CA_CERTS'] = saved;
}
