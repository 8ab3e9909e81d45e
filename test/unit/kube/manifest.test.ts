/**
 * deploy/kubernetes/loom.yaml parses and holds together: what a DaemonSet needs, RBAC for exactly
 * what src/kube calls, the launch command as `loom launch` really parses it (commander and the
 * launch options), the readiness probe on a route the router serves, mounts on declared volumes.
 * No cluster runs here; this is as far as the manifest can be checked without one.
 *
 * The YAML parser is js-yaml from node_modules (there through ESLint; not a declared dependency).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { ROUTER_ROUTES } from '../../../src/api/router-api.js';
import { launchCommand } from '../../../src/cli/commands/launch.js';
import type { CliContext } from '../../../src/cli/context.js';
import { parseLaunchOptions, type RawLaunchOptions } from '../../../src/daemon/options.js';
import { DEFAULT_KUBE_CONFIGMAP } from '../../../src/kube/launch-options.js';

const yaml = createRequire(import.meta.url)('js-yaml') as { loadAll(text: string): unknown[] };

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

type Doc = Record<string, any>;
const docs = yaml.loadAll(readFileSync(join(repoRoot(), 'deploy/kubernetes/loom.yaml'), 'utf8')).filter((d) => d !== null) as Doc[];
const one = (kind: string): Doc => {
  const found = docs.filter((d) => d['kind'] === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
};
const ds = one('DaemonSet');
const pod = ds['spec']['template']['spec'] as Doc;
const loom = (pod['containers'] as Doc[]).find((c) => c['name'] === 'loom')!;
const install = (pod['initContainers'] as Doc[]).find((c) => c['name'] === 'install-cni')!;

test('every document is a named Kubernetes object; the set is what Loom needs', () => {
  for (const d of docs) {
    assert.equal(typeof d['apiVersion'], 'string');
    assert.equal(typeof d['kind'], 'string');
    assert.match(d['metadata']?.['name'] ?? '', /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  }
  assert.deepEqual(docs.map((d) => d['kind']).sort(), ['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'Role', 'RoleBinding', 'ServiceAccount']);
});

test('the DaemonSet: apps/v1, selector matching its pods, host network and PID, privileged, on every node, its service account', () => {
  assert.equal(ds['apiVersion'], 'apps/v1');
  const labels = ds['spec']['template']['metadata']['labels'] as Record<string, string>;
  for (const [k, v] of Object.entries(ds['spec']['selector']['matchLabels'] as Record<string, string>)) assert.equal(labels[k], v, `selector ${k}`);
  assert.equal(pod['hostNetwork'], true);
  assert.equal(pod['hostPID'], true);
  assert.equal(pod['dnsPolicy'], 'ClusterFirstWithHostNet', 'host network pods need this to resolve cluster names');
  assert.deepEqual(pod['tolerations'], [{ operator: 'Exists' }]);
  assert.equal(loom['securityContext']['privileged'], true);
  assert.equal(pod['serviceAccountName'], one('ServiceAccount')['metadata']['name']);
  assert.equal(one('ServiceAccount')['metadata']['namespace'], ds['metadata']['namespace']);
});

test('RBAC grants what src/kube calls: nodes get/list/watch; the peer ConfigMap get/update/create in the DaemonSet namespace', () => {
  const sa = { kind: 'ServiceAccount', name: 'loom', namespace: ds['metadata']['namespace'] };
  const rules = (kind: string): Doc[] => one(kind)['rules'] as Doc[];
  assert.ok(rules('ClusterRole').some((r) => r['resources'].includes('nodes') && ['get', 'list', 'watch'].every((v) => r['verbs'].includes(v))));
  const cm = rules('Role').filter((r) => r['resources'].includes('configmaps'));
  assert.ok(cm.some((r) => r['resourceNames']?.includes(DEFAULT_KUBE_CONFIGMAP) && r['verbs'].includes('get') && r['verbs'].includes('update')));
  assert.ok(cm.some((r) => r['resourceNames'] === undefined && r['verbs'].includes('create')), 'create cannot be limited to a name');
  assert.equal(one('Role')['metadata']['namespace'], ds['metadata']['namespace']);
  for (const [binding, role] of [['ClusterRoleBinding', 'ClusterRole'], ['RoleBinding', 'Role']] as const) {
    const b = one(binding);
    assert.deepEqual({ kind: b['roleRef']['kind'], name: b['roleRef']['name'] }, { kind: role, name: one(role)['metadata']['name'] });
    assert.deepEqual(b['subjects'], [sa]);
  }
});

/** The command's `$(VAR)` expanded from the container's plain env values, as the kubelet does. */
function expand(args: string[], env: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, name: string) => env[name] ?? `$(${name})`));
}

test('the launch command parses as `loom launch` parses it: kube peers in-cluster, the range from IPALLOC_RANGE, the password and node from the env', async () => {
  const env = Object.fromEntries((loom['env'] as Doc[]).filter((e) => typeof e['value'] === 'string').map((e) => [e['name'], e['value']])) as Record<string, string>;
  const command = expand(loom['command'] as string[], env);
  assert.deepEqual(command.slice(0, 3), ['loom', 'launch', '--foreground']);
  const program = new Command().exitOverride();
  launchCommand.register(program, {} as CliContext);
  let parsed: { peers: string[]; opts: RawLaunchOptions } | undefined;
  program.commands.find((c) => c.name() === 'launch')!.action((peers: string[], opts: RawLaunchOptions) => {
    parsed = { peers, opts };
  });
  await program.parseAsync(command.slice(1), { from: 'user' });
  assert.ok(parsed, 'commander accepted every option');
  const podEnv = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', NODE_NAME: 'worker-1', POD_NAMESPACE: ds['metadata']['namespace'] as string, LOOM_PASSWORD: 'from-the-secret' };
  const config = parseLaunchOptions(parsed.opts, parsed.peers, podEnv, 'worker-1');
  assert.equal(config.ipam.range, env['IPALLOC_RANGE']);
  assert.equal(config.kube?.apiUrl, 'https://10.96.0.1');
  assert.equal(config.kube?.nodeName, 'worker-1');
  assert.equal(config.kube?.reclaim, true);
  assert.equal(config.kube?.sizeFromNodes, true);
  assert.equal(config.password, 'from-the-secret');
  assert.equal(config.stateDir, '/var/lib/loom');

  const byName = (name: string): Doc => (loom['env'] as Doc[]).find((e) => e['name'] === name)!;
  assert.deepEqual(byName('LOOM_PASSWORD')['valueFrom'], { secretKeyRef: { name: 'loom-passwd', key: 'password' } });
  assert.deepEqual(byName('NODE_NAME')['valueFrom'], { fieldRef: { fieldPath: 'spec.nodeName' } });
  assert.deepEqual(byName('POD_NAMESPACE')['valueFrom'], { fieldRef: { fieldPath: 'metadata.namespace' } });

  // Readiness /status, liveness /healthz: router routes, on the address the API listens on.
  assert.equal(loom['readinessProbe']['httpGet']['path'], '/status');
  assert.equal(loom['livenessProbe']['httpGet']['path'], '/healthz');
  for (const probe of [loom['readinessProbe'], loom['livenessProbe']] as Doc[]) {
    assert.equal(`${probe['httpGet']['host']}:${probe['httpGet']['port']}`, `${config.httpHost}:${config.httpPort}`);
    assert.ok(routerRoutes().includes(`GET ${probe['httpGet']['path']}`), `${probe['httpGet']['path']} is a router route`);
  }
});

/** The router's own routes, from its route table (what the server and the typed client use). */
function routerRoutes(): string[] {
  return Object.values(ROUTER_ROUTES).map((r) => `${r.method} ${r.path}`);
}

test('the init container runs `loom cni install` into host paths; every mount is a declared volume; the host paths Loom needs are there', () => {
  assert.deepEqual(install['command'].slice(0, 3), ['loom', 'cni', 'install']);
  const flag = (name: string): string => install['command'][install['command'].indexOf(name) + 1];
  const volumes = new Map((pod['volumes'] as Doc[]).map((v) => [v['name'] as string, v]));
  const hostPathAt = (c: Doc, mountPath: string): string | undefined => {
    const m = (c['volumeMounts'] as Doc[]).find((vm) => vm['mountPath'] === mountPath);
    return m ? volumes.get(m['name'])?.['hostPath']?.['path'] : undefined;
  };
  assert.equal(hostPathAt(install, flag('--bin-dir')), '/opt/cni/bin');
  assert.equal(hostPathAt(install, flag('--conf-dir')), '/etc/cni/net.d');
  assert.ok(!install['command'].includes('--api'), 'no --api: the plugin calls the router on its local socket (the default --socket)');
  for (const c of [loom, install]) for (const m of c['volumeMounts'] as Doc[]) assert.ok(volumes.has(m['name']), `${c['name']} mounts undeclared volume ${m['name']}`);
  assert.equal(hostPathAt(loom, '/var/lib/loom'), '/var/lib/loom');
  assert.equal(hostPathAt(loom, '/run/netns'), '/run/netns');
  assert.equal((loom['volumeMounts'] as Doc[]).find((m) => m['mountPath'] === '/run/netns')?.['mountPropagation'], 'HostToContainer', 'namespaces made after start are seen');
});
