/**
 * `loom cni install|uninstall`: local file work, no daemon. Install writes the plugin executable
 * (a Node script that loads this checkout's dist/src/cni/main.js by absolute path, so the copy in
 * /opt/cni/bin works outside the repo) and the conflist of the fixed CNI contract (docs/CNI.md).
 * Both are written atomically (temp file + rename); uninstall removes both and is idempotent.
 */
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomError } from '../../core/errors.js';
import type { CliCommand } from '../command.js';

export const CNI_DEFAULTS = { binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d', api: 'http://127.0.0.1:6784', name: 'loom' } as const;
export const CONFLIST_FILE = '10-loom.conflist';
export const PLUGIN_FILE = 'loom-cni';

export interface CniInstallOptions {
  binDir: string;
  confDir: string;
  api: string;
  name: string;
}

/** The conflist: loom-cni, then portmap (cniVersion 1.0.0, which the Debian reference plugins 1.1.1 accept). */
export function conflistText(o: Pick<CniInstallOptions, 'api' | 'name'>): string {
  const list = { cniVersion: '1.0.0', name: o.name, plugins: [{ type: 'loom-cni', api: o.api }, { type: 'portmap', capabilities: { portMappings: true }, snat: true }] };
  return JSON.stringify(list) + '\n';
}

/** The installed executable: this Node, this checkout's plugin, by absolute path (a CommonJS file: no package.json beside it). */
export function pluginScript(node: string, mainJs: string): string {
  return `#!${node}\n// loom-cni, written by \`loom cni install\`: runs ${mainJs}\nimport(${JSON.stringify(mainJs)});\n`;
}

function checkOptions(o: CniInstallOptions): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(o.name)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid network name "${o.name.slice(0, 40)}"`);
  if (!/^http:\/\/[^/\s]+\/?$/.test(o.api)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --api "${o.api.slice(0, 60)}": expected http://HOST:PORT`);
  for (const d of [o.binDir, o.confDir]) if (!d.startsWith('/')) throw new LoomError('ERR_INVALID_ARGUMENT', `"${d.slice(0, 60)}" is not an absolute path`);
}

function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Writes both files; returns their paths. */
export function installCni(o: CniInstallOptions, node: string, mainJs: string): string[] {
  checkOptions(o);
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  const plugin = join(o.binDir, PLUGIN_FILE);
  const conflist = join(o.confDir, CONFLIST_FILE);
  writeAtomic(plugin, pluginScript(node, mainJs), 0o755);
  writeAtomic(conflist, conflistText(o), 0o644);
  return [plugin, conflist];
}

export function uninstallCni(o: Pick<CniInstallOptions, 'binDir' | 'confDir'>): string[] {
  const paths = [join(o.binDir, PLUGIN_FILE), join(o.confDir, CONFLIST_FILE)];
  for (const p of paths) rmSync(p, { force: true });
  return paths;
}

/** dist/src/cni/main.js of this checkout, from this file's place in dist/src/cli/commands/. */
export function pluginMain(): string {
  return fileURLToPath(new URL('../../cni/main.js', import.meta.url));
}

export const cniCommand: CliCommand = {
  register(program, ctx) {
    const cni = program.command('cni').description('install or remove the loom-cni plugin and its conflist');
    cni
      .command('install')
      .description(`write BIN_DIR/${PLUGIN_FILE} and CONF_DIR/${CONFLIST_FILE}`)
      .option('--bin-dir <dir>', 'where CNI plugins live', CNI_DEFAULTS.binDir)
      .option('--conf-dir <dir>', 'where the runtime reads conflists', CNI_DEFAULTS.confDir)
      .option('--api <url>', "the router's API as seen from the host", CNI_DEFAULTS.api)
      .option('--name <net>', 'the CNI network name', CNI_DEFAULTS.name)
      .action((opts: CniInstallOptions) => {
        for (const p of installCni(opts, process.execPath, pluginMain())) ctx.out(`${p}\n`);
      });
    cni
      .command('uninstall')
      .description(`remove BIN_DIR/${PLUGIN_FILE} and CONF_DIR/${CONFLIST_FILE}`)
      .option('--bin-dir <dir>', 'where CNI plugins live', CNI_DEFAULTS.binDir)
      .option('--conf-dir <dir>', 'where the runtime reads conflists', CNI_DEFAULTS.confDir)
      .action((opts: Pick<CniInstallOptions, 'binDir' | 'confDir'>) => {
        for (const p of uninstallCni(opts)) ctx.out(`removed ${p}\n`);
      });
  },
};
