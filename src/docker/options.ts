/**
 * `loom launch` options of the Docker integration, parsed once at the edge:
 *   --docker-api URL         unix:///path/docker.sock (default unix:///var/run/docker.sock) or tcp://host:port
 *   --no-docker              never serve Docker
 *   --docker-plugin-dir DIR  where loom.sock goes (default /run/docker/plugins; tests give their own)
 */
import { isAbsolute, resolve } from 'node:path';
import { LoomError } from '../core/errors.js';
import { parseHostPort } from '../core/net.js';

export const DEFAULT_DOCKER_API = 'unix:///var/run/docker.sock';
export const DEFAULT_PLUGIN_DIR = '/run/docker/plugins';

export type DockerApiTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface DockerLaunchConfig {
  enabled: boolean;
  api: DockerApiTarget;
  pluginDir: string;
}

export interface RawDockerOptions {
  docker?: boolean | undefined;
  dockerApi?: string | undefined;
  dockerPluginDir?: string | undefined;
}

function badPath(p: string): boolean {
  return p.length === 0 || p.length > 1024 || p.includes('\0') || !isAbsolute(p);
}

export function parseDockerApi(text: string): DockerApiTarget {
  if (text.startsWith('unix://')) {
    const path = text.slice('unix://'.length);
    if (badPath(path)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --docker-api "${text.slice(0, 60)}": unix:// needs an absolute path`);
    return { kind: 'unix', path: resolve(path) };
  }
  if (text.startsWith('tcp://')) {
    try {
      const hp = parseHostPort(text.slice('tcp://'.length).replace(/\/$/, ''), { what: '--docker-api' });
      return { kind: 'tcp', host: hp.host, port: hp.port };
    } catch (err) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --docker-api "${text.slice(0, 60)}": expected tcp://HOST:PORT`, { cause: err });
    }
  }
  throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --docker-api "${text.slice(0, 60)}": expected unix:///path or tcp://host:port`);
}

export function formatDockerApi(t: DockerApiTarget): string {
  return t.kind === 'unix' ? `unix://${t.path}` : `tcp://${t.host}:${t.port}`;
}

export function parseDockerOptions(raw: RawDockerOptions): DockerLaunchConfig {
  const api = parseDockerApi(raw.dockerApi ?? DEFAULT_DOCKER_API);
  const dir = raw.dockerPluginDir ?? DEFAULT_PLUGIN_DIR;
  if (badPath(dir)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --docker-plugin-dir "${dir.slice(0, 60)}": an absolute path`);
  return { enabled: raw.docker !== false, api, pluginDir: resolve(dir) };
}

/** The flags that give the same config to a re-executed daemon. */
export function dockerArgs(config: DockerLaunchConfig): string[] {
  return [...(config.enabled ? [] : ['--no-docker']), '--docker-api', formatDockerApi(config.api), '--docker-plugin-dir', config.pluginDir];
}
