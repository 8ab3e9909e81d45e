/** The `loom` command line: a thin client of the daemon's API (plus `launch`, which starts it). */
export { runCli, buildProgram, EXIT_OK, EXIT_ERROR, EXIT_USAGE } from './run.js';
export type { CliContext } from './context.js';
export type { CliCommand } from './command.js';
export { COMMANDS } from './commands/index.js';
export { formatSummary, formatConnections, formatPeers, formatTargets, peerLabel } from './format-status.js';
export { formatDns } from './format-dns.js';
