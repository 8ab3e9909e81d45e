/**
 * `loom cni install|uninstall`: local file work, no daemon. Install writes the plugin executable
 * `loom-cni` (a copy of the native shim dist/bin/loom-cni, which forwards each call to the router),
 * its fallback `loom-cni-node` beside it (a Node script that loads this checkout's
 * dist/src/cni/main.js by absolute path, so the copy in /opt/cni/bin works outside the repo) and
 * the conflist of the fixed CNI contract (docs/CNI.md). Without a built shim (no gcc), `loom-cni`
 * is the Node script itself: correct, only slower. Every file is written atomically (temp file +
 * rename); uninstall removes them all and is idempotent.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Option } from 'commander';
import { DEFAULT_API_SOCKET, parseApiSocketName } from '../../core/endpoints.js';
import { LoomError } from '../../core/errors.js';
import type { CliCommand } from '../command.js';

export const CNI_DEFAULTS = { binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d', socket: DEFAULT_API_SOCKET, name: 'loom' } as const;
export const CONFLIST_FILE = '10-loom.conflist';
export const PLUGIN_FILE = 'loom-cni';
/** The Node plugin the native shim runs when the router cannot answer (native/loom-cni.c). */
export const NODE_PLUGIN_FILE = 'loom-cni-node';

export interface CniInstallOptions {
  binDir: string;
  confDir: string;
  /** The router's local socket (abstract name) in the host's namespace, written as the conf's `socket`. */
  socket: string;
  name: string;
}

/** The conflist: loom-cni, then portmap (cniVersion 1.0.0, which the Debian reference plugins 1.1.1 accept). */
export function conflistText(o: Pick<CniInstallOptions, 'socket' | 'name'>): string {
  const list = { cniVersion: '1.0.0', name: o.name, plugins: [{ type: 'loom-cni', socket: o.socket }, { type: 'portmap', capabilities: { portMappings: true }, snat: true }] };
  return JSON.stringify(list) + '\n';
}

/** The installed executable: this Node, this checkout's plugin, by absolute path (a CommonJS file: no package.json beside it). */
export function pluginScript(node: string, mainJs: string): string {
  return `#!${node}\n// loom-cni, written by \`loom cni install\`: runs ${mainJs}\nimport(${JSON.stringify(mainJs)});\n`;
}

function checkOptions(o: CniInstallOptions): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(o.name)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid network name "${o.name.slice(0, 40)}"`);
  parseApiSocketName(o.socket, '--socket');
  for (const d of [o.binDir, o.confDir]) if (!d.startsWith('/')) throw new LoomError('ERR_INVALID_ARGUMENT', `"${d.slice(0, 60)}" is not an absolute path`);
}

/** `from` a text, or a file to copy (a running plugin keeps its old inode: the rename never changes a file in use). */
function writeAtomic(path: string, from: { text: string } | { file: string }, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  if ('text' in from) writeFileSync(tmp, from.text, { mode });
  else copyFileSync(from.file, tmp);
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/**
 * Writes the plugin (the native `shim` when given, else the Node script), the Node fallback beside
 * it and the conflist; returns their paths (plugin first, conflist last).
 */
export function installCni(o: CniInstallOptions, node: string, mainJs: string, shim: string | null = null): string[] {
  checkOptions(o);
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  const plugin = join(o.binDir, PLUGIN_FILE);
  const nodePlugin = join(o.binDir, NODE_PLUGIN_FILE);
  const conflist = join(o.confDir, CONFLIST_FILE);
  const script = { text: pluginScript(node, mainJs) };
  // The fallback first: a shim in place finds its loom-cni-node.
  writeAtomic(nodePlugin, script, 0o755);
  writeAtomic(plugin, shim === null ? script : { file: shim }, 0o755);
  writeAtomic(conflist, { text: conflistText(o) }, 0o644);
  return [plugin, nodePlugin, conflist];
}

export function uninstallCni(o: Pick<CniInstallOptions, 'binDir' | 'confDir'>): string[] {
  const paths = [join(o.binDir, PLUGIN_FILE), join(o.binDir, NODE_PLUGIN_FILE), join(o.confDir, CONFLIST_FILE)];
  for (const p of paths) rmSync(p, { force: true });
  return paths;
}

/**
 * dist/src/cni/main.js of this checkout, from the CLI's entry (dist/src/cli/*.js): found from the
 * entry rather than this module, which the build bundles into the entry (scripts/build-cli.mjs).
 */
export function pluginMain(entry: string): string {
  return join(dirname(entry), '..', 'cni', 'main.js');
}

/** dist/bin/loom-cni (scripts/build-native.mjs) of this checkout, or null when it was not built. */
export function nativeShim(entry: string): string | null {
  const shim = join(dirname(entry), '..', '..', 'bin', 'loom-cni');
  return existsSync(shim) ? shim : null;
}

export const cniCommand: CliCommand = {
  register(program, ctx) {
    const cni = program.command('cni').description('install or remove the loom-cni plugin and its conflist');
    cni
      .command('install')
      .description(`write BIN_DIR/${PLUGIN_FILE}, BIN_DIR/${NODE_PLUGIN_FILE} and CONF_DIR/${CONFLIST_FILE}`)
      .option('--bin-dir <dir>', 'where CNI plugins live', CNI_DEFAULTS.binDir)
      .option('--conf-dir <dir>', 'where the runtime reads conflists', CNI_DEFAULTS.confDir)
      .option('--socket <name>', "the router's local socket in the host's network namespace (its --api-socket)", CNI_DEFAULTS.socket)
      .addOption(new Option('--api <url>', 'removed: the plugin talks to the router on its local socket (--socket)').hideHelp())
      .option('--name <net>', 'the CNI network name', CNI_DEFAULTS.name)
      .action((opts: CniInstallOptions & { api?: string }) => {
        if (opts.api !== undefined) throw new LoomError('ERR_INVALID_ARGUMENT', "--api is gone: the plugin calls the router on its local socket (the TCP API is read-only); use --socket NAME (default loom/api) or leave it out");
        const shim = nativeShim(ctx.entry);
        for (const p of installCni(opts, process.execPath, pluginMain(ctx.entry), shim)) ctx.out(`${p}\n`);
        if (shim === null) ctx.err(`note: no native shim (dist/bin/${PLUGIN_FILE}; npm run build needs gcc): ${PLUGIN_FILE} is the Node plugin, slower at every pod start\n`);
      });
    cni
      .command('uninstall')
      .description(`remove BIN_DIR/${PLUGIN_FILE}, BIN_DIR/${NODE_PLUGIN_FILE} and CONF_DIR/${CONFLIST_FILE}`)
      .option('--bin-dir <dir>', 'where CNI plugins live', CNI_DEFAULTS.binDir)
      .option('--conf-dir <dir>', 'where the runtime reads conflists', CNI_DEFAULTS.confDir)
      .action((opts: Pick<CniInstallOptions, 'binDir' | 'confDir'>) => {
        for (const p of uninstallCni(opts)) ctx.out(`removed ${p}\n`);
      });
  },
};
