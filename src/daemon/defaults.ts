/** The daemon's defaults that `loom --help` prints: plain constants, loaded without the option parsers. */
export const DEFAULT_STATE_DIR = '/var/lib/loom';
export const DEFAULT_CONN_LIMIT = 100;
