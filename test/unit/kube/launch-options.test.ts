import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoomError } from '../../../src/core/errors.js';
import { foregroundArgs, parseLaunchOptions } from '../../../src/daemon/options.js';
import { kubeArgs, parseApiUrl, parseKubeOptions } from '../../../src/kube/launch-options.js';
import { LineSplitter, withBundledCas } from '../../../src/kube/client.js';
import { rootCertificates } from 'node:tls';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNode, parseNodeList, parseNodeWatchEvent } from '../../../src/kube/nodes.js';

const IN_CLUSTER = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', NODE_NAME: 'worker-1', POD_NAMESPACE: 'loom' };

test('off without --kube-peers; another --kube-* option alone is refused', () => {
  assert.equal(parseKubeOptions({}, IN_CLUSTER), null);
  assert.throws(() => parseKubeOptions({ kubeApi: 'http://127.0.0.1:1' }, {}), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT') && /--kube-api needs --kube-peers/.test(e.message));
});

test('in a pod: the service host and port over https, the service-account token and CA, node and namespace from the downward API', () => {
  assert.deepEqual(parseKubeOptions({ kubePeers: true }, IN_CLUSTER), {
    apiUrl: 'https://10.96.0.1',
    tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
    caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    nodeName: 'worker-1',
    namespace: 'loom',
    configMap: 'loom-peers',
    sizeFromNodes: true,
    reclaim: true,
  });
  assert.equal(parseKubeOptions({ kubePeers: true }, { ...IN_CLUSTER, KUBERNETES_SERVICE_HOST: 'fd00::1' })?.apiUrl, 'https://[fd00::1]');
  assert.throws(() => parseKubeOptions({ kubePeers: true }, {}), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT') && /KUBERNETES_SERVICE_HOST/.test(e.message));
});

test('for tests: --kube-api over plain http, no token unless named; no node name means no reclaim', () => {
  const c = parseKubeOptions({ kubePeers: true, kubeApi: 'http://127.0.0.1:8080/', kubeReclaim: true, ipallocInit: 'consensus=3' }, {})!;
  assert.equal(c.apiUrl, 'http://127.0.0.1:8080');
  assert.equal(c.tokenFile, undefined);
  assert.equal(c.namespace, 'kube-system');
  assert.equal(c.reclaim, false);
  assert.equal(c.sizeFromNodes, false, 'an explicit --ipalloc-init wins');
});

test('NODE_EXTRA_CA_CERTS is trusted beside Node\'s own CAs when no CA file is named, and not when one is', () => {
  const api = { kubePeers: true, kubeApi: 'https://10.0.0.1:6443' };
  assert.equal(parseKubeOptions(api, { NODE_EXTRA_CA_CERTS: '/etc/corp-ca.pem' })?.extraCaFile, '/etc/corp-ca.pem');
  assert.equal(parseKubeOptions({ ...api, kubeCaFile: '/etc/k8s-ca.pem' }, { NODE_EXTRA_CA_CERTS: '/etc/corp-ca.pem' })?.extraCaFile, undefined);
  assert.equal(parseKubeOptions({ kubePeers: true }, { ...IN_CLUSTER, NODE_EXTRA_CA_CERTS: '/etc/corp-ca.pem' })?.extraCaFile, undefined, 'in a pod: the service-account CA');
  assert.equal('extraCaFile' in parseKubeOptions(api, { NODE_EXTRA_CA_CERTS: '' })!, false);

  const dir = mkdtempSync(join(tmpdir(), 'loom-ca-'));
  try {
    const pem = rootCertificates[0]!;
    writeFileSync(join(dir, 'extra.pem'), pem);
    const cas = withBundledCas(join(dir, 'extra.pem'));
    assert.equal(cas?.length, rootCertificates.length + 1);
    assert.equal(cas?.at(-1), pem);
    assert.equal(withBundledCas(join(dir, 'missing.pem')), undefined, 'an unreadable file is skipped, as Node skips it');
    assert.equal(withBundledCas(undefined), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad values are refused naming the option', () => {
  for (const [raw, option] of [
    [{ kubeApi: 'ftp://x' }, '--kube-api'],
    [{ kubeApi: 'http://u:p@host:1' }, '--kube-api'],
    [{ kubeApi: 'http://host:1/api' }, '--kube-api'],
    [{ kubeApi: 'http://h:1', kubeNodeName: 'Bad_Name' }, '--kube-node-name'],
    [{ kubeApi: 'http://h:1', kubeNamespace: 'a.b' }, '--kube-namespace'],
    [{ kubeApi: 'http://h:1', kubeConfigmap: '-x' }, '--kube-configmap'],
    [{ kubeApi: 'http://h:1', kubeTokenFile: '' }, '--kube-token-file'],
  ] as const) {
    assert.throws(() => parseKubeOptions({ kubePeers: true, ...raw }, {}), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT') && e.message.includes(option), option);
  }
  assert.equal(parseApiUrl('https://api.example:6443'), 'https://api.example:6443');
});

test('the re-executed daemon gets the same config back, and still sizes IPAM from the nodes', () => {
  const config = parseLaunchOptions({ kubePeers: true, kubeApi: 'http://127.0.0.1:9', kubeNodeName: 'n1', kubeTokenFile: '/t', stateDir: '/tmp/x' }, [], {}, 'h');
  assert.equal(config.kube?.sizeFromNodes, true);
  const args = foregroundArgs(config);
  assert.ok(!args.includes('--ipalloc-init'), args.join(' '));
  const again = parseLaunchOptions(commanderish(args), [], {}, 'h');
  assert.deepEqual(again.kube, config.kube);
  assert.deepEqual(kubeArgs(null), []);
  const noReclaim = parseKubeOptions({ kubePeers: true, kubeApi: 'http://h:1', kubeNodeName: 'n1', kubeReclaim: false }, {})!;
  assert.deepEqual(parseKubeOptions({ ...commanderish(kubeArgs(noReclaim)) }, {}), noReclaim);
});

/** Just enough of commander for the --kube-* and --ipalloc-* flags. */
function commanderish(args: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (!a.startsWith('--')) continue;
    const key = a.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (a === '--kube-peers') out['kubePeers'] = true;
    else if (a === '--no-kube-reclaim') out['kubeReclaim'] = false;
    else if (key.startsWith('kube') || key.startsWith('ipalloc')) out[key] = args[++i]!;
  }
  return out;
}

test('nodes parse from unknown: first IPv4 InternalIP (else ExternalIP), podCIDR; malformed objects are ERR_PROTOCOL', () => {
  const node = { metadata: { name: 'n1', resourceVersion: '7' }, spec: { podCIDR: '10.244.0.0/24' }, status: { addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: 'fd00::5' }, { type: 'InternalIP', address: '192.168.1.5' }] } };
  assert.deepEqual(parseNode(node), { name: 'n1', address: '192.168.1.5', podCidr: '10.244.0.0/24' });
  assert.deepEqual(parseNode({ metadata: { name: 'n2' } }), { name: 'n2', address: undefined, podCidr: undefined });
  const externalOnly = { metadata: { name: 'n3' }, status: { addresses: [{ type: 'ExternalIP', address: '203.0.113.7' }] } };
  assert.equal(parseNode(externalOnly).address, '203.0.113.7', 'ExternalIP when there is no InternalIP');
  assert.equal(parseNode({ ...externalOnly, status: { addresses: [...externalOnly.status.addresses, { type: 'InternalIP', address: '10.0.0.3' }] } }).address, '10.0.0.3', 'InternalIP first');
  for (const bad of [null, [], { metadata: {} }, { metadata: { name: 'UPPER' } }]) assert.throws(() => parseNode(bad), (e) => isLoomError(e, 'ERR_PROTOCOL'));
  assert.throws(() => parseNodeList({ items: [] }), (e) => isLoomError(e, 'ERR_PROTOCOL'));
  assert.deepEqual(parseNodeList({ metadata: { resourceVersion: '9' }, items: [node] }).resourceVersion, '9');
  assert.deepEqual(parseNodeWatchEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } }), { type: 'BOOKMARK', resourceVersion: '12' });
  assert.deepEqual(parseNodeWatchEvent({ type: 'ERROR', object: { code: 410, message: 'too old' } }), { type: 'ERROR', code: 410, message: 'too old' });
  assert.equal(parseNodeWatchEvent({ type: 'DELETED', object: node }).type, 'DELETED');
  assert.throws(() => parseNodeWatchEvent({ type: 'EXPLODED', object: node }), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});

test('watch lines split across chunks and joined from pieces; an endless line is refused', () => {
  const s = new LineSplitter(32);
  assert.deepEqual(s.push(Buffer.from('{"a":1}\n{"b"')), ['{"a":1}']);
  assert.deepEqual(s.push(Buffer.from(':2}')), []);
  assert.deepEqual(s.push(Buffer.from('\n\n{"c":3}\n')), ['{"b":2}', '{"c":3}']);
  assert.throws(() => s.push(Buffer.alloc(40, 0x41)), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});
