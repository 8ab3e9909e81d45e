#!/usr/bin/env node
/**
 * Builds the two native executables and the DNS responder library (below): the CNI shim (native/loom-cni.c -> dist/bin/loom-cni), with
 * its Node fallback dist/bin/loom-cni-node written beside it (the shim execs that file from its own
 * folder), and the `loom` front (native/loom.c -> dist/bin/loom, what bin/loom links to), with
 * this build's id compiled in (from dist/src/core/build-id.js: scripts/build-id.mjs runs first).
 * Part of `npm run build`; fails with a clear message when gcc is missing (scripts/install.sh
 * installs gcc and libc6-dev): `loom` itself, the CNI tests and `loom cni install` need them.
 *
 * Linked statically (glibc's libc.a, from libc6-dev): `loom cni install` copies the shim from
 * wherever it was built (an image) onto a host whose libc may be older, and a static executable
 * also starts faster (no dynamic loader: ~3.5 ms against ~7.5 ms here). It uses no NSS function,
 * so static glibc is safe.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'bin');
const cc = process.env.CC || 'gcc';

const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  console.error(`build-native: the C compiler "${cc}" is missing (${probe.error?.message ?? `exit ${probe.status}`}).`);
  console.error('build-native: install it with `apt-get install -y gcc libc6-dev` (scripts/install.sh does), then run `npm run build` again.');
  process.exit(1);
}

mkdirSync(outDir, { recursive: true });

/** Compiles native/NAME.c into dist/bin/NAME (static, stripped), replacing it only when the compile succeeded. */
function compile(name, defines = []) {
  const tmp = join(outDir, `.${name}.tmp-${process.pid}`);
  const built = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-static', '-s', ...defines, '-o', tmp, join(root, 'native', `${name}.c`)], { stdio: 'inherit' });
  if (built.error || built.status !== 0) {
    console.error(`build-native: ${cc} failed to compile native/${name}.c (a static link needs libc6-dev: apt-get install -y libc6-dev)`);
    process.exit(1);
  }
  renameSync(tmp, join(outDir, name));
}

compile('loom-cni');
// The build id (16 hex digits, or "unbuilt"), as scripts/build-id.mjs wrote it.
const buildId = /export const BUILD_ID = '([0-9a-z]{1,64})';/.exec(readFileSync(join(root, 'dist', 'src', 'core', 'build-id.js'), 'utf8'))?.[1];
if (buildId === undefined) {
  console.error('build-native: no BUILD_ID in dist/src/core/build-id.js (run tsc and scripts/build-id.mjs first: npm run build)');
  process.exit(1);
}
compile('loom', [`-DLOOM_BUILD_ID="${buildId}"`]);

// The DNS server's native responder (native/loom-dns.c), a shared object loaded through koffi by
// src/os/dns-responder.ts. Optional: without it the server answers on its JS path (and says so
// once), so a failed compile warns and the build goes on (an old copy is removed, not kept).
{
  const name = 'libloom-dns.so';
  const tmp = join(outDir, `.${name}.tmp-${process.pid}`);
  const built = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', '-pthread', '-s', '-o', tmp, join(root, 'native', 'loom-dns.c')], { stdio: 'inherit' });
  if (built.error || built.status !== 0) {
    console.error(`build-native: ${cc} failed to compile native/loom-dns.c: the DNS server will answer on its JS path`);
    rmSync(tmp, { force: true });
    rmSync(join(outDir, name), { force: true });
  } else renameSync(tmp, join(outDir, name));
}

// The fallback: the Node plugin, by a path relative to this file (dist/bin -> dist/src/cni/main.js).
const nodePlugin = join(outDir, 'loom-cni-node');
writeFileSync(nodePlugin, "#!/usr/bin/env node\n// loom-cni-node: the Node CNI plugin, run by the native loom-cni beside it when the router cannot answer.\nimport('../src/cni/main.js');\n");
chmodSync(nodePlugin, 0o755);
