/**
 * A pod sandbox ("pause") image for containerd's CRI plugin, built locally with no registry: one
 * layer holding the static busybox (Debian's busybox-static) and a few files in /etc, packed as a
 * docker-archive tarball (`docker save` layout: manifest.json, the config, one layer.tar) that
 * `ctr images import` reads. Busybox has no pause applet, so the sandbox's process is
 * `busybox sleep` for about 68 years: it never exits on its own, and as PID 1 of its pid
 * namespace it ignores SIGTERM, which is fine because containerd stops sandboxes with SIGKILL.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import { systemRunner, type CommandRunner } from '../os/runner.js';

/** The sandbox image name the lab's containerd is configured with (`sandbox_image`). */
export const LAB_SANDBOX_IMAGE = 'loom.local/lab-pause:1';
/** Where Debian's busybox-static puts the static binary. */
export const STATIC_BUSYBOX = '/bin/busybox';
export const SANDBOX_ENTRYPOINT: readonly string[] = ['/bin/busybox', 'sleep', '2147483647'];

export interface DockerArchiveFiles {
  /** File name of the image config inside the archive: "<sha256 hex>.json". */
  configName: string;
  configJson: string;
  /** Path of the layer inside the archive: "<layer sha256 hex>/layer.tar". */
  layerName: string;
  manifestJson: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The metadata files of a one-layer docker-archive image, given the sha256 (hex) of the
 * uncompressed layer tar. Pure. The config's diff_ids must name the layer's digest exactly, or
 * containerd refuses to unpack it.
 */
export function dockerArchiveFiles(layerSha256: string, name: string, entrypoint: readonly string[] = SANDBOX_ENTRYPOINT): DockerArchiveFiles {
  if (!HEX64.test(layerSha256)) throw new LoomError('ERR_INVALID_ARGUMENT', `layer digest must be 64 hex digits, got "${layerSha256.slice(0, 70)}"`);
  if (!/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_.-]{1,128}$/.test(name)) throw new LoomError('ERR_INVALID_ARGUMENT', `image name must look like repo/name:tag, got "${name.slice(0, 80)}"`);
  if (entrypoint.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'the sandbox image needs an entrypoint');
  const configJson = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: [...entrypoint], Env: ['PATH=/bin'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerSha256}`] },
  });
  const configName = `${createHash('sha256').update(configJson).digest('hex')}.json`;
  const layerName = `${layerSha256}/layer.tar`;
  const manifestJson = JSON.stringify([{ Config: configName, RepoTags: [name], Layers: [layerName] }]);
  return { configName, configJson, layerName, manifestJson };
}

/**
 * Builds the sandbox image tarball under `workDir` (created; the caller removes it) and returns
 * its path. Needs a statically linked busybox at `busybox` (apt-get install busybox-static).
 */
export async function buildSandboxImage(
  workDir: string,
  options: { name?: string; busybox?: string; runner?: CommandRunner } = {},
): Promise<string> {
  const busybox = options.busybox ?? STATIC_BUSYBOX;
  const runner = options.runner ?? systemRunner;
  if (!existsSync(busybox)) throw new LoomError('ERR_NOT_FOUND', `${busybox} is missing: apt-get install busybox-static`);
  const rootfs = join(workDir, 'rootfs');
  const staging = join(workDir, 'archive');
  rmSync(workDir, { recursive: true, force: true });
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'root']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(busybox, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/busybox\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  for (const f of ['hosts', 'resolv.conf', 'hostname']) writeFileSync(join(rootfs, 'etc', f), '');
  const layerTmp = join(workDir, 'layer.tar');
  // Numeric owner root: the layer must not carry this machine's user names.
  await runner.run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTmp, '.']);
  const layerSha = createHash('sha256').update(readFileSync(layerTmp)).digest('hex');
  const files = dockerArchiveFiles(layerSha, options.name ?? LAB_SANDBOX_IMAGE);
  mkdirSync(join(staging, layerSha), { recursive: true });
  renameSync(layerTmp, join(staging, files.layerName));
  writeFileSync(join(staging, files.configName), files.configJson);
  writeFileSync(join(staging, 'manifest.json'), files.manifestJson);
  const image = join(workDir, 'image.tar');
  await runner.run('tar', ['-C', staging, '-cf', image, 'manifest.json', files.configName, files.layerName]);
  rmSync(rootfs, { recursive: true, force: true });
  rmSync(staging, { recursive: true, force: true });
  return image;
}
