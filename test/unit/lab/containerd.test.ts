/**
 * The pure parts of the lab's containerd (src/lab/containerd.ts) and sandbox image
 * (src/lab/sandbox-image.ts): the config text, the CRI plugin's line of `ctr plugins ls`, the
 * unmount order under a folder, and the docker-archive metadata. No root, no containerd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { containerdConfig, criPluginStatus, type ContainerdPaths } from '../../../src/lab/containerd.js';
import { mountPointsUnder } from '../../../src/lab/mounts.js';
import { shimSocketFromArgv } from '../../../src/lab/shims.js';
import { dockerArchiveFiles, SANDBOX_ENTRYPOINT } from '../../../src/lab/sandbox-image.js';
import { LoomError } from '../../../src/core/errors.js';

const paths: ContainerdPaths = {
  root: '/tmp/loom-lab/lm000001/containerd-h1/root',
  state: '/tmp/loom-lab/lm000001/containerd-h1/state',
  runcRoot: '/tmp/loom-lab/lm000001/containerd-h1/runc',
  grpcAddress: '/tmp/loom-lab/lm000001/containerd-h1/containerd.sock',
  ttrpcAddress: '/tmp/loom-lab/lm000001/containerd-h1/containerd.ttrpc.sock',
  cniBinDir: '/tmp/loom-lab/lm000001/containerd-h1/cni/bin',
  cniConfDir: '/tmp/loom-lab/lm000001/containerd-h1/cni/net.d',
};

/** The value of `key = "..."` inside `[section]` of a flat TOML text (enough for this config). */
function tomlValue(text: string, section: string, key: string): string | undefined {
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = header[1]!;
    const kv = /^([A-Za-z_]+) = (.+)$/.exec(line);
    if (kv && current === section && kv[1] === key) return kv[2];
  }
  return undefined;
}

test('containerdConfig keeps every path of containerd under its folder and sets what this machine needs', () => {
  const text = containerdConfig(paths, { sandboxImage: 'loom.local/lab-pause:1', snapshotter: 'overlayfs' });
  assert.equal(tomlValue(text, '', 'root'), `"${paths.root}"`);
  assert.equal(tomlValue(text, '', 'state'), `"${paths.state}"`);
  assert.equal(tomlValue(text, 'grpc', 'address'), `"${paths.grpcAddress}"`);
  assert.equal(tomlValue(text, 'ttrpc', 'address'), `"${paths.ttrpcAddress}"`);
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  assert.equal(tomlValue(text, cri, 'sandbox_image'), '"loom.local/lab-pause:1"');
  assert.equal(tomlValue(text, cri, 'netns_mounts_under_state_dir'), 'false', 'pod netns in /run/netns, shared with routers under ip netns exec');
  assert.equal(tomlValue(text, cri, 'restrict_oom_score_adj'), 'true');
  assert.equal(tomlValue(text, `${cri}.cni`, 'bin_dir'), `"${paths.cniBinDir}"`);
  assert.equal(tomlValue(text, `${cri}.cni`, 'conf_dir'), `"${paths.cniConfDir}"`);
  assert.equal(tomlValue(text, `${cri}.containerd`, 'snapshotter'), '"overlayfs"');
  assert.equal(tomlValue(text, `${cri}.containerd.runtimes.runc.options`, 'Root'), `"${paths.runcRoot}"`);
  assert.match(tomlValue(text, '', 'disabled_plugins') ?? '', /"io\.containerd\.internal\.v1\.opt"/, 'the opt plugin would write to /opt/containerd');
  assert.equal(tomlValue(containerdConfig(paths, { sandboxImage: 'x/y:1', snapshotter: 'native' }), `${cri}.containerd`, 'snapshotter'), '"native"');
});

test('containerdConfig refuses a value that would break out of a TOML string', () => {
  assert.throws(() => containerdConfig({ ...paths, root: '/tmp/a"b' }, { sandboxImage: 'x/y:1', snapshotter: 'native' }), (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => containerdConfig(paths, { sandboxImage: 'x\ny', snapshotter: 'native' }), LoomError);
});

test('criPluginStatus reads the CRI plugin line of `ctr plugins ls`', () => {
  const listing = [
    'TYPE                                  ID                       PLATFORMS      STATUS    ',
    'io.containerd.content.v1              content                  -              ok        ',
    'io.containerd.snapshotter.v1          overlayfs                linux/amd64    ok        ',
    'io.containerd.grpc.v1                 cri                      linux/amd64    ok        ',
  ].join('\n');
  assert.equal(criPluginStatus(listing), 'ok');
  assert.equal(criPluginStatus(listing.replace(/linux\/amd64    ok        $/, 'linux/amd64    error     ')), 'error');
  assert.equal(criPluginStatus(listing.split('\n').slice(0, 3).join('\n')), null);
  assert.equal(criPluginStatus(''), null);
});

test('mountPointsUnder lists mounts at or below the folder only, deepest and latest first, escapes undone', () => {
  const mi = [
    '22 1 8:1 / / rw - ext4 /dev/vda rw',
    '30 22 0:50 / /tmp/loom-lab/lm1/c rw - tmpfs tmpfs rw',
    '31 30 0:51 / /tmp/loom-lab/lm1/c/state/run/abc/rootfs rw - overlay overlay rw',
    '32 30 0:4 net:[4026532] /tmp/loom-lab/lm1/c/state/netns/cni-1 rw - nsfs nsfs rw',
    '33 22 0:52 / /tmp/loom-lab/lm1/cother rw - tmpfs tmpfs rw',
    '34 30 0:4 net:[4026533] /tmp/loom-lab/lm1/c/state/netns/cni-1 rw - nsfs nsfs rw',
    '35 30 0:53 / /tmp/loom-lab/lm1/c/with\\040space rw - tmpfs tmpfs rw',
    '',
  ].join('\n');
  assert.deepEqual(mountPointsUnder(mi, '/tmp/loom-lab/lm1/c/'), [
    '/tmp/loom-lab/lm1/c/state/run/abc/rootfs',
    '/tmp/loom-lab/lm1/c/state/netns/cni-1',
    '/tmp/loom-lab/lm1/c/state/netns/cni-1',
    '/tmp/loom-lab/lm1/c/with space',
    '/tmp/loom-lab/lm1/c',
  ]);
  assert.deepEqual(mountPointsUnder(mi, '/nowhere'), []);
});

test('dockerArchiveFiles: the config names the layer by its digest and is itself named by its digest', () => {
  const layer = createHash('sha256').update('a layer').digest('hex');
  const files = dockerArchiveFiles(layer, 'loom.local/lab-pause:1');
  const config = JSON.parse(files.configJson);
  assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: [`sha256:${layer}`] });
  assert.deepEqual(config.config.Entrypoint, [...SANDBOX_ENTRYPOINT]);
  assert.equal(files.configName, `${createHash('sha256').update(files.configJson).digest('hex')}.json`);
  assert.deepEqual(JSON.parse(files.manifestJson), [{ Config: files.configName, RepoTags: ['loom.local/lab-pause:1'], Layers: [`${layer}/layer.tar`] }]);
  assert.equal(files.layerName, `${layer}/layer.tar`);
});

test('dockerArchiveFiles refuses a bad digest, name or empty entrypoint', () => {
  const layer = 'a'.repeat(64);
  for (const bad of [() => dockerArchiveFiles('abc', 'x/y:1'), () => dockerArchiveFiles(layer, 'no tag'), () => dockerArchiveFiles(layer, 'x/y:1', [])]) {
    assert.throws(bad, (e: unknown) => e instanceof LoomError && e.code === 'ERR_INVALID_ARGUMENT');
  }
});

test('shimSocketFromArgv names the socket containerd 1.6 gives a shim: sha256 of ADDRESS/NAMESPACE/ID', () => {
  // Checked against a live shim of containerd 1.6.20 (its socket in /run/containerd/s).
  const argv = ['/usr/bin/containerd-shim-runc-v2', '-namespace', 'k8s.io', '-id', '2c7e263da63d3cff4865416c770102fe62626ad90a745f807ab59570fd964f27', '-address', '/tmp/loom-lab/lm728d79/containerd-h1/containerd.sock', ''];
  assert.equal(shimSocketFromArgv(argv), '/run/containerd/s/75a300591ea37290f24637f3c09ec3106e7172f579fd5a22b19d5878c4c76f88');
  assert.equal(shimSocketFromArgv(['/usr/bin/containerd', '--config', 'x']), null);
  assert.equal(shimSocketFromArgv(['/usr/bin/containerd-shim-runc-v2', '-namespace', 'k8s.io', '-id', 'x']), null, 'no address');
});
