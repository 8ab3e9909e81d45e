/**
 * Helper for test/e2e/kube.test.ts, run inside a lab host's netns: the fake Kubernetes API
 * (test/helpers/fake-kube-api.ts) on that host's address, driven through files in a directory
 * shared with the test (the test runs in another namespace and cannot reach it over HTTP):
 *   DIR/nodes.json     written by the test: [{"name","ip"}]; polled every 100 ms, applied as
 *                      node ADDED/MODIFIED/DELETED events
 *   DIR/url            written once listening: "http://ADDR:PORT"
 *   DIR/configmap.json written after each poll: the loom-peers ConfigMap's data, or null
 * argv: ADDR DIR. Runs until killed. Not a test file itself (no .test. in its name).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';

const [address, dir] = process.argv.slice(2) as [string, string];
const api = new FakeKubeApi();

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function apply(): void {
  const file = join(dir, 'nodes.json');
  if (!existsSync(file)) return;
  let wanted: { name: string; ip: string }[];
  try {
    wanted = JSON.parse(readFileSync(file, 'utf8')) as { name: string; ip: string }[];
  } catch {
    return; // being written
  }
  const have = api.nodeAddresses();
  for (const n of wanted) if (have.get(n.name) !== n.ip) api.addNode(n.name, n.ip);
  for (const name of have.keys()) if (!wanted.some((n) => n.name === name)) api.deleteNode(name);
  writeAtomic(join(dir, 'configmap.json'), JSON.stringify(api.configMap('kube-system', 'loom-peers')?.data ?? null));
}

const url = await api.listen(address);
apply();
writeAtomic(join(dir, 'url'), url);
setInterval(apply, 100);
process.on('SIGTERM', () => void api.close().then(() => process.exit(0)));
